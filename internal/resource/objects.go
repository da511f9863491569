package resource

import (
	"context"
	"encoding/json"
	"maps"
	"sort"
	"strconv"

	"kintogo/internal/kerr"
	"kintogo/internal/model"
	"kintogo/internal/query"
	"kintogo/internal/storage"
)

// Request is what every operation on an object or a list gets.
type Request struct {
	Path   model.Path
	Caller *Caller
	Pre    Preconditions
	// Invalid is an error in the request itself (its body, a header, a
	// parameter), which Kinto reports only once the caller is authorized.
	Invalid error
}

// Body is the envelope of a write: {"data": {...}, "permissions": {...}}.
type Body struct {
	Data     map[string]any // nil when absent
	Perms    map[string][]string
	HasPerms bool
	// NullPerms are permissions given as null (ignored by a plain PATCH,
	// removed by a merge-patch).
	NullPerms []string
}

// WriteRequest is a POST, PUT or PATCH of an object. Body is nil when
// Invalid is set.
type WriteRequest struct {
	Request
	Body *Body
	// Patch is the kind of PATCH, and Ops its JSON-Patch operations.
	Patch PatchKind
	Ops   []any
}

// Written is what a write of one object produced: the object, the ACL the
// caller may see, and whether it was created (else it existed).
type Written struct {
	Object  *storage.Object
	Perms   map[string][]string
	Created bool
}

// Patched is what a PATCH produced, with what Response-Behavior light and
// diff answers compare (ChangedFields).
type Patched struct {
	Written
	Before, Sent map[string]any
}

// Fetched is one object read.
type Fetched struct {
	Object *storage.Object
	Perms  map[string][]string // what the caller may see of its ACL
	// Collection is a record's collection (its cache_expires sets the
	// answer's cache headers).
	Collection *storage.Object
}

// ListRequest is a read or plural DELETE of a list.
type ListRequest struct {
	Request
	// Query is the parsed query (nil when Invalid is set).
	Query *query.Query
	// Count asks for the number of matching objects instead of the page
	// (HEAD).
	Count bool
}

// Listed is one page of a list.
type Listed struct {
	Objects []*storage.Object
	// Timestamp is the list's (its ETag): the clock's when Unwritten,
	// the list never written.
	Timestamp int64
	Unwritten bool
	// Next is the _token of the next page, "" on the last one.
	Next  string
	Total int64 // with Count
	// Collection is the records' collection.
	Collection *storage.Object
}

// Deleted is what a plural DELETE removed.
type Deleted struct {
	Tombstones []*storage.Object // newest first
	Timestamp  int64             // the list's, after the deletion
	Next       string            // the single-use _token of the next page
}

// NewChange is the change of a write of obj (the object written, or its
// tombstone) at p (its list, or the object itself), which replaced old
// (nil: a creation).
func NewChange(p model.Path, c *Caller, obj, old *storage.Object) Change {
	action := "update"
	switch {
	case obj.Deleted:
		action = "delete"
	case old == nil:
		action = "create"
	}
	return Change{Action: action, Path: p.WithID(obj.ID), Object: obj, Old: old, Caller: c}
}

// Get reads an object, with Kinto's checks in Kinto's order: permission,
// then the request's own errors, then the preconditions (a matching
// If-None-Match is a NotModified error).
func (e *Engine) Get(ctx context.Context, req Request) (Fetched, error) {
	var f Fetched
	c, p := req.Caller, req.Path
	err := Read(ctx, e, func(tx storage.Tx) error {
		if err := c.Load(ctx, tx); err != nil {
			return err
		}
		if err := e.authorizeObject(ctx, tx, c, p, "read"); err != nil {
			return err
		}
		var err error
		if f.Collection, err = checkParent(ctx, tx, p); err != nil {
			return err
		}
		if req.Invalid != nil {
			return req.Invalid
		}
		if f.Object, err = tx.Get(ctx, p.Scope(), p.ID); err != nil {
			return err
		}
		if err := ReadPreconditions(req.Pre, f.Object.LastModified, f.Object); err != nil {
			return err
		}
		f.Perms, err = VisiblePermissions(ctx, tx, p.URI(), c.Principals())
		return err
	})
	return f, err
}

