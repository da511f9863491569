// Package signer is Remote Settings' signer (kinto_remote_settings.signer,
// formerly kinto_signer): the review workflow of signed collections and
// their content signatures.
//
// Each line of signer.resources names a source (the workspace editors
// change), an optional preview and a destination (what clients read).
// The source collection's `status` drives the workflow: editors ask for a
// review (to-review: the source is copied to the preview, signed), a
// reviewer other than the last editor approves (to-sign: copied to the
// destination, signed; the status becomes signed), anyone may re-sign
// (to-resign) or drop the changes since the last approval (to-rollback).
// Every step runs in the unit of work of the write that asked for it,
// with the plugin's own principal (plugin:remote-settings): the copy and
// its signature commit with the status change, or nothing does.
//
// What is signed is the destination's live records sorted by id with its
// records timestamp, as canonical JSON (internal/contentsig), and the
// signatures are stored in the destination collection's metadata.
package signer

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync/atomic"
	"time"

	"kintogo/internal/contentsig"
	"kintogo/internal/events"
	"kintogo/internal/httpapi"
	"kintogo/internal/kerr"
	"kintogo/internal/model"
	"kintogo/internal/resource"
	"kintogo/internal/storage"
)

// Plugin is kinto_remote_settings.signer.
type Plugin struct{}

// Name implements plugins.Plugin.
func (Plugin) Name() string { return "kinto_remote_settings.signer" }

// UserID is the principal of the plugin's own writes.
const UserID = "plugin:remote-settings"

// Version is the version the capability advertises: the reference's when
// it runs without a version file.
const Version = "0.0.0"

type plugin struct {
	h       *httpapi.Server
	st      *settings
	signers *signers
	log     *slog.Logger
	self    *resource.Caller
	// globbed are the existing collections that settings with patterns
	// name (see refreshGlobbed).
	globbed atomic.Pointer[[]*Resource]
}

// Provision implements plugins.Plugin.
func (Plugin) Provision(h *httpapi.Server) error {
	st, err := readSettings(h.Settings())
	if err != nil {
		return err
	}
	sg, err := loadSigners(st)
	if err != nil {
		return err
	}
	p := &plugin{h: h, st: st, signers: sg, log: h.Logger(), self: resource.PluginCaller(UserID)}
	if err := p.refreshGlobbed(context.Background()); err != nil {
		return err
	}
	h.Capability("signer", httpapi.CapabilityFunc(func(*http.Request) any { return p.capability() }))
	if len(st.globs) > 0 {
		h.OnChange(p.onCommitted)
	}
	h.Heartbeat("signer", p.heartbeat)
	if len(sg.chains) > 0 {
		h.Handle(ChainsPrefix+"{name}", httpapi.Endpoint{Name: "signer-chain", Public: true, Expose: httpapi.BaseExpose,
			Methods: map[string]httpapi.Handler{"GET": p.serveChain}})
	}
	h.Engine().Hook(resource.Hooks{
		BeforeWrite:   []func(context.Context, *resource.Unit, model.Path) error{p.lockSource},
		InTransaction: []func(context.Context, *resource.Unit, resource.Change) error{p.onChange},
	})
	if st.autoCreate {
		if err := p.autoCreate(context.Background()); err != nil {
			return fmt.Errorf("signer.auto_create_resources: %w", err)
		}
	}
	return nil
}

