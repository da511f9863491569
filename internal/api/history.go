package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"kintogo/internal/model"
	"kintogo/internal/query"
	"kintogo/internal/resource"
	"kintogo/internal/storage"
)

// The history plugin (kinto.plugins.history): every change of a bucket,
// collection, group or record leaves an entry in its bucket's history, in
// the same transaction (kinto-protocol.md §11.3).

func (s *Server) historyEnabled() bool { return s.settings.Has("includes", "kinto.plugins.history") }

func historyScope(bucketID string) storage.Scope {
	return storage.Scope{Parent: "/buckets/" + bucketID, Resource: "history"}
}

// historySchema is the closed set of fields of history entries.
var historySchema = query.Schema{Closed: true, Fields: []string{
	"user_id", "uri", "action", "date", "resource_name", "bucket_id", "collection_id", "group_id", "record_id", "target",
}}

// historyHooks are the history plugin's hooks on writes: every write of a
// bucket, collection, group or record locks its bucket's history first
// (it ends by writing there: writers of a bucket then lock in one order),
// and leaves an entry there in its transaction.
func (s *Server) historyHooks() resource.Hooks {
	return resource.Hooks{
		BeforeWrite: []func(context.Context, *resource.Unit, model.Path) error{
			func(ctx context.Context, u *resource.Unit, p model.Path) error {
				bucketID := p.BucketID
				if p.Kind == model.Bucket {
					bucketID = p.ID
				}
				if bucketID == "" || p.Kind == model.Account {
					return nil
				}
				return u.Tx.LockScope(ctx, historyScope(bucketID))
			},
		},
		InTransaction: []func(context.Context, *resource.Unit, resource.Change) error{
			func(ctx context.Context, u *resource.Unit, ch resource.Change) error {
				switch {
				case ch.Object == nil || ch.Path.Kind == nil || ch.Path.Kind == model.Account:
					return nil // a flush, an account
				case ch.Path.Kind == model.Bucket && ch.Event.Action == "delete":
					return nil // its history went with it
				}
				return s.recordHistory(ctx, u.Tx, ch.Caller, ch.Event.Action, ch.Path, ch.Object)
			},
		},
	}
}

