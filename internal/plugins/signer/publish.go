package signer

import (
	"context"
	"errors"
	"reflect"

	"kintogo/internal/contentsig"
	"kintogo/internal/kerr"
	"kintogo/internal/permission"
	"kintogo/internal/resource"
	"kintogo/internal/storage"
)

var errNoSignature = errors.New("the signer gave no signature")

// publisher copies and signs for one workflow step (the reference's
// LocalUpdater), inside the unit of the write that asked for it: every
// write is the plugin's own; c is the user who asked, whom the tracking
// fields name.
type publisher struct {
	ctx context.Context
	p   *plugin
	u   *resource.Unit
	r   *Resource
	c   *resource.Caller
	ch  resource.Change // the user's change of the source collection
	// commentGiven: the user's request sent last_editor_comment (else a
	// review request resets it).
	commentGiven bool
}

func (p *plugin) now() string {
	return p.h.Now().UTC().Format("2006-01-02T15:04:05.000000+00:00")
}

// records returns the live records of a collection, and its records
// timestamp.
func (pub *publisher) records(l Location) ([]*storage.Object, int64, error) {
	scope := l.recordsPath().Scope()
	list, err := pub.u.Tx.List(pub.ctx, scope, storage.ListOptions{})
	if err != nil {
		return nil, 0, err
	}
	ts, err := pub.u.Tx.Timestamp(pub.ctx, scope)
	return list, ts, err
}

// signAndUpdate creates the destination when missing, copies the
// source's changes there (push), signs it, and sets the source's status
// to next ("" leaves it). It returns how many records changed.
func (pub *publisher) signAndUpdate(dest Location, sourceAttrs map[string]any, next, previous string, push bool) (int, error) {
	if err := pub.createDestination(dest); err != nil {
		return 0, err
	}
	n := 0
	if push {
		var err error
		if n, err = pub.push(pub.r.Source, dest); err != nil {
			return 0, err
		}
	}
	if err := pub.sign(dest, sourceAttrs); err != nil {
		return 0, err
	}
	if next != "" {
		return n, pub.setStatus(next, previous)
	}
	return n, nil
}

// refresh signs dest again without moving records, with the published
// fields of attrsFrom, and sets the source's status to next ("" leaves
// it) with who signed and when.
func (pub *publisher) refresh(dest, attrsFrom Location, next string) error {
	// (A source made at start by auto_create_resources has none yet.)
	if err := pub.createDestination(dest); err != nil {
		return err
	}
	var fields map[string]any
	attrs, err := pub.u.Tx.Get(pub.ctx, attrsFrom.collectionPath().Scope(), attrsFrom.Collection)
	switch {
	case err == nil:
		fields = attrs.Data
	case !kerr.Is(err, kerr.NotFound):
		// (A destination whose source was deleted keeps its fields.)
		return err
	}
	if err := pub.sign(dest, fields); err != nil {
		return err
	}
	if next == "" {
		return nil
	}
	now := pub.p.now()
	return pub.p.updateSource(pub.ctx, pub.u, pub.r, map[string]any{
		"status": next, "last_signature_by": pub.c.UserID, "last_signature_date": now,
	})
}

// createDestination creates the bucket and the collection (readable by
// everyone) when missing, writable by signer.destination_writers only
// (the reference makes the user who asked a writer of the bucket, who
// could then change what is published without review).
func (pub *publisher) createDestination(dest Location) error {
	if _, err := pub.u.Create(pub.ctx, pub.p.self, dest.bucketPath(), map[string]any{}, map[string][]string{"write": pub.p.st.destinationWriters}); err != nil {
		return err
	}
	_, err := pub.u.Create(pub.ctx, pub.p.self, dest.collectionPath(), map[string]any{}, map[string][]string{"read": {permission.Everyone}})
	return err
}

// recordsEqual compares records but for their timestamps and schema
// versions.
func recordsEqual(a, b *storage.Object) bool {
	strip := func(o *storage.Object) map[string]any {
		m := make(map[string]any, len(o.Data))
		for k, v := range o.Data {
			if k != "schema" {
				m[k] = v
			}
		}
		return m
	}
	return reflect.DeepEqual(strip(a), strip(b))
}

// change is one record of a diff; deleted when it must go.
type change struct {
	rec     *storage.Object
	deleted bool
}

// diff returns what makes right equal to left (the reference's
// records_diff): right's records missing from left (to delete), those
// that differ (left's version), then left's records right has not.
func diff(left, right []*storage.Object) []change {
	byID := make(map[string]*storage.Object, len(left))
	for _, r := range left {
		byID[r.ID] = r
	}
	var out []change
	for _, r := range right {
		l, ok := byID[r.ID]
		delete(byID, r.ID)
		switch {
		case !ok:
			out = append(out, change{rec: r, deleted: true})
		case !recordsEqual(l, r):
			out = append(out, change{rec: l})
		}
	}
	for _, r := range left {
		if _, ok := byID[r.ID]; ok {
			out = append(out, change{rec: r})
		}
	}
	return out
}

