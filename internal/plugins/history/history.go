// Package history is Kinto's kinto.plugins.history: every change of a
// bucket, collection, group or record leaves an entry in its bucket's
// history, in the same transaction (kinto-protocol.md §11.3), listed and
// purged at /v1/buckets/{bid}/history; a collection's records as they were
// at a timestamp are rebuilt from it (snapshot.go).
package history

import (
	"context"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"kintogo/internal/httpapi"
	"kintogo/internal/model"
	"kintogo/internal/query"
	"kintogo/internal/resource"
	"kintogo/internal/storage"
)

// Plugin is kinto.plugins.history.
type Plugin struct{}

// Name implements plugins.Plugin.
func (Plugin) Name() string { return "kinto.plugins.history" }

// Provision implements plugins.Plugin.
func (Plugin) Provision(h *httpapi.Server) error {
	s := &plugin{h: h, excluded: h.Settings().List("history.exclude_resources"),
		explicit: h.Settings().Bool("explicit_permissions")}
	h.Engine().Hook(s.hooks())
	h.Handle("/v1/buckets/{bid}/history", httpapi.Endpoint{Name: "history-plural", Expose: httpapi.ListExpose, Methods: map[string]httpapi.Handler{
		"GET": s.listHistory, "DELETE": s.purgeHistory,
	}})
	h.Handle("/v1/buckets/{bid}/snapshot/collections/{at}", httpapi.Endpoint{Name: "history_snapshot", Expose: httpapi.BaseExpose,
		Methods: map[string]httpapi.Handler{"GET": s.snapshot}})
	h.Capability("history", map[string]any{
		"description": "Track changes on data.",
		"url":         "http://kinto.readthedocs.io/en/latest/api/1.x/history.html",
	})
	return nil
}

// plugin is the provisioned history plugin.
type plugin struct {
	h        *httpapi.Server
	excluded []string // history.exclude_resources
	explicit bool     // explicit_permissions: entries get their readers
}

func (s *plugin) settingGrants(name string, c *httpapi.Call) bool {
	return s.h.Engine().Authorizer().SettingGrants(name, c.Principals())
}

func historyScope(bucketID string) storage.Scope {
	return storage.Scope{Parent: "/buckets/" + bucketID, Resource: "history"}
}

// historySchema is the closed set of fields of history entries.
var historySchema = query.Schema{Closed: true, Fields: []string{
	"user_id", "uri", "action", "date", "resource_name", "bucket_id", "collection_id", "group_id", "record_id", "target",
}}

// hooks are the plugin's hooks on writes: every write of a
// bucket, collection, group or record locks its bucket's history first
// (it ends by writing there: writers of a bucket then lock in one order),
// and leaves an entry there in its transaction.
func (s *plugin) hooks() resource.Hooks {
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
				case ch.Path.Kind == model.Bucket && ch.Action == "delete":
					return nil // its history went with it
				}
				return s.recordHistory(ctx, u, ch.Caller, ch.Action, ch.Path, ch.Object)
			},
		},
	}
}

