// Package memory is a storage backend that keeps everything in process
// memory: for tests and throw-away servers (data is lost on exit). One lock
// serialises writers (a writer waiting for it gives up when its context
// ends); a transaction keeps an undo log so that a failed request leaves
// nothing half-written.
package memory

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"sync"
	"time"

	"kintogo/internal/kerr"
	"kintogo/internal/query"
	"kintogo/internal/storage"
)

type scopeData struct {
	objects   map[string]*storage.Object
	timestamp int64
}

// Store is the memory backend. The zero value is not usable; call New.
type Store struct {
	// writer is held by the one read-write transaction: a channel rather
	// than the mutex alone, so that a writer can stop waiting.
	writer chan struct{}
	mu     sync.RWMutex
	scopes map[storage.Scope]*scopeData
	acl    map[string]map[string]map[string]bool // uri -> perm -> principal
	users  map[string]map[string]bool            // user id -> principals
	now    func() int64
	log    changeLog
}

// New returns an empty memory store.
func New() *Store {
	s := &Store{now: func() int64 { return time.Now().UnixMilli() }, writer: make(chan struct{}, 1)}
	s.reset()
	s.log.init()
	return s
}

func (s *Store) reset() {
	s.scopes = map[storage.Scope]*scopeData{}
	s.acl = map[string]map[string]map[string]bool{}
	s.users = map[string]map[string]bool{}
}

// Update implements storage.Storage.
func (s *Store) Update(ctx context.Context, fn func(storage.Tx) error) (err error) {
	select {
	case s.writer <- struct{}{}:
	case <-ctx.Done():
		return storage.Canceled(ctx)
	}
	defer func() { <-s.writer }()
	s.mu.Lock()
	defer s.mu.Unlock()
	t := &tx{s: s, writable: true}
	defer func() {
		if p := recover(); p != nil {
			t.rollback()
			panic(p)
		}
		if err != nil {
			t.rollback()
		}
	}()
	if err := fn(t); err != nil {
		return err
	}
	// As on a database, whose commit would fail: the caller is gone.
	if err := storage.Canceled(ctx); err != nil {
		return err
	}
	s.log.append(t.changes)
	return nil
}