// List reads one page of a list: the objects the caller may see that match
// the query, in its order, after its token.
func (e *Engine) List(ctx context.Context, req ListRequest) (Listed, error) {
	var l Listed
	c, p := req.Caller, req.Path
	err := Read(ctx, e, func(tx storage.Tx) error {
		scope, coll, err := e.ListAccess(ctx, tx, c, p)
		if err != nil {
			return err
		}
		l.Collection = coll
		if req.Invalid != nil {
			return req.Invalid
		}
		q := req.Query
		if l.Timestamp, err = tx.Timestamp(ctx, p.Scope()); err != nil {
			return err
		}
		if l.Timestamp == 0 {
			l.Timestamp, l.Unwritten = e.NowMS(), true
		}
		if err := ReadPreconditions(req.Pre, l.Timestamp, nil); err != nil {
			return err
		}
		if req.Count {
			// A count answers without its page (HEAD has no body and no
			// Next-Page).
			n, err := tx.Count(ctx, p.Scope(), q.Filters, ScopeIDs(scope))
			l.Total = int64(n)
			return err
		}
		limit := e.Limit(q.Limit)
		objs, err := tx.List(ctx, p.Scope(), storage.ListOptions{
			Filters: q.Filters, Sort: q.Sort, After: q.After, Limit: limit + 1,
			IncludeDeleted: q.Tombstones, IDs: ScopeIDs(scope),
		})
		if err != nil {
			return err
		}
		if len(objs) > limit {
			objs = objs[:limit]
			l.Next = query.Token(objs[len(objs)-1], q.Sort, q.Offset+int64(len(objs)))
		}
		l.Objects = objs
		return nil
	})
	return l, err
}

// Create is a POST on a list: a new object (201), or, when the body names
// an existing one the caller may read, that object (200).
func (e *Engine) Create(ctx context.Context, req WriteRequest) (Written, error) {
	c, p := req.Caller, req.Path
	return Write(groupOf(ctx, req.Path), e, func(u *Unit) (Written, error) {
		tx := u.Tx
		if err := u.prepare(ctx, c, p); err != nil {
			return Written{}, err
		}
		var id any
		var existing *storage.Object
		if req.Body != nil && req.Body.Data != nil {
			id = req.Body.Data[query.IDField]
			if sid, ok := id.(string); ok && p.Kind.ValidID(sid) {
				o, err := tx.Get(ctx, p.Scope(), sid)
				if err != nil && !kerr.Is(err, kerr.NotFound) {
					return Written{}, err
				}
				existing = o
			}
		}
		var allowed bool
		var err error
		if existing != nil {
			allowed, err = e.authz.Allowed(ctx, tx, p.WithID(existing.ID), "read", c.Principals())
		} else {
			allowed, err = e.authz.CanCreate(ctx, tx, p, c.Principals())
		}
		if err != nil {
			return Written{}, err
		}
		if !allowed {
			return Written{}, c.Denied()
		}
		if req.Invalid != nil {
			return Written{}, req.Invalid
		}
		if id != nil {
			if sid, ok := id.(string); !ok || !p.Kind.ValidID(sid) {
				return Written{}, InvalidID
			}
		}
		if err := CheckPreconditions(ctx, tx, p, req.Pre, existing); err != nil {
			return Written{}, err
		}
		if existing != nil {
			perms, err := VisiblePermissions(ctx, tx, p.WithID(existing.ID).URI(), c.Principals())
			return Written{Object: existing, Perms: perms}, err
		}
		data := CopyData(req.Body.Data)
		newID, _ := id.(string)
		if newID == "" {
			newID = p.Kind.NewID()
		}
		target := p.WithID(newID)
		out, err := e.storeObject(ctx, tx, target, nil, data)
		if err != nil {
			return Written{}, err
		}
		if err := afterWrite(ctx, tx, target, nil, out); err != nil {
			return Written{}, err
		}
		perms, err := e.storeNewPermissions(ctx, tx, c, target.URI(), req.Body.Perms)
		if err != nil {
			return Written{}, err
		}
		ch := NewChange(p, c, out, nil)
		ch.Sent = req.Body.Data
		return Written{Object: out, Perms: perms, Created: true}, u.Changed(ctx, ch)
	})
}