// recordHistory stores the history entry of a change of the object at p
// (obj is the object after the change, or its tombstone), readable by
// whoever may read the bucket, the collection or the object.
func (s *Server) recordHistory(ctx context.Context, tx storage.Tx, c *resource.Caller, action string, p model.Path, obj *storage.Object) error {
	target := p.WithID(obj.ID)
	uri := target.URI()
	for _, ex := range s.settings.List("history.exclude_resources") {
		if storage.UnderURI(uri, ex) {
			return nil
		}
	}
	bucketID := p.BucketID
	if p.Kind == model.Bucket {
		bucketID = obj.ID
	}
	perms, err := tx.Permissions(ctx, uri)
	if err != nil {
		return err
	}
	entry := map[string]any{
		"action": action, "resource_name": p.Kind.Name, "uri": uri, "user_id": nullable(c.UserID),
		"date":   s.opts.Now().UTC().Format("2006-01-02T15:04:05.000000+00:00"),
		"target": map[string]any{"data": obj.Body(), "permissions": perms},
	}
	switch p.Kind {
	case model.Bucket:
		entry["bucket_id"] = obj.ID
	case model.Collection:
		entry["collection_id"] = obj.ID
	case model.Group:
		entry["group_id"] = obj.ID
	case model.Record:
		entry["collection_id"] = p.CollectionID
		entry["record_id"] = obj.ID
	}
	id := uuid.NewString()
	if _, err := tx.Create(ctx, historyScope(bucketID), &storage.Object{ID: id, Data: entry}); err != nil {
		return err
	}
	if !s.settings.Bool("explicit_permissions") {
		return nil
	}
	// Readers of the entry: readers and writers of the bucket, of the
	// collection (for records) and of the object itself.
	readers := map[string]bool{}
	sources := []string{"/buckets/" + bucketID, uri}
	if p.Kind == model.Record {
		sources = append(sources, target.ParentURI())
	}
	for _, src := range sources {
		acl, err := tx.Permissions(ctx, src)
		if err != nil {
			return err
		}
		for _, perm := range []string{"read", "write"} {
			for _, principal := range acl[perm] {
				readers[principal] = true
			}
		}
	}
	list := make([]string, 0, len(readers))
	for principal := range readers {
		list = append(list, principal)
	}
	return tx.SetPermissions(ctx, "/buckets/"+bucketID+"/history/"+id, map[string][]string{"read": list})
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// historyAccess decides which entries of a bucket's history the caller may
// see: all of them for readers of the bucket, else those whose ACL names
// the caller; ok is false when there are none to see.
func (s *Server) historyAccess(ctx context.Context, tx storage.Tx, c *call, bucketID, perm string) (ids []string, all, ok bool, err error) {
	bucket := model.Path{Kind: model.Bucket, ID: bucketID}
	grants := []storage.ACE{{URI: bucket.URI(), Permission: "write"}}
	if perm == "read" {
		grants = append(grants, storage.ACE{URI: bucket.URI(), Permission: "read"})
	}
	has, err := tx.HasAny(ctx, grants, c.principals())
	if err != nil || has || s.settingGrants("bucket_write_principals", c) || (perm == "read" && s.settingGrants("bucket_read_principals", c)) {
		return nil, true, err == nil, err
	}
	prefix := bucket.URI() + "/history/"
	found, err := tx.Accessible(ctx, prefix, 1, []string{perm}, c.principals())
	if err != nil || len(found) == 0 {
		return nil, false, false, err
	}
	for uri := range found {
		ids = append(ids, strings.TrimPrefix(uri, prefix))
	}
	return ids, false, true, nil
}

// listHistory is GET/HEAD /buckets/{bid}/history.
func (s *Server) listHistory(w http.ResponseWriter, r *http.Request, c *call) error {
	ctx := r.Context()
	bid := r.PathValue("bid")
	var l listReply
	err := s.view(ctx, func(tx storage.Tx) error {
		if err := c.loadPrincipals(ctx, tx); err != nil {
			return err
		}
		ids, all, ok, err := s.historyAccess(ctx, tx, c, bid, "read")
		if err != nil {
			return err
		}
		if !ok {
			return c.denied()
		}
		if err := firstErr(checkAccept(r), c.paramsErr); err != nil {
			return err
		}
		q, err := query.Parse(c.params, historySchema, s.nowMS())
		if err != nil {
			return err
		}
		ts, err := tx.Timestamp(ctx, historyScope(bid))
		if err != nil {
			return err
		}
		if ts == 0 {
			ts = s.nowMS()
		}
		limit := s.engine.Limit(q.Limit)
		opts := storage.ListOptions{Filters: q.Filters, Sort: q.Sort, After: q.After, Limit: limit + 1, IDs: historyIDs(all, ids)}
		objs, err := tx.List(ctx, historyScope(bid), opts)
		if err != nil {
			return err
		}
		l = listReply{path: model.Path{Kind: &model.Kind{Name: "history"}}, query: q, ts: ts, counted: true}
		if len(objs) > limit {
			objs = objs[:limit]
			l.next = s.nextPage(r, c.params, limit, query.Token(objs[len(objs)-1], q.Sort, q.Offset+int64(limit)))
		}
		items := make([]map[string]any, len(objs))
		for i, o := range objs {
			items[i] = project(o, o.Body(), q.Fields)
		}
		l.items, l.total = items, int64(len(items))
		return nil
	})
	if err != nil {
		return err
	}
	return s.writeList(w, r, c, l)
}

// purgeHistory is DELETE /buckets/{bid}/history: removes the entries the
// caller may write (all of them for bucket writers), filtered like a list.
func (s *Server) purgeHistory(w http.ResponseWriter, r *http.Request, c *call) error {
	ctx := r.Context()
	bid := r.PathValue("bid")
	type purged struct {
		tombs []map[string]any
		ts    int64
	}
	res, err := resource.Write(ctx, s.engine, func(u *resource.Unit) (purged, error) {
		tx := u.Tx
		var res purged
		if err := c.loadPrincipals(ctx, tx); err != nil {
			return res, err
		}
		ids, all, ok, err := s.historyAccess(ctx, tx, c, bid, "write")
		if err != nil {
			return res, err
		}
		if !ok {
			return res, c.denied()
		}
		if c.paramsErr != nil {
			return res, c.paramsErr
		}
		q, err := query.Parse(c.params, historySchema, s.nowMS())
		if err != nil {
			return res, err
		}
		objs, err := tx.List(ctx, historyScope(bid), storage.ListOptions{Filters: q.Filters, Sort: q.Sort, IDs: historyIDs(all, ids)})
		if err != nil {
			return res, err
		}
		for _, o := range objs {
			tomb, err := tx.Delete(ctx, historyScope(bid), o.ID, 0)
			if err != nil {
				return res, err
			}
			if err := tx.DeletePermissions(ctx, "/buckets/"+bid+"/history/"+o.ID); err != nil {
				return res, err
			}
			res.tombs = append(res.tombs, tomb.Body())
			res.ts = max(res.ts, tomb.LastModified)
		}
		if res.ts == 0 {
			res.ts, err = tx.Timestamp(ctx, historyScope(bid))
		}
		return res, err
	})
	if err != nil {
		return err
	}
	tombs, ts := res.tombs, res.ts
	if tombs == nil {
		tombs = []map[string]any{}
	}
	setTimestamp(w, ts)
	s.writeJSON(w, http.StatusOK, map[string]any{"data": tombs})
	return nil
}

// historyIDs is the ids restriction of a history list: nil for all.
func historyIDs(all bool, ids []string) []string {
	if all {
		return nil
	}
	return ids
}