// refreshGlobbed finds the collections of per-bucket sources that a
// setting with patterns names (signer.{bid}.{cid-re}.to_review_enabled):
// the reference advertises them as resources of their own.
func (p *plugin) refreshGlobbed(ctx context.Context) error {
	if len(p.st.globs) == 0 {
		return nil
	}
	var found []*Resource
	err := p.h.Engine().Store().View(ctx, func(tx storage.Tx) error {
		found = nil
		for _, r := range p.st.resources {
			if !r.perBucket() || !p.st.globbedBucket(r.Source.Bucket) {
				continue
			}
			colls, err := tx.List(ctx, model.Path{Kind: model.Collection, BucketID: r.Source.Bucket}.Scope(), storage.ListOptions{})
			if err != nil {
				return err
			}
			for _, c := range colls {
				rc := r.forCollection(c.ID)
				_, own := p.st.byKey[rc.key()]
				if _, named := p.st.globbed(r.Source.Bucket, c.ID); named && !own {
					found = append(found, rc)
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Slice(found, func(i, j int) bool { return found[i].key() < found[j].key() })
	p.globbed.Store(&found)
	return nil
}

// hasAny reports whether one of principals is in allowed.
func hasAny(principals, allowed []string) bool {
	for _, a := range allowed {
		if contains(principals, a) {
			return true
		}
	}
	return false
}

// onCommitted refreshes the collections named by patterns when one was
// created or deleted (here or on another node): a collection named by a
// pattern that is deleted, or not listed yet.
func (p *plugin) onCommitted(evs []events.Event) {
	for _, ev := range evs {
		stale := ev.Everything
		if ev.ResourceName == "collection" && ev.ID != "" && p.st.globbedBucket(ev.BucketID) {
			if _, named := p.st.globbed(ev.BucketID, ev.ID); named {
				stale = ev.Deleted || !p.listed(ev.BucketID, ev.ID)
			}
		}
		if stale {
			if err := p.refreshGlobbed(context.Background()); err != nil {
				p.log.Error("signer: listing the collections of its patterns", "err", err)
			}
			return
		}
	}
}

// listed reports whether the collection is among those named by
// patterns that the capability lists.
func (p *plugin) listed(bid, cid string) bool {
	g := p.globbed.Load()
	if g == nil {
		return false
	}
	for _, r := range *g {
		if r.Source.Bucket == bid && r.Source.Collection == cid {
			return true
		}
	}
	return false
}

// capability is the signer capability, as the reference advertises it.
func (p *plugin) capability() map[string]any {
	resources := []any{}
	all := p.st.resources
	if g := p.globbed.Load(); g != nil {
		all = append(append([]*Resource(nil), all...), *g...)
	}
	for _, r := range all {
		res := map[string]any{"source": r.Source.capability(), "destination": r.Destination.capability()}
		if r.HasPreview {
			res["preview"] = r.Preview.capability()
		}
		if enabled := p.st.reviewEnabled(r); enabled != p.st.toReviewEnabled {
			res["to_review_enabled"] = enabled
		}
		resources = append(resources, res)
	}
	return map[string]any{
		"description":         "Digital signatures for integrity and authenticity of records.",
		"url":                 "https://github.com/mozilla/remote-settings/tree/main/kinto-remote-settings",
		"version":             Version,
		"resources":           resources,
		"plugin_userid":       UserID,
		"group_check_enabled": true,
		"editors_group":       p.st.editorsGroup,
		"reviewers_group":     p.st.reviewersGroup,
		"to_review_enabled":   p.st.toReviewEnabled,
	}
}

// serveChain answers a certificate chain (an x5u): immutable, since its
// name is its hash.
func (p *plugin) serveChain(w http.ResponseWriter, r *http.Request, _ *httpapi.Call) error {
	ch, ok := p.signers.chains[r.PathValue("name")]
	if !ok {
		return kerr.E(kerr.MissingResource, "")
	}
	w.Header().Set("Content-Type", "application/pem-certificate-chain")
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(ch.pem))
	return nil
}

// heartbeat signs a test message with every signer, and checks the
// chains kintogo serves: false once one expired, a warning before (the
// reference's thresholds: 5% of its lifetime, within 10 to 30 days).
func (p *plugin) heartbeat(ctx context.Context) bool {
	for _, s := range p.signers.list {
		if _, err := s.Sign(ctx, []byte("This is a heartbeat test.")); err != nil {
			p.log.Error("signer heartbeat", "err", err)
			return false
		}
	}
	now := p.h.Now()
	for _, ch := range p.signers.chains {
		leaf := ch.certs[0]
		if now.After(leaf.NotAfter) {
			p.log.Error("signer heartbeat: the certificate chain expired", "x5u", ch.url, "not_after", leaf.NotAfter)
			return false
		}
		if left, alert := p.st.expiresSoon(leaf, now); alert {
			p.log.Warn(fmt.Sprintf("Only %d days before the signer's certificate expires (%s): renew it, then run kintogo resign", left, leaf.NotAfter), "x5u", ch.url)
		}
	}
	return true
}

// autoCreate creates the configured source buckets and collections at
// start, writable by signer.auto_create_resources_principals.
func (p *plugin) autoCreate(ctx context.Context) error {
	perms := map[string][]string{"write": p.st.autoCreatePrincipals}
	_, err := resource.Write(ctx, p.h.Engine(), func(u *resource.Unit) (struct{}, error) {
		for _, r := range p.st.resources {
			paths := []model.Path{r.Source.bucketPath()}
			if r.Source.Collection != "" {
				paths = append(paths, r.Source.collectionPath())
			}
			for _, path := range paths {
				if _, err := u.Create(ctx, p.self, path, map[string]any{}, perms); err != nil {
					return struct{}{}, err
				}
			}
		}
		return struct{}{}, nil
	})
	return err
}

// lockSource serializes the writes of a source collection and of its
// records (their hooks write the collection) before they read anything:
// on PostgreSQL, a second node approving the same review concurrently
// waits, then sees the status the first one left ("Collection already
// signed"), so that one approval publishes one copy and one signature.
func (p *plugin) lockSource(ctx context.Context, u *resource.Unit, path model.Path) error {
	bid, cid := path.In()
	if path.Kind == model.Group || cid == "" || p.st.pick(bid, cid) == nil {
		return nil
	}
	return u.Tx.LockScope(ctx, model.Path{Kind: model.Collection, BucketID: bid}.Scope())
}

// onChange is the plugin's hook on every write: the workflow on source
// collections, the checks on their records, the guard of previews and
// destinations.
func (p *plugin) onChange(ctx context.Context, u *resource.Unit, ch resource.Change) error {
	if ch.Path.Kind == nil || ch.Object == nil || ch.Caller == nil {
		return nil
	}
	// Previews and destinations are written by the signer (and
	// signer.destination_writers): not by whoever created their bucket,
	// nor by the source's writers, so that what clients verify was
	// reviewed.
	if !ch.Caller.Plugin && p.st.reserved(ch.Path) && !hasAny(ch.Caller.Principals(), p.st.destinationWriters) {
		return forbidden("Previews and destinations of signed collections are written by the signer only.")
	}
	switch ch.Path.Kind {
	case model.Record:
		return p.onRecord(ctx, u, ch)
	case model.Collection:
		if ch.Action == "delete" {
			return p.onCollectionDelete(ctx, u, ch)
		}
		if ch.Caller.Plugin {
			return nil
		}
		return p.onCollection(ctx, u, ch)
	}
	return nil
}

// signer returns the signer of a resource.
func (p *plugin) signer(r *Resource) contentsig.Signer { return p.signers.of(r) }

// reviewEvents are Kinto's review events by action.
var reviewEvents = map[string]string{
	"request": "kinto_remote_settings.signer.events.ReviewRequested",
	"approve": "kinto_remote_settings.signer.events.ReviewApproved",
	"reject":  "kinto_remote_settings.signer.events.ReviewRejected",
	"cancel":  "kinto_remote_settings.signer.events.ReviewCanceled",
}

// reviewEvent announces a review event in the unit (to the e-mail and
// chat plugins), with its fields (name, value pairs), and logs it once the
// unit committed (Kinto's ReviewRequested, ReviewApproved, ReviewRejected,
// ReviewCanceled).
func (p *plugin) reviewEvent(pub *publisher, action string, fields ...any) error {
	r, c := pub.r, pub.c
	pub.u.OnCommit(func() {
		args := append([]any{"action", action, "user_id", c.UserID, "bucket_id", r.Source.Bucket,
			"collection_id", r.Source.Collection, "destination", r.Destination.uri()}, fields...)
		p.log.Info("signer: review "+action, args...)
	})
	n := resource.Notice{Name: reviewEvents[action], Change: pub.ch, Fields: map[string]any{}}
	for i := 0; i+1 < len(fields); i += 2 {
		n.Fields[fields[i].(string)] = fields[i+1]
	}
	return pub.u.Announce(pub.ctx, n)
}