// Put creates or replaces an object.
func (e *Engine) Put(ctx context.Context, req WriteRequest) (Written, error) {
	c, p := req.Caller, req.Path
	return Write(groupOf(ctx, req.Path), e, func(u *Unit) (Written, error) {
		tx := u.Tx
		if err := u.prepare(ctx, c, p); err != nil {
			return Written{}, err
		}
		existing, err := tx.Get(ctx, p.Scope(), p.ID)
		if err != nil && !kerr.Is(err, kerr.NotFound) {
			return Written{}, err
		}
		var allowed bool
		if existing != nil && !req.Pre.IfNoneMatch.Any {
			allowed, err = e.authz.Allowed(ctx, tx, p, "write", c.Principals())
		} else {
			allowed, err = e.authz.CanCreate(ctx, tx, p, c.Principals())
		}
		if err != nil {
			return Written{}, err
		}
		if !allowed {
			return Written{}, c.Denied()
		}
		if !p.Kind.ValidID(p.ID) {
			return Written{}, InvalidID
		}
		if req.Invalid != nil {
			return Written{}, req.Invalid
		}
		if err := CheckPreconditions(ctx, tx, p, req.Pre, existing); err != nil {
			return Written{}, err
		}
		var data map[string]any
		switch {
		case req.Body.Data != nil:
			data = CopyData(req.Body.Data)
		case existing != nil:
			data = CopyData(existing.Data)
		default:
			data = map[string]any{}
		}
		if id, ok := data[query.IDField]; ok && id != p.ID {
			return Written{}, kerr.InvalidParam("body", kerr.Name("id"), "Object id does not match existing object")
		}
		out, err := e.storeObject(ctx, tx, p, existing, data)
		if err != nil {
			return Written{}, err
		}
		if err := afterWrite(ctx, tx, p, existing, out); err != nil {
			return Written{}, err
		}
		var perms map[string][]string
		if len(req.Body.Perms) > 0 {
			// Kinto replaces the whole ACL only when permissions are
			// given: an empty mapping (or only nulls) changes nothing.
			perms = replacePermissions(p.Kind, req.Body.Perms)
		} else if perms, err = tx.Permissions(ctx, p.URI()); err != nil {
			return Written{}, err
		}
		if perms, err = e.storePermissions(ctx, tx, c, p.URI(), perms); err != nil {
			return Written{}, err
		}
		w := Written{Object: out, Perms: perms, Created: existing == nil}
		ch := NewChange(p, c, out, existing)
		ch.Sent = req.Body.Data
		return w, u.Changed(ctx, ch)
	})
}