// push makes dest's records those of src (copies what src has that dest
// has not or has otherwise, deletes what src has not) and returns how
// many it changed.
func (pub *publisher) push(src, dest Location) (int, error) {
	srcRecords, _, err := pub.records(src)
	if err != nil {
		return 0, err
	}
	destRecords, _, err := pub.records(dest)
	if err != nil {
		return 0, err
	}
	changes := diff(srcRecords, destRecords)
	for _, ch := range changes {
		path := dest.recordsPath().WithID(ch.rec.ID)
		if ch.deleted {
			if _, _, err := pub.u.Remove(pub.ctx, pub.p.self, path); err != nil && !kerr.Is(err, kerr.NotFound) {
				return 0, err
			}
			continue
		}
		if _, _, err := pub.u.Store(pub.ctx, pub.p.self, path, ch.rec.Data, nil); err != nil {
			return 0, err
		}
	}
	return len(changes), nil
}

// sign signs dest's records and stores the signatures in its metadata,
// with the source's published fields.
func (pub *publisher) sign(dest Location, sourceAttrs map[string]any) error {
	coll, err := pub.u.Tx.Get(pub.ctx, dest.collectionPath().Scope(), dest.Collection)
	if err != nil {
		return err
	}
	records, ts, err := pub.records(dest)
	if err != nil {
		return err
	}
	bodies := make([]map[string]any, len(records))
	for i, r := range records {
		bodies[i] = r.Body()
	}
	payload, err := contentsig.Collection(bodies, ts)
	if err != nil {
		return kerr.Wrap(kerr.Invalid, "A record cannot be signed: "+err.Error(), err)
	}
	sigs, err := pub.p.signer(pub.r).Sign(pub.ctx, payload)
	if err != nil || len(sigs) == 0 {
		if err == nil {
			err = errNoSignature
		}
		return kerr.Wrap(kerr.Unavailable, "The signature service is unavailable, please retry later.", err)
	}
	data := resource.CopyData(coll.Data)
	list := make([]any, len(sigs))
	for i, s := range sigs {
		list[i] = map[string]any(s)
	}
	data["signatures"] = list
	data["signature"] = list[0]
	for _, f := range publishedFields {
		if v, ok := sourceAttrs[f]; ok {
			data[f] = v
		}
	}
	_, _, err = pub.u.Store(pub.ctx, pub.p.self, dest.collectionPath(), data, nil)
	return err
}

// setStatus is the reference's update_source_status: the status, and the
// tracking fields of the step.
func (pub *publisher) setStatus(status, previous string) error {
	now := pub.p.now()
	attrs := map[string]any{"status": status}
	switch status {
	case workInProgress:
		attrs["last_edit_by"], attrs["last_edit_date"] = pub.c.UserID, now
	case toReview:
		attrs["last_review_request_by"], attrs["last_review_request_date"] = pub.c.UserID, now
		if !pub.commentGiven {
			attrs["last_editor_comment"] = ""
		}
	case signed:
		if previous != signed {
			attrs["last_review_by"], attrs["last_review_date"] = pub.c.UserID, now
		}
		attrs["last_signature_by"], attrs["last_signature_date"] = pub.c.UserID, now
	}
	return pub.p.updateSource(pub.ctx, pub.u, pub.r, attrs)
}

// rollback makes src's records those of dest again (deletes what was
// added, re-creates what was deleted, restores what changed), and, with
// refreshLastEdit, marks the source signed again. It returns how many
// records it changed.
func (pub *publisher) rollback(src, dest Location, refreshLastEdit bool) (int, error) {
	// Copying dest's state to src is pushing it there.
	n, err := pub.push(dest, src)
	if err != nil {
		return 0, err
	}
	if refreshLastEdit {
		if err := pub.p.updateSource(pub.ctx, pub.u, pub.r, map[string]any{
			"status": signed, "last_editor_comment": "", "last_reviewer_comment": "",
			"last_edit_by": pub.c.UserID, "last_edit_date": pub.p.now(),
		}); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// updateSource merges attrs into the source collection's metadata.
func (p *plugin) updateSource(ctx context.Context, u *resource.Unit, r *Resource, attrs map[string]any) error {
	path := r.Source.collectionPath()
	coll, err := u.Tx.Get(ctx, path.Scope(), path.ID)
	if err != nil {
		return err
	}
	data := resource.CopyData(coll.Data)
	for k, v := range attrs {
		data[k] = v
	}
	_, _, err = u.Store(ctx, p.self, path, data, nil)
	return err
}
