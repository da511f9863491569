package signer

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"kintogo/internal/contentsig"
	"kintogo/internal/kerr"
	"kintogo/internal/model"
	"kintogo/internal/pyfmt"
	"kintogo/internal/resource"
	"kintogo/internal/storage"
)

// The statuses of a source collection.
const (
	workInProgress = "work-in-progress"
	toSign         = "to-sign"
	toResign       = "to-resign"
	toReview       = "to-review"
	toRollback     = "to-rollback"
	signed         = "signed"
)

// The tracking fields of a source collection: only the plugin writes them.
var trackingFields = []string{
	"last_edit_by", "last_edit_date",
	"last_review_request_by", "last_review_request_date",
	"last_review_by", "last_review_date",
	"last_signature_by", "last_signature_date",
}

// publishedFields of the source collection are copied to the preview and
// the destination (kinto-admin's and the clients' fields).
var publishedFields = []string{"flags", "attachment", "schema", "sort", "displayFields"}

// invalid is the reference's raise_invalid: 400, errno 109 (invalid
// posted data), "Bad Request".
func invalid(msg string) error   { return &kerr.Error{Kind: kerr.Invalid, Errno: 109, Message: msg} }
func forbidden(msg string) error { return kerr.E(kerr.Forbidden, msg) }

// statusOf returns a collection's status as the reference compares it,
// and whether it has one (null is none).
func statusOf(data map[string]any) (string, bool) {
	v, ok := data["status"]
	if !ok || v == nil {
		return "", false
	}
	if s, ok := v.(string); ok {
		return s, true
	}
	return pyfmt.Str(v), true
}

// onRecord: a change of a source record puts the source back in
// work-in-progress (with who and when), and a record with a float (or a
// number canonical JSON has not) is refused.
func (p *plugin) onRecord(ctx context.Context, u *resource.Unit, ch resource.Change) error {
	r := p.st.pick(ch.Path.BucketID, ch.Path.CollectionID)
	if r == nil || ch.Caller.Plugin {
		return nil
	}
	if ch.Action != "delete" {
		if err := p.checkNumbers(ch.Object.Data, ""); err != nil {
			return err
		}
	}
	// Once per write request while the source stays in progress, as the
	// reference does once per event (a plural DELETE of ten thousand
	// records is one).
	first := u.Once("signer: in progress " + r.Source.uri())
	if !first {
		coll, err := u.Tx.Get(ctx, r.Source.collectionPath().Scope(), r.Source.Collection)
		if err != nil {
			return err
		}
		if status, _ := statusOf(coll.Data); status == workInProgress {
			return nil
		}
	}
	return p.updateSource(ctx, u, r, map[string]any{
		"status": workInProgress, "last_edit_by": ch.Caller.UserID, "last_edit_date": p.now(),
	})
}