// View implements storage.Storage.
func (s *Store) View(ctx context.Context, fn func(storage.Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return fn(&tx{s: s})
}

// Close implements storage.Storage.
func (s *Store) Close() error { return nil }

type tx struct {
	s        *Store
	writable bool
	undo     []func()
	changes  []storage.Change
}

// Changes implements storage.Tx.
func (t *tx) Changes() []storage.Change { return t.changes }

// changed records a change, undone with the rest.
func (t *tx) changed(ch storage.Change) {
	n := len(t.changes)
	t.changes = append(t.changes, ch)
	t.undo = append(t.undo, func() { t.changes = t.changes[:n] })
}

func (t *tx) rollback() { t.rollbackTo(0) }

// rollbackTo undoes everything recorded after the first mark entries.
func (t *tx) rollbackTo(mark int) {
	for i := len(t.undo) - 1; i >= mark; i-- {
		t.undo[i]()
	}
	t.undo = t.undo[:mark]
}

func (t *tx) Savepoint(ctx context.Context, fn func(storage.Tx) error) (err error) {
	if !t.writable {
		return fn(t)
	}
	mark := len(t.undo)
	defer func() {
		if p := recover(); p != nil {
			t.rollbackTo(mark)
			panic(p)
		}
		if err != nil {
			t.rollbackTo(mark)
		}
	}()
	return fn(t)
}

var errReadOnly = kerr.E(kerr.Other, "write in a read-only transaction")

func (t *tx) scope(s storage.Scope, create bool) *scopeData {
	sd := t.s.scopes[s]
	if sd == nil && create {
		sd = &scopeData{objects: map[string]*storage.Object{}}
		t.s.scopes[s] = sd
		t.undo = append(t.undo, func() { delete(t.s.scopes, s) })
	}
	return sd
}

func (t *tx) Get(ctx context.Context, s storage.Scope, id string) (*storage.Object, error) {
	if sd := t.s.scopes[s]; sd != nil {
		if o := sd.objects[id]; o != nil && !o.Deleted {
			return o, nil
		}
	}
	return nil, kerr.ObjectNotFound(s.Resource, id)
}

// store writes o into the scope with a new timestamp, recording the undo.
func (t *tx) store(s storage.Scope, o *storage.Object, supplied int64) *storage.Object {
	sd := t.scope(s, true)
	prevTS := sd.timestamp
	prevObj, had := sd.objects[o.ID]
	o.LastModified = storage.NextTimestamp(sd.timestamp, t.s.now(), supplied)
	if o.LastModified > sd.timestamp {
		sd.timestamp = o.LastModified
	}
	sd.objects[o.ID] = o
	t.undo = append(t.undo, func() {
		sd.timestamp = prevTS
		if had {
			sd.objects[o.ID] = prevObj
		} else {
			delete(sd.objects, o.ID)
		}
	})
	t.changed(storage.Change{Scope: s, ID: o.ID, Timestamp: o.LastModified, Deleted: o.Deleted})
	return o
}

func (t *tx) Create(ctx context.Context, s storage.Scope, obj *storage.Object) (*storage.Object, error) {
	if !t.writable {
		return nil, errReadOnly
	}
	if sd := t.s.scopes[s]; sd != nil {
		if o := sd.objects[obj.ID]; o != nil && !o.Deleted {
			return nil, kerr.E(kerr.Conflict, "object "+obj.ID+" already exists")
		}
	}
	return t.store(s, &storage.Object{ID: obj.ID, Data: clone(obj.Data)}, obj.LastModified), nil
}

func (t *tx) Put(ctx context.Context, s storage.Scope, obj *storage.Object) (*storage.Object, error) {
	if !t.writable {
		return nil, errReadOnly
	}
	return t.store(s, &storage.Object{ID: obj.ID, Data: clone(obj.Data)}, obj.LastModified), nil
}

func (t *tx) Delete(ctx context.Context, s storage.Scope, id string, lastModified int64) (*storage.Object, error) {
	if !t.writable {
		return nil, errReadOnly
	}
	old, err := t.Get(ctx, s, id)
	if err != nil {
		return nil, err
	}
	return t.store(s, &storage.Object{ID: id, Deleted: true}, storage.TombstoneTimestamp(old, lastModified)), nil
}

func (t *tx) List(ctx context.Context, s storage.Scope, opts storage.ListOptions) ([]*storage.Object, error) {
	sd := t.s.scopes[s]
	if sd == nil {
		return []*storage.Object{}, nil
	}
	all := make([]*storage.Object, 0, len(sd.objects))
	for _, o := range sd.objects {
		all = append(all, o)
	}
	// Map order is random: give equal sort keys a stable order.
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	return storage.Select(ctx, all, opts)
}

func (t *tx) Count(ctx context.Context, s storage.Scope, filters []query.Filter, ids []string) (int, error) {
	objs, err := t.List(ctx, s, storage.ListOptions{Filters: filters, IDs: ids})
	return len(objs), err
}

func (t *tx) PurgeTree(ctx context.Context, parent string) error {
	if !t.writable {
		return errReadOnly
	}
	for sc, sd := range t.s.scopes {
		if storage.UnderURI(sc.Parent, parent) {
			sc, sd := sc, sd
			delete(t.s.scopes, sc)
			t.undo = append(t.undo, func() { t.s.scopes[sc] = sd })
		}
	}
	return nil
}

func (t *tx) PurgeTombstones(ctx context.Context, resource string, before int64, keep int) (int, error) {
	if !t.writable {
		return 0, errReadOnly
	}
	n := 0
	for sc, sd := range t.s.scopes {
		if sc.Resource != resource {
			continue
		}
		var tombs []*storage.Object
		for _, o := range sd.objects {
			if o.Deleted {
				tombs = append(tombs, o)
			}
		}
		sort.Slice(tombs, func(i, j int) bool {
			if tombs[i].LastModified != tombs[j].LastModified {
				return tombs[i].LastModified > tombs[j].LastModified
			}
			return tombs[i].ID > tombs[j].ID
		})
		for i, o := range tombs {
			if i < keep || (before > 0 && o.LastModified >= before) {
				continue
			}
			delete(sd.objects, o.ID)
			t.undo = append(t.undo, func() { sd.objects[o.ID] = o })
			n++
		}
	}
	if n > 0 {
		t.changed(storage.Change{Everything: true})
	}
	return n, nil
}

func (t *tx) Timestamp(ctx context.Context, s storage.Scope) (int64, error) {
	if sd := t.s.scopes[s]; sd != nil {
		return sd.timestamp, nil
	}
	return 0, nil
}

func (t *tx) InitTimestamp(ctx context.Context, s storage.Scope) (int64, error) {
	if !t.writable {
		return 0, errReadOnly
	}
	sd := t.scope(s, true)
	if sd.timestamp == 0 {
		sd.timestamp = t.s.now()
		t.undo = append(t.undo, func() { sd.timestamp = 0 })
		t.changed(storage.Change{Scope: s, Timestamp: sd.timestamp})
	}
	return sd.timestamp, nil
}

func (t *tx) Timestamps(ctx context.Context, resource string, prefixes []string) (map[string]int64, error) {
	out := map[string]int64{}
	for sc, sd := range t.s.scopes {
		if sc.Resource == resource && sd.timestamp > 0 && storage.ParentsMatching(sc.Parent, prefixes) {
			out[sc.Parent] = sd.timestamp
		}
	}
	return out, nil
}

func (t *tx) Permissions(ctx context.Context, uri string) (map[string][]string, error) {
	out := map[string][]string{}
	for perm, principals := range t.s.acl[uri] {
		for p := range principals {
			out[perm] = append(out[perm], p)
		}
		sort.Strings(out[perm])
	}
	return out, nil
}

func (t *tx) SetPermissions(ctx context.Context, uri string, perms map[string][]string) error {
	if !t.writable {
		return errReadOnly
	}
	old := t.s.acl[uri]
	next := map[string]map[string]bool{}
	for perm, principals := range old {
		next[perm] = principals
	}
	for perm, principals := range perms {
		if len(principals) == 0 {
			delete(next, perm)
			continue
		}
		set := map[string]bool{}
		for _, p := range principals {
			set[p] = true
		}
		next[perm] = set
	}
	t.setACL(uri, next)
	return nil
}

func (t *tx) setACL(uri string, acl map[string]map[string]bool) {
	old, had := t.s.acl[uri]
	if len(acl) == 0 {
		delete(t.s.acl, uri)
	} else {
		t.s.acl[uri] = acl
	}
	t.undo = append(t.undo, func() {
		if had {
			t.s.acl[uri] = old
		} else {
			delete(t.s.acl, uri)
		}
	})
}

func (t *tx) DeletePermissions(ctx context.Context, uris ...string) error {
	if !t.writable {
		return errReadOnly
	}
	for _, pattern := range uris {
		if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
			for uri := range t.s.acl {
				if strings.HasPrefix(uri, prefix) {
					t.setACL(uri, nil)
				}
			}
			continue
		}
		if _, ok := t.s.acl[pattern]; ok {
			t.setACL(pattern, nil)
		}
	}
	return nil
}

