// Package storage defines where kintogo keeps objects, timestamps and
// access-control entries, and the contract every backend (memory, SQLite,
// PostgreSQL) must honour. The contract is checked by one conformance suite,
// internal/storage/storagetest, run against every backend.
//
// The model is Kinto's: every object (bucket, collection, group, record, ...)
// is a row identified by (parent id, resource name, id), holding a JSON
// object, a millisecond timestamp and a deleted flag (tombstones). A scope
// (parent id, resource name) has a resource timestamp: the highest timestamp
// ever given to an object in it, or the floor set when its parent was
// created. Timestamps are strictly increasing within a scope.
package storage

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"kintogo/internal/kerr"
	"kintogo/internal/query"
)

// Object is one stored object or tombstone.
type Object struct {
	ID           string
	LastModified int64
	Deleted      bool
	// Data holds the object's fields without id, last_modified and deleted.
	// Tombstones have no data. Objects returned by a backend are shared:
	// callers must not modify them.
	Data map[string]any
}

// Field implements query.Fielder: id, last_modified and deleted come from
// the object's columns, every other path from its data.
func (o *Object) Field(path string) (any, bool) {
	switch path {
	case query.IDField:
		return o.ID, true
	case query.ModifiedField:
		return o.LastModified, true
	case query.DeletedField:
		if o.Deleted {
			return true, true
		}
	}
	if o.Deleted {
		return nil, false
	}
	return query.Lookup(o.Data, path)
}

// Body returns the object as clients see it: its data plus id and
// last_modified, or {id, last_modified, deleted: true} for a tombstone.
func (o *Object) Body() map[string]any {
	m := make(map[string]any, len(o.Data)+3)
	for k, v := range o.Data {
		m[k] = v
	}
	m[query.IDField] = o.ID
	m[query.ModifiedField] = o.LastModified
	if o.Deleted {
		m[query.DeletedField] = true
	}
	return m
}

// MarshalJSON renders Body.
func (o *Object) MarshalJSON() ([]byte, error) { return json.Marshal(o.Body()) }

// Scope names the objects of one kind under one parent, e.g. the records of
// a collection: {Parent: "/buckets/b/collections/c", Resource: "record"}.
// Buckets live under the empty parent.
type Scope struct {
	Parent   string
	Resource string
}

// ListOptions selects objects of a scope.
type ListOptions struct {
	Filters []query.Filter
	Sort    []query.Sort
	// After keeps only the objects after the last one of a previous page
	// (keyset pagination), in Sort order. Nil for a first page.
	After map[string]any
	// Limit caps the number of objects returned; 0 means no cap.
	Limit int
	// IncludeDeleted lists tombstones too.
	IncludeDeleted bool
	// IDs, when not nil, restricts the list to these ids (objects the caller
	// may access); an empty non-nil slice selects nothing.
	IDs []string
}

// ACE is an (object URI, permission) pair of an access-control list.
type ACE struct {
	URI        string
	Permission string
}

// Storage is a backend. Every read and write happens inside a transaction:
// Update runs fn in a read-write transaction, committed when fn returns nil
// and rolled back when it returns an error (or panics); View runs fn in a
// read-only one. Writes are durable when Update returns nil.
//
// fn may run several times: a backend retries the whole transaction when
// it meets a conflict between concurrent transactions (a deadlock, a
// serialization failure), which it signals inside fn with an error for
// which IsRetryable is true. fn must therefore return its results and
// change nothing outside its transaction; an fn that catches such an
// error must return it (or another error wrapping it) for the retry to
// happen. When the retries are exhausted, Update returns a
// kerr.Unavailable error. Both Update and View give up with a
// kerr.Unavailable error when ctx ends while they wait for the
// transaction to begin.
type Storage interface {
	Update(ctx context.Context, fn func(Tx) error) error
	View(ctx context.Context, fn func(Tx) error) error
	// Close releases the backend's resources.
	Close() error
}