// checkNumbers refuses floats (unless signer.allow_floats), as the
// reference does, and integers beyond 64 bits, which no canonical JSON
// can sign.
func (p *plugin) checkNumbers(v any, path string) error {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if err := p.checkNumbers(e, join(path, k)); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range t {
			if err := p.checkNumbers(e, join(path, strconv.Itoa(i))); err != nil {
				return err
			}
		}
	case json.Number:
		if contentsig.IsFloat(t) {
			if !p.st.allowFloats {
				return invalid(fmt.Sprintf("field contains float value (tip: use integer or string), '%s'", path))
			}
		}
		if _, err := contentsig.Canonical(nil, t); err != nil {
			return invalid(fmt.Sprintf("field contains a number that cannot be signed (tip: use a string), '%s'", path))
		}
	}
	return nil
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// onCollection runs the workflow on a change of a source collection by a
// user: the checks of its status and tracking fields, its groups when it
// is created, then what the new status asks for.
func (p *plugin) onCollection(ctx context.Context, u *resource.Unit, ch resource.Change) error {
	bid, cid := ch.Path.BucketID, ch.Object.ID
	r := p.st.pick(bid, cid)
	if r == nil {
		return nil
	}
	created := ch.Old == nil
	var oldData map[string]any
	if !created {
		oldData = ch.Old.Data
	}
	newData := ch.Object.Data
	if err := p.checkStatus(r, ch.Caller, oldData, newData); err != nil {
		return err
	}
	for _, f := range trackingFields {
		if !reflect.DeepEqual(oldData[f], newData[f]) {
			return invalid(fmt.Sprintf("Cannot change <TRACKING_FIELDS.%s: '%s'>", strings.ToUpper(f), f))
		}
	}
	if created {
		if err := p.createGroups(ctx, u, r, ch.Caller); err != nil {
			return err
		}
	}
	_, given := ch.Sent["last_editor_comment"]
	pub := &publisher{p: p, u: u, r: r, c: ch.Caller, ch: ch, ctx: ctx, commentGiven: given}
	if !created && !ch.Caller.Plugin && reflect.DeepEqual(oldData["status"], newData["status"]) {
		// A change of what is published with the records (schema,
		// flags...) is a change to review, as a record's is.
		for _, f := range publishedFields {
			if !reflect.DeepEqual(oldData[f], newData[f]) {
				if status, _ := statusOf(newData); status == workInProgress {
					break
				}
				return pub.setStatus(workInProgress, "")
			}
		}
	}
	return p.transition(pub, created, oldData, newData)
}

// checkStatus is the reference's check_collection_status: which status
// changes the caller may make.
func (p *plugin) checkStatus(r *Resource, c *resource.Caller, oldData, newData map[string]any) error {
	if reflect.DeepEqual(oldData["status"], newData["status"]) {
		return nil
	}
	oldStatus, _ := statusOf(oldData)
	newStatus, newHas := statusOf(newData)
	if !newHas {
		return invalid("Cannot remove status")
	}
	reviewEnabled := p.st.reviewEnabled(r)
	editors, reviewers := p.st.groups(r)
	bucketURI := "/buckets/" + r.Source.Bucket
	in := func(group string) bool { return contains(c.Principals(), bucketURI+"/groups/"+group) }
	switch newStatus {
	case workInProgress, toResign:
	case toReview:
		if reviewEnabled && !in(editors) {
			return forbidden("Not in " + editors + " group")
		}
	case toSign:
		if oldStatus == signed {
			return invalid("Collection already signed")
		}
		if reviewEnabled {
			if !in(reviewers) {
				return forbidden("Not in " + reviewers + " group")
			}
			if oldStatus != toReview {
				return invalid("Collection not under review")
			}
			if last, _ := oldData["last_review_request_by"].(string); last == c.UserID {
				return forbidden("Last editor cannot review")
			}
		}
	case signed:
		return invalid(fmt.Sprintf("Cannot set status to '%s'", newStatus))
	case toRollback:
		if oldStatus == signed {
			return invalid("Collection has no work-in-progress")
		}
	default:
		return invalid(fmt.Sprintf("Invalid status '%s'", newStatus))
	}
	return nil
}