func (t *tx) HasAny(ctx context.Context, aces []storage.ACE, principals []string) (bool, error) {
	for _, ace := range aces {
		set := t.s.acl[ace.URI][ace.Permission]
		for _, p := range principals {
			if set[p] {
				return true, nil
			}
		}
	}
	return false, nil
}

func (t *tx) Accessible(ctx context.Context, prefix string, extra int, perms, principals []string) (map[string][]string, error) {
	out := map[string][]string{}
	for uri, acl := range t.s.acl {
		if !strings.HasPrefix(uri, prefix) || storage.SegmentsAfter(uri, prefix) != extra {
			continue
		}
		for _, perm := range perms {
			for _, p := range principals {
				if acl[perm][p] {
					out[uri] = append(out[uri], perm)
					break
				}
			}
		}
	}
	return out, nil
}

func (t *tx) UserPrincipals(ctx context.Context, userID string, authenticated bool) ([]string, error) {
	set := map[string]bool{}
	for p := range t.s.users[userID] {
		set[p] = true
	}
	if authenticated {
		for p := range t.s.users["system.Authenticated"] {
			set[p] = true
		}
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

func (t *tx) setUser(userID string, principals map[string]bool) {
	old, had := t.s.users[userID]
	if len(principals) == 0 {
		delete(t.s.users, userID)
	} else {
		t.s.users[userID] = principals
	}
	t.undo = append(t.undo, func() {
		if had {
			t.s.users[userID] = old
		} else {
			delete(t.s.users, userID)
		}
	})
}

func (t *tx) AddUserPrincipal(ctx context.Context, userID, principal string) error {
	if !t.writable {
		return errReadOnly
	}
	next := map[string]bool{principal: true}
	for p := range t.s.users[userID] {
		next[p] = true
	}
	t.setUser(userID, next)
	return nil
}

func (t *tx) RemoveUserPrincipal(ctx context.Context, userID, principal string) error {
	if !t.writable {
		return errReadOnly
	}
	next := map[string]bool{}
	for p := range t.s.users[userID] {
		if p != principal {
			next[p] = true
		}
	}
	t.setUser(userID, next)
	return nil
}

func (t *tx) RemovePrincipal(ctx context.Context, principal string) error {
	if !t.writable {
		return errReadOnly
	}
	for user, set := range t.s.users {
		if set[principal] {
			if err := t.RemoveUserPrincipal(ctx, user, principal); err != nil {
				return err
			}
		}
	}
	for uri, acl := range t.s.acl {
		named := false
		for _, principals := range acl {
			named = named || principals[principal]
		}
		if !named {
			continue
		}
		next := map[string]map[string]bool{}
		for perm, principals := range acl {
			set := map[string]bool{}
			for p := range principals {
				if p != principal {
					set[p] = true
				}
			}
			if len(set) > 0 {
				next[perm] = set
			}
		}
		t.setACL(uri, next)
	}
	return nil
}

// LockScope implements storage.Tx: writers are serialized already.
func (t *tx) LockScope(ctx context.Context, s storage.Scope) error { return nil }

func (t *tx) Flush(ctx context.Context) error {
	if !t.writable {
		return errReadOnly
	}
	scopes, acl, users := t.s.scopes, t.s.acl, t.s.users
	t.s.reset()
	t.undo = append(t.undo, func() { t.s.scopes, t.s.acl, t.s.users = scopes, acl, users })
	t.changed(storage.Change{Everything: true})
	return nil
}

// clone deep-copies JSON data so that stored objects never alias a caller's.
func clone(data map[string]any) map[string]any {
	if data == nil {
		return map[string]any{}
	}
	b, err := json.Marshal(data)
	if err != nil {
		return data
	}
	var out map[string]any
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	if dec.Decode(&out) != nil {
		return data
	}
	return out
}