// Patch changes an existing object with a shallow merge, a merge-patch or
// JSON-Patch operations.
func (e *Engine) Patch(ctx context.Context, req WriteRequest) (Patched, error) {
	c, p := req.Caller, req.Path
	return Write(groupOf(ctx, req.Path), e, func(u *Unit) (Patched, error) {
		tx := u.Tx
		var res Patched
		existing, err := e.changeExisting(ctx, u, req.Request)
		if err != nil {
			return res, err
		}
		current, err := tx.Permissions(ctx, p.URI())
		if err != nil {
			return res, err
		}
		visible, err := VisiblePermissions(ctx, tx, p.URI(), c.Principals())
		if err != nil {
			return res, err
		}
		var data map[string]any
		var newPerms map[string][]string
		body := req.Body
		switch req.Patch {
		case JSONPatch:
			d, pm, err := ApplyJSONPatch(req.Ops, existing, visible, e.copyLimit())
			if err != nil {
				return res, err
			}
			data, newPerms, res.Sent = d, replacePermissions(p.Kind, pm), d
		case Merge:
			if body.Data == nil && !body.HasPerms {
				return res, kerr.InvalidParam("body", nil, "Provide at least one of data or permissions")
			}
			data, res.Sent = MergePatch(existing.Data, body.Data), body.Data
			if body.HasPerms {
				merged := map[string][]string{}
				for perm, list := range visible {
					merged[perm] = list
				}
				for perm, list := range body.Perms {
					merged[perm] = list
				}
				for _, perm := range body.NullPerms {
					delete(merged, perm)
				}
				// As Kinto: a merge that leaves no permission at all
				// changes nothing (it does not clear the ACL).
				if len(merged) > 0 {
					newPerms = replacePermissions(p.Kind, merged)
				}
			}
		default:
			if body.Data == nil && !body.HasPerms {
				return res, kerr.InvalidParam("body", nil, "Provide at least one of data or permissions")
			}
			data, res.Sent = CopyData(existing.Data), body.Data
			for key, v := range body.Data {
				data[key] = v
			}
			if len(body.Perms) > 0 {
				// Only the permissions listed are replaced: the others
				// (write among them, whose writers the caller is then
				// added to) keep their principals.
				newPerms = maps.Clone(current)
				maps.Copy(newPerms, body.Perms)
			}
		}
		if id, ok := data[query.IDField]; ok && id != p.ID {
			return res, kerr.InvalidParam("body", kerr.Name("id"), "Object id does not match existing object")
		}
		if res.Object, err = e.storeObject(ctx, tx, p, existing, data); err != nil {
			return res, err
		}
		res.Before = existing.Data
		if err := afterWrite(ctx, tx, p, existing, res.Object); err != nil {
			return res, err
		}
		if newPerms == nil {
			newPerms = current
		}
		if res.Perms, err = e.storePermissions(ctx, tx, c, p.URI(), newPerms); err != nil {
			return res, err
		}
		ch := NewChange(p, c, res.Object, existing)
		ch.Sent = res.Sent
		return res, u.Changed(ctx, ch)
	})
}

// changeExisting starts a change of an existing object (PATCH, DELETE),
// with Kinto's checks in Kinto's order: the write permission, the
// request's own errors, the object's existence, the preconditions. It
// returns the object.
func (e *Engine) changeExisting(ctx context.Context, u *Unit, req Request) (*storage.Object, error) {
	c, p := req.Caller, req.Path
	if err := u.prepare(ctx, c, p); err != nil {
		return nil, err
	}
	if err := e.authorizeObject(ctx, u.Tx, c, p, "write"); err != nil {
		return nil, err
	}
	if req.Invalid != nil {
		return nil, req.Invalid
	}
	existing, err := u.Tx.Get(ctx, p.Scope(), p.ID)
	if err != nil {
		return nil, err
	}
	return existing, CheckPreconditions(ctx, u.Tx, p, req.Pre, existing)
}

// copyLimit bounds the bytes JSON-Patch copies may add to a document: what
// an object may hold (the result is checked against it too), or 1 MiB
// when there is no bound.
func (e *Engine) copyLimit() int64 {
	if e.cfg.MaxObjectBytes > 0 {
		return e.cfg.MaxObjectBytes
	}
	return 1 << 20
}