// recordHistory stores the history entry of a change of the object at p
// (obj is the object after the change, or its tombstone), readable by
// whoever may read the bucket, the collection or the object once the
// request is done (a batch may change their permissions after the
// change), as Kinto's entries are.
func (s *plugin) recordHistory(ctx context.Context, u *resource.Unit, c *resource.Caller, action string, p model.Path, obj *storage.Object) error {
	tx := u.Tx
	target := p.WithID(obj.ID)
	uri := target.URI()
	for _, ex := range s.excluded {
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
		"date":   s.h.Now().UTC().Format("2006-01-02T15:04:05.000000+00:00"),
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
	if !s.explicit {
		return nil
	}
	// Readers of the entry: readers and writers of the bucket, of the
	// collection (for records) and of the object itself, at the end of
	// the request.
	sources := []string{"/buckets/" + bucketID, uri}
	if p.Kind == model.Record {
		sources = append(sources, target.ParentURI())
	}
	u.AtEnd(func(ctx context.Context) error {
		readers := map[string]bool{}
		for _, src := range sources {
			acl, err := u.Tx.Permissions(ctx, src)
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
		return u.Tx.SetPermissions(ctx, "/buckets/"+bucketID+"/history/"+id, map[string][]string{"read": list})
	})
	return nil
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
func (s *plugin) historyAccess(ctx context.Context, tx storage.Tx, c *httpapi.Call, bucketID, perm string) (ids []string, all, ok bool, err error) {
	bucket := model.Path{Kind: model.Bucket, ID: bucketID}
	grants := []storage.ACE{{URI: bucket.URI(), Permission: "write"}}
	if perm == "read" {
		grants = append(grants, storage.ACE{URI: bucket.URI(), Permission: "read"})
	}
	has, err := tx.HasAny(ctx, grants, c.Principals())
	if err != nil || has || s.settingGrants("bucket_write_principals", c) || (perm == "read" && s.settingGrants("bucket_read_principals", c)) {
		return nil, true, err == nil, err
	}
	prefix := bucket.URI() + "/history/"
	found, err := tx.Accessible(ctx, prefix, 1, []string{perm}, c.Principals())
	if err != nil || len(found) == 0 {
		return nil, false, false, err
	}
	for uri := range found {
		ids = append(ids, strings.TrimPrefix(uri, prefix))
	}
	return ids, false, true, nil
}

// listHistory is GET/HEAD /buckets/{bid}/history.
func (s *plugin) listHistory(w http.ResponseWriter, r *http.Request, c *httpapi.Call) error {
	ctx := r.Context()
	bid := r.PathValue("bid")
	var l httpapi.ListReply
	err := s.h.View(ctx, func(tx storage.Tx) error {
		if err := c.LoadPrincipals(ctx, tx); err != nil {
			return err
		}
		ids, all, ok, err := s.historyAccess(ctx, tx, c, bid, "read")
		if err != nil {
			return err
		}
		if !ok {
			return c.Denied()
		}
		if err := httpapi.FirstErr(httpapi.CheckAccept(r), c.ParamsErr); err != nil {
			return err
		}
		q, err := query.Parse(c.Params, historySchema, s.h.Engine().NowMS())
		if err != nil {
			return err
		}
		ts, err := tx.Timestamp(ctx, historyScope(bid))
		if err != nil {
			return err
		}
		if ts == 0 {
			ts = s.h.Engine().NowMS()
		}
		limit := s.h.Engine().Limit(q.Limit)
		opts := storage.ListOptions{Filters: q.Filters, Sort: q.Sort, After: q.After, Limit: limit + 1, IDs: historyIDs(all, ids)}
		objs, err := tx.List(ctx, historyScope(bid), opts)
		if err != nil {
			return err
		}
		l = httpapi.ListReply{Path: model.Path{Kind: &model.Kind{Name: "history"}}, Query: q, Timestamp: ts, Counted: true}
		if len(objs) > limit {
			objs = objs[:limit]
			l.Next = s.h.NextPage(r, c.Params, limit, query.Token(objs[len(objs)-1], q.Sort, q.Offset+int64(limit)))
		}
		items := make([]map[string]any, len(objs))
		for i, o := range objs {
			items[i] = httpapi.Project(o, o.Body(), q.Fields)
		}
		l.Items, l.Total = items, int64(len(items))
		if l.Next != "" || q.After != nil {
			// Total-Objects counts every entry the selection holds, not
			// the page: in SQL, as record counts are.
			n, err := tx.Count(ctx, historyScope(bid), q.Filters, opts.IDs)
			if err != nil {
				return err
			}
			l.Total = int64(n)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.h.WriteList(w, r, c, l)
}

// purgeHistory is DELETE /buckets/{bid}/history: removes the entries the
// caller may write (all of them for bucket writers), filtered like a list.
func (s *plugin) purgeHistory(w http.ResponseWriter, r *http.Request, c *httpapi.Call) error {
	ctx := r.Context()
	bid := r.PathValue("bid")
	type purged struct {
		tombs []map[string]any
		ts    int64
	}
	res, err := resource.Write(ctx, s.h.Engine(), func(u *resource.Unit) (purged, error) {
		tx := u.Tx
		var res purged
		if err := c.LoadPrincipals(ctx, tx); err != nil {
			return res, err
		}
		ids, all, ok, err := s.historyAccess(ctx, tx, c, bid, "write")
		if err != nil {
			return res, err
		}
		if !ok {
			return res, c.Denied()
		}
		if c.ParamsErr != nil {
			return res, c.ParamsErr
		}
		q, err := query.Parse(c.Params, historySchema, s.h.Engine().NowMS())
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
	httpapi.SetTimestamp(w, ts)
	s.h.WriteJSON(w, http.StatusOK, map[string]any{"data": tombs})
	return nil
}

// historyIDs is the ids restriction of a history list: nil for all.
func historyIDs(all bool, ids []string) []string {
	if all {
		return nil
	}
	return ids
}