// createGroups creates the editors and reviewers groups of a new source
// collection when missing (the creator is an editor, and both groups may
// be changed by the creator), and lets both groups write the collection.
// A creator who may not create groups in the bucket may not create the
// collection.
func (p *plugin) createGroups(ctx context.Context, u *resource.Unit, r *Resource, c *resource.Caller) error {
	bid := r.Source.Bucket
	editors, reviewers := p.st.groups(r)
	probe := model.Path{Kind: model.Group, BucketID: bid, ID: editors}
	ok, err := p.h.Engine().Authorizer().CanCreate(ctx, u.Tx, probe, c.Principals())
	if err != nil {
		return err
	}
	if !ok {
		return forbidden(fmt.Sprintf("Cannot create collection without `group:create` on bucket '%s': editors/reviewers groups cannot be set up.", bid))
	}
	perms := map[string][]string{"write": {c.UserID}}
	for _, g := range []struct {
		id      string
		members []any
	}{{editors, []any{c.UserID}}, {reviewers, []any{}}} {
		gp := model.Path{Kind: model.Group, BucketID: bid, ID: g.id}
		if _, err := u.Create(ctx, p.self, gp, map[string]any{"members": g.members}, perms); err != nil {
			return err
		}
	}
	uri := r.Source.collectionPath().URI()
	acl, err := u.Tx.Permissions(ctx, uri)
	if err != nil {
		return err
	}
	writers := append([]string(nil), acl["write"]...)
	for _, g := range []string{editors, reviewers} {
		principal := "/buckets/" + bid + "/groups/" + g
		if !contains(writers, principal) {
			writers = append(writers, principal)
		}
	}
	return u.Tx.SetPermissions(ctx, uri, map[string][]string{"write": writers})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// transition does what the new status asks for (the reference's
// sign_collection_data).
func (p *plugin) transition(pub *publisher, created bool, oldData, newData map[string]any) error {
	ctx, u, r, c := pub.ctx, pub.u, pub.r, pub.c
	oldStatus, _ := statusOf(oldData)
	newStatus, _ := statusOf(newData)
	switch {
	case created:
		if r.HasPreview {
			if _, err := pub.signAndUpdate(r.Preview, newData, "", "", true); err != nil {
				return err
			}
		}
		_, err := pub.signAndUpdate(r.Destination, newData, signed, signed, true)
		return err
	case oldStatus == newStatus:
		return nil
	case newStatus == toSign:
		if r.HasPreview {
			if _, err := pub.signAndUpdate(r.Preview, newData, signed, oldStatus, true); err != nil {
				return err
			}
		}
		n, err := pub.signAndUpdate(r.Destination, newData, signed, oldStatus, true)
		if err != nil {
			return err
		}
		return p.reviewEvent(pub, "approve", "changes_count", n)
	case newStatus == toReview:
		n := -1
		if r.HasPreview {
			var err error
			if n, err = pub.signAndUpdate(r.Preview, newData, toReview, "", true); err != nil {
				return err
			}
		} else if err := p.updateSource(ctx, u, r, map[string]any{
			"last_review_request_by": c.UserID, "last_review_request_date": p.now(),
		}); err != nil {
			return err
		}
		var count any = n
		if n < 0 {
			count = nil // no preview: Kinto's None
		}
		return p.reviewEvent(pub, "request", "changes_count", count, "comment", commentOf(newData["last_editor_comment"]))
	case oldStatus == toReview && newStatus == workInProgress:
		return p.reviewEvent(pub, "reject", "comment", commentOf(newData["last_reviewer_comment"]))
	case newStatus == toResign:
		// Exactly what was published, signed again: the source's fields
		// (schema, flags...) go through review like its records.
		if err := pub.refresh(r.Destination, r.Destination, oldStatus); err != nil {
			return err
		}
		if r.HasPreview {
			return pub.refresh(r.Preview, r.Preview, oldStatus)
		}
		return nil
	case newStatus == toRollback:
		n, err := pub.rollback(r.Source, r.Destination, true)
		if err != nil {
			return err
		}
		if r.HasPreview {
			m, err := pub.rollback(r.Preview, r.Destination, false)
			if err != nil {
				return err
			}
			n += m
			if err := pub.refresh(r.Preview, r.Preview, ""); err != nil {
				return err
			}
		}
		if n > 0 {
			return p.reviewEvent(pub, "cancel", "changes_count", n)
		}
		return nil
	}
	return nil
}

// onCollectionDelete: a preview or destination in use cannot be deleted;
// deleting a source empties (or, with
// signer.hard_delete_destination_on_source_deletion, deletes) its preview
// and destination, and deletes its groups.
func (p *plugin) onCollectionDelete(ctx context.Context, u *resource.Unit, ch resource.Change) error {
	bid, cid := ch.Path.BucketID, ch.Object.ID
	if r := p.st.pick(bid, cid); r != nil {
		if err := p.cleanup(ctx, u, r, ch); err != nil {
			return err
		}
	}
	inUse := p.usedBy(bid, cid)
	if inUse == nil {
		return nil
	}
	source := inUse.Source
	if source.Collection == "" {
		source.Collection = cid
	}
	_, err := u.Tx.Get(ctx, source.collectionPath().Scope(), source.Collection)
	switch {
	case err == nil:
		return forbidden("Collection is in use.")
	case kerr.Is(err, kerr.NotFound):
		return nil
	}
	return err
}

// usedBy returns the resource whose preview or destination is the
// collection, nil when none (the reference's prevent_collection_delete).
func (p *plugin) usedBy(bid, cid string) *Resource {
	matches := func(l Location) bool { return l.Bucket == bid && (l.Collection == "" || l.Collection == cid) }
	impacts := func(r *Resource) bool { return matches(r.Destination) || (r.HasPreview && matches(r.Preview)) }
	for _, r := range p.st.resources {
		if !r.perBucket() && impacts(r) {
			return r
		}
	}
	for _, r := range p.st.resources {
		if r.perBucket() && impacts(r) {
			// A resource of this very collection of the source bucket
			// supersedes its bucket's.
			for _, s := range p.st.resources {
				if s.Source.Bucket == r.Source.Bucket && s.Source.Collection == cid {
					return nil
				}
			}
			return r
		}
	}
	return nil
}

// cleanup is what deleting a source collection does to its groups,
// preview and destination.
func (p *plugin) cleanup(ctx context.Context, u *resource.Unit, r *Resource, ch resource.Change) error {
	editors, reviewers := p.st.groups(r)
	for i, g := range []string{editors, reviewers} {
		// Only the collection's own groups: a pattern without
		// {collection_id} names a group other collections share.
		if !strings.Contains([]string{p.st.editorsGroup, p.st.reviewersGroup}[i], "{collection_id}") {
			continue
		}
		gp := model.Path{Kind: model.Group, BucketID: r.Source.Bucket, ID: g}
		if _, _, err := u.Remove(ctx, p.self, gp); err != nil && !kerr.Is(err, kerr.NotFound) {
			return err
		}
	}
	pub := &publisher{p: p, u: u, r: r, c: ch.Caller, ctx: ctx}
	targets := []Location{r.Destination}
	if r.HasPreview {
		targets = []Location{r.Preview, r.Destination}
	}
	for _, l := range targets {
		if p.st.hardDelete {
			// The collection goes, with its records (kintogo keeps the
			// collection's tombstone).
			if _, _, err := u.Remove(ctx, p.self, l.collectionPath()); err != nil && !kerr.Is(err, kerr.NotFound) {
				return err
			}
			continue
		}
		if _, err := u.Tx.Get(ctx, l.collectionPath().Scope(), l.Collection); kerr.Is(err, kerr.NotFound) {
			continue
		} else if err != nil {
			return err
		}
		records, err := u.Tx.List(ctx, storage.Scope{Parent: l.collectionPath().URI(), Resource: model.Record.Name}, storage.ListOptions{})
		if err != nil {
			return err
		}
		for _, rec := range records {
			if _, _, err := u.Remove(ctx, p.self, l.recordsPath().WithID(rec.ID)); err != nil {
				return err
			}
		}
		var fields map[string]any
		if ch.Old != nil {
			fields = ch.Old.Data
		}
		if _, err := pub.signAndUpdate(l, fields, "", "", false); err != nil {
			return err
		}
	}
	return nil
}

// commentOf is a review comment as Kinto's events carry it: "" when the
// collection has none.
func commentOf(v any) any {
	if v == nil {
		return ""
	}
	return v
}