// Delete turns an object into a tombstone, and removes what depended on
// it. lastModified is the raw timestamp the client gives the tombstone
// ("" for none).
func (e *Engine) Delete(ctx context.Context, req Request, lastModified string) (*storage.Object, error) {
	c, p := req.Caller, req.Path
	return Write(groupOf(ctx, req.Path), e, func(u *Unit) (*storage.Object, error) {
		tx := u.Tx
		existing, err := e.changeExisting(ctx, u, req)
		if err != nil {
			return nil, err
		}
		supplied, err := e.suppliedDeletion(lastModified)
		if err != nil {
			return nil, err
		}
		tomb, err := tx.Delete(ctx, p.Scope(), p.ID, supplied)
		if err != nil {
			return nil, err
		}
		if err := cascade(ctx, tx, p); err != nil {
			return nil, err
		}
		return tomb, u.Changed(ctx, NewChange(p, c, tomb, existing))
	})
}

// DeleteList deletes one page of the objects of a list the caller may
// delete that match the query. A next page is reached with a single-use
// token.
func (e *Engine) DeleteList(ctx context.Context, req ListRequest) (Deleted, error) {
	c, p := req.Caller, req.Path
	return Write(groupOf(ctx, req.Path), e, func(u *Unit) (Deleted, error) {
		tx := u.Tx
		var res Deleted
		if err := c.Load(ctx, tx); err != nil {
			return res, err
		}
		if err := u.beforeWrite(ctx, p); err != nil {
			return res, err
		}
		scope, ok, err := e.authz.ForList(ctx, tx, p, "write", c.Principals())
		if err != nil {
			return res, err
		}
		if !ok {
			return res, c.Denied()
		}
		// The collection's existence only once authorized (as Kinto):
		// anyone else would learn which collections exist.
		if _, err := checkParent(ctx, tx, p); err != nil {
			return res, err
		}
		if req.Invalid != nil {
			return res, req.Invalid
		}
		q := req.Query
		if q.After != nil {
			if err := e.useDeleteToken(ctx, tx, q.Nonce); err != nil {
				return res, err
			}
		}
		if res.Timestamp, err = tx.Timestamp(ctx, p.Scope()); err != nil {
			return res, err
		}
		if req.Pre.IfNoneMatch.Set || (req.Pre.IfMatch.Set && !req.Pre.IfMatch.Any && req.Pre.IfMatch.Timestamp != res.Timestamp) {
			return res, preconditionFailed(nil, res.Timestamp)
		}
		limit := e.Limit(q.Limit)
		objs, err := tx.List(ctx, p.Scope(), storage.ListOptions{
			Filters: q.Filters, Sort: q.Sort, After: q.After, Limit: limit + 1, IDs: ScopeIDs(scope),
		})
		if err != nil {
			return res, err
		}
		if len(objs) > limit {
			objs = objs[:limit]
			tok, nonce := query.TokenWithNonce(objs[len(objs)-1], q.Sort, q.Offset+int64(len(objs)))
			if err := e.issueDeleteToken(ctx, tx, nonce); err != nil {
				return res, err
			}
			res.Next = tok
		}
		for _, o := range objs {
			tomb, err := tx.Delete(ctx, p.Scope(), o.ID, 0)
			if err != nil {
				return res, err
			}
			if err := cascade(ctx, tx, p.WithID(o.ID)); err != nil {
				return res, err
			}
			if err := u.Changed(ctx, NewChange(p, c, tomb, o)); err != nil {
				return res, err
			}
			res.Tombstones = append(res.Tombstones, tomb)
			res.Timestamp = max(res.Timestamp, tomb.LastModified)
		}
		if res.Timestamp == 0 {
			res.Timestamp = e.NowMS()
		}
		sort.SliceStable(res.Tombstones, func(i, j int) bool { return res.Tombstones[i].LastModified > res.Tombstones[j].LastModified })
		return res, nil
	})
}