// Tx is the work a transaction can do. Errors are kerr errors: NotFound,
// Conflict, Unavailable (backend failure); a Tx obtained from View returns
// an error for every write.
type Tx interface {
	// Get returns the live object with that id. A missing object or a
	// tombstone is kerr.NotFound.
	Get(ctx context.Context, s Scope, id string) (*Object, error)
	// Create stores a new object and returns it with its timestamp. A live
	// object with the same id is kerr.Conflict; a tombstone is replaced.
	// A non-zero obj.LastModified is a client-supplied timestamp (see
	// NextTimestamp).
	Create(ctx context.Context, s Scope, obj *Object) (*Object, error)
	// Put creates or replaces the object with obj.ID (its data entirely),
	// and returns it with its new timestamp.
	Put(ctx context.Context, s Scope, obj *Object) (*Object, error)
	// Delete turns the live object into a tombstone and returns the
	// tombstone; a missing object is kerr.NotFound. A non-zero lastModified
	// is used for the tombstone when it is greater than the object's.
	Delete(ctx context.Context, s Scope, id string, lastModified int64) (*Object, error)
	// List returns the objects of a scope selected by opts, sorted.
	List(ctx context.Context, s Scope, opts ListOptions) ([]*Object, error)
	// Count returns how many live objects of a scope match the filters
	// (restricted to ids when not nil).
	Count(ctx context.Context, s Scope, filters []query.Filter, ids []string) (int, error)
	// PurgeTree hard-deletes, without tombstones, every object whose parent
	// is parent or lies under parent + "/", with their scope timestamps.
	PurgeTree(ctx context.Context, parent string) error
	// PurgeTombstones hard-deletes tombstones of one kind of resource, in
	// every parent: those older than before (a timestamp; 0: any), except
	// the keep newest of each parent (0: none kept). It returns how many it
	// deleted; live objects and scope timestamps are untouched.
	PurgeTombstones(ctx context.Context, resource string, before int64, keep int) (int, error)
	// Timestamp returns a scope's resource timestamp, 0 when the scope has
	// none (no object ever, no floor). It never writes.
	Timestamp(ctx context.Context, s Scope) (int64, error)
	// InitTimestamp sets a scope's floor to the current time if the scope
	// has no timestamp yet, and returns the scope's timestamp.
	InitTimestamp(ctx context.Context, s Scope) (int64, error)
	// Timestamps returns the resource timestamps of every scope of a
	// resource whose parent starts with one of the prefixes, keyed by parent.
	Timestamps(ctx context.Context, resource string, prefixes []string) (map[string]int64, error)

	// Permissions returns an object's ACL: permission -> principals.
	Permissions(ctx context.Context, uri string) (map[string][]string, error)
	// SetPermissions replaces the principals of the permissions listed;
	// an empty list removes that permission. Others are untouched.
	SetPermissions(ctx context.Context, uri string, perms map[string][]string) error
	// DeletePermissions removes every ACE of the URIs; a URI ending in `*`
	// matches every URI that starts with what precedes it.
	DeletePermissions(ctx context.Context, uris ...string) error
	// HasAny reports whether one of the principals holds one of the ACEs.
	HasAny(ctx context.Context, aces []ACE, principals []string) (bool, error)
	// Accessible returns, for every URI starting with prefix and having
	// exactly extraSegments more path segments, the permissions among perms
	// that one of the principals holds on it.
	Accessible(ctx context.Context, prefix string, extraSegments int, perms, principals []string) (map[string][]string, error)

	// UserPrincipals returns the principals bound to a user id (groups) and
	// to system.Authenticated when authenticated is true.
	UserPrincipals(ctx context.Context, userID string, authenticated bool) ([]string, error)
	// AddUserPrincipal binds a principal (a group URI) to a user id.
	AddUserPrincipal(ctx context.Context, userID, principal string) error
	// RemoveUserPrincipal unbinds it.
	RemoveUserPrincipal(ctx context.Context, userID, principal string) error
	// RemovePrincipal removes a principal everywhere: it unbinds it from
	// every user and removes every ACE that names it, so that whoever
	// later re-creates the group it stood for inherits nothing.
	RemovePrincipal(ctx context.Context, principal string) error

	// Flush deletes everything: objects, timestamps, ACEs, memberships.
	Flush(ctx context.Context) error

	// Changes returns what the transaction changed so far, oldest first
	// (what a savepoint undid is gone): the record from which everything
	// that follows a commit is derived, and what the backend appends to
	// its change log (Log) when it commits. Callers must not modify it.
	Changes() []Change

	// LockScope takes a scope's write lock until the end of the
	// transaction, as a write in the scope does. Writers that touch several
	// scopes take their locks in one order with it (see the history
	// plugin), so that concurrent transactions do not deadlock; reads of
	// the scope's objects after it see what was committed before it was
	// granted. Backends whose writers are serialized anyway do nothing.
	LockScope(ctx context.Context, s Scope) error

	// Savepoint runs fn inside the transaction; when fn returns an error,
	// everything fn did is undone (the rest of the transaction stays) and
	// the error is returned. Batches run each sub-request in one.
	Savepoint(ctx context.Context, fn func(Tx) error) error
}

// NextTimestamp computes the timestamp of a write in a scope whose current
// timestamp is prev, at clock time now (ms). Without a client value it is
// max(now, prev+1). A client-supplied value (replication) is kept, except
// when it equals prev, which would collide: then a fresh one is used.
func NextTimestamp(prev, now, supplied int64) int64 {
	if supplied > 0 && supplied != prev {
		return supplied
	}
	if now > prev {
		return now
	}
	return prev + 1
}