// Ensure creates the objects at paths that do not exist yet, in order,
// owned by the caller, without checking its permissions (the default bucket
// plugin creates the caller's own bucket and its collections). It returns
// what it created.
func (e *Engine) Ensure(ctx context.Context, c *Caller, paths ...model.Path) ([]*storage.Object, error) {
	return Write(ctx, e, func(u *Unit) ([]*storage.Object, error) {
		tx := u.Tx
		if err := c.Load(ctx, tx); err != nil {
			return nil, err
		}
		var made []*storage.Object
		for _, p := range paths {
			if err := u.beforeWrite(ctx, p); err != nil {
				return nil, err
			}
			if _, err := tx.Get(ctx, p.Scope(), p.ID); err == nil {
				continue
			} else if !kerr.Is(err, kerr.NotFound) {
				return nil, err
			}
			obj, err := tx.Create(ctx, p.Scope(), &storage.Object{ID: p.ID, Data: map[string]any{}})
			if err != nil {
				return nil, err
			}
			if err := afterWrite(ctx, tx, p, nil, obj); err != nil {
				return nil, err
			}
			if _, err := e.storePermissions(ctx, tx, c, p.URI(), nil); err != nil {
				return nil, err
			}
			if err := u.Changed(ctx, NewChange(p, c, obj, nil)); err != nil {
				return nil, err
			}
			made = append(made, obj)
		}
		return made, nil
	})
}

// Flush deletes everything (the flush plugin).
func (e *Engine) Flush(ctx context.Context) error {
	_, err := Write(ctx, e, func(u *Unit) (int64, error) {
		if err := u.Tx.Flush(ctx); err != nil {
			return 0, err
		}
		ts, err := u.Tx.InitTimestamp(ctx, storage.Scope{Resource: model.Bucket.Name})
		if err != nil {
			return 0, err
		}
		return ts, u.Changed(ctx, Change{Action: "flush"})
	})
	return err
}

// Tokens of paginated plural DELETEs are single-use: their nonces are
// stored (in the database, so that any node honours them) until used or
// expired. Each lives under its own parent so that it can be removed
// without leaving a tombstone.
const deleteTokens = "/__tokens__/"

func tokenScope(nonce string) storage.Scope {
	return storage.Scope{Parent: deleteTokens + nonce, Resource: "delete-token"}
}

func (e *Engine) issueDeleteToken(ctx context.Context, tx storage.Tx, nonce string) error {
	validity := e.cfg.TokenValidity
	// Forget the tokens that expired unused.
	issued, err := tx.Timestamps(ctx, "delete-token", []string{deleteTokens})
	if err != nil {
		return err
	}
	now := e.cfg.Now()
	oldest := now.Add(-validity).UnixMilli()
	for parent, at := range issued {
		if at < oldest {
			if err := tx.PurgeTree(ctx, parent); err != nil {
				return err
			}
		}
	}
	_, err = tx.Put(ctx, tokenScope(nonce), &storage.Object{ID: "token", Data: map[string]any{
		"expires": json.Number(strconv.FormatInt(now.Add(validity).UnixMilli(), 10)),
	}})
	return err
}

func (e *Engine) useDeleteToken(ctx context.Context, tx storage.Tx, nonce string) error {
	bad := kerr.InvalidParam("querystring", kerr.Name("_token"), "_token was already used or has expired.")
	o, err := tx.Get(ctx, tokenScope(nonce), "token")
	if kerr.Is(err, kerr.NotFound) {
		return bad
	}
	if err != nil {
		return err
	}
	if err := tx.PurgeTree(ctx, tokenScope(nonce).Parent); err != nil {
		return err
	}
	if expires, _ := o.Data["expires"].(json.Number).Int64(); e.NowMS() > expires {
		return bad
	}
	return nil
}

// groupOf marks a write of one object for group commit with the other
// writes into the same list (storage.WithGroup).
func groupOf(ctx context.Context, p model.Path) context.Context {
	s := p.Scope()
	if s.Parent == "" {
		return ctx // buckets: no list worth grouping
	}
	return storage.WithGroup(ctx, s.Parent+"/"+s.Resource)
}