// TombstoneTimestamp is the timestamp a deletion asks for (see
// NextTimestamp): the one the client gave (Kinto's ?last_modified= of a
// DELETE) only when newer than the deleted object's, else none.
func TombstoneTimestamp(deleted *Object, requested int64) int64 {
	if requested > deleted.LastModified {
		return requested
	}
	return 0
}

// retryable marks an error after which a transaction may simply run
// again.
type retryable struct{ err error }

func (r *retryable) Error() string { return r.err.Error() }
func (r *retryable) Unwrap() error { return r.err }

// Retryable marks err (a deadlock, a serialization failure) as one after
// which the whole transaction may run again.
func Retryable(err error) error { return &retryable{err: err} }

// IsRetryable reports whether err, or an error it wraps, was marked by
// Retryable: the transaction it happened in may run again.
func IsRetryable(err error) bool {
	var r *retryable
	return errors.As(err, &r)
}

// canceledEvery is how many objects Select evaluates between two checks
// of its context.
const canceledEvery = 256

// Select applies list options to a scope's objects in memory: the shared
// evaluation of filters, sorting, pagination and limits used by backends
// that do not translate them into their own query language. It stops
// with a kerr.Unavailable error when ctx ends (the client went away).
func Select(ctx context.Context, objs []*Object, opts ListOptions) ([]*Object, error) {
	var allowed map[string]bool
	if opts.IDs != nil {
		allowed = make(map[string]bool, len(opts.IDs))
		for _, id := range opts.IDs {
			allowed[id] = true
		}
	}
	q := query.Query{Sort: opts.Sort, After: opts.After}
	filters := query.Compile(opts.Filters) // once, not once per object
	out := make([]*Object, 0, len(objs))
	for i, o := range objs {
		if i%canceledEvery == 0 {
			if err := Canceled(ctx); err != nil {
				return nil, err
			}
		}
		if o.Deleted && !opts.IncludeDeleted {
			continue
		}
		if allowed != nil && !allowed[o.ID] {
			continue
		}
		if !query.Match(o, filters) {
			continue
		}
		if !q.AfterLast(o) {
			continue
		}
		out = append(out, o)
	}
	query.SortSlice(out, Order(opts.Sort))
	if opts.Limit > 0 && len(out) > opts.Limit {
		out = out[:opts.Limit]
	}
	return out, nil
}

// Shared is implemented by backends that other processes write to as well
// (PostgreSQL, for the nodes of a cluster): what one node derives from the
// data and keeps in memory must be confirmed against the storage.
type Shared interface {
	Shared() bool
}

// IsShared reports whether other processes may write to s.
func IsShared(s Storage) bool {
	sh, ok := s.(Shared)
	return ok && sh.Shared()
}

// Order is the total order of a list: its sort keys, then the id in the
// direction of the last key (ascending without keys), so that ties come
// in one order on every backend and one index on (last_modified, id)
// serves both directions of the timestamp order.
func Order(sorts []query.Sort) []query.Sort {
	desc := false
	for _, s := range sorts {
		if s.Field == query.IDField {
			return sorts
		}
		desc = s.Desc
	}
	return append(sorts[:len(sorts):len(sorts)], query.Sort{Field: query.IDField, Desc: desc})
}

// Canceled returns a kerr.Unavailable error when ctx has ended, nil
// otherwise: long work checks it to stop when its client went away.
func Canceled(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return kerr.Wrap(kerr.Unavailable, "Request canceled or timed out.", err)
	}
	return nil
}

// ParentsMatching reports whether parent starts with one of the prefixes.
func ParentsMatching(parent string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(parent, p) {
			return true
		}
	}
	return false
}

// UnderURI reports whether uri is base or lies under base + "/".
func UnderURI(uri, base string) bool {
	return uri == base || strings.HasPrefix(uri, base+"/")
}

// SegmentsAfter counts the path segments of uri after prefix.
func SegmentsAfter(uri, prefix string) int {
	rest := strings.TrimPrefix(uri, prefix)
	rest = strings.Trim(rest, "/")
	if rest == "" {
		return 0
	}
	return strings.Count(rest, "/") + 1
}

type groupKey struct{}

// WithGroup marks the writes of ctx as touching mainly the scope named by
// key (a collection's URI, say): a backend that runs concurrent writers'
// transactions in parallel (PostgreSQL) groups those with the same key
// into shared commits, since they would wait for each other's lock
// anyway. Without a key, a write runs in its own transaction there.
func WithGroup(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, groupKey{}, key)
}

// Group is the key WithGroup gave ctx, "" if none.
func Group(ctx context.Context) string {
	key, _ := ctx.Value(groupKey{}).(string)
	return key
}
