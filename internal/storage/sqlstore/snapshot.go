package sqlstore

import (
	"container/list"
	"context"
	"database/sql"
	"errors"
	"sync"

	"kintogo/internal/storage"
)

// Snapshots keeps in memory the decoded live objects of the scopes last
// listed with a selection SQL cannot evaluate exactly (filters and sorts
// on data fields that the dialect compares in Go, or composite values on
// PostgreSQL), so that such lists cost an evaluation in Go over memory
// rather than reading and decoding the whole scope again. A snapshot is
// the scope as a read transaction saw it, under the scope's version
// (timestamp, count of writes, live count), which that transaction reads
// first: a snapshot is used only by a transaction that sees the same
// version, so it is never stale, on a cluster too. Objects are shared,
// read-only, as the memory backend's are. The snapshots are bounded in
// bytes (an estimate of their decoded size), least recently used first
// out; a scope larger than a quarter of the budget is not kept.
type Snapshots struct {
	max int64

	mu      sync.Mutex
	size    int64
	lru     *list.List // of *snapshot, most recent first
	byScope map[storage.Scope]*list.Element
}

type snapshot struct {
	scope   storage.Scope
	version scopeVersion
	objs    []*storage.Object
	size    int64
}

// scopeVersion changes with every write into the scope.
type scopeVersion struct{ timestamp, writes, live int64 }

// NewSnapshots returns snapshots holding about maxBytes at most; nil, for
// no snapshots (lists on data fields then run in the database), when
// maxBytes is 0 or less.
func NewSnapshots(maxBytes int64) *Snapshots {
	if maxBytes <= 0 {
		return nil
	}
	return &Snapshots{max: maxBytes, lru: list.New(), byScope: map[storage.Scope]*list.Element{}}
}

func (s *Snapshots) get(scope storage.Scope, v scopeVersion) ([]*storage.Object, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.byScope[scope]
	if e == nil {
		return nil, false
	}
	snap := e.Value.(*snapshot)
	if snap.version != v {
		return nil, false
	}
	s.lru.MoveToFront(e)
	return snap.objs, true
}

func (s *Snapshots) put(scope storage.Scope, v scopeVersion, objs []*storage.Object, size int64) {
	if size > s.max/4 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.byScope[scope]; e != nil {
		s.size -= e.Value.(*snapshot).size
		s.lru.Remove(e)
	}
	s.byScope[scope] = s.lru.PushFront(&snapshot{scope: scope, version: v, objs: objs, size: size})
	s.size += size
	for s.size > s.max {
		last := s.lru.Back()
		old := last.Value.(*snapshot)
		s.lru.Remove(last)
		delete(s.byScope, old.scope)
		s.size -= old.size
	}
}

// decodedSize estimates the memory of an object decoded from raw bytes
// of JSON: maps and interfaces take several times their text.
func decodedSize(raw int) int64 { return int64(raw)*4 + 128 }

// liveObjects returns the live objects of s ordered by id, from the
// snapshot of s when it is current.
func (t *tx) liveObjects(ctx context.Context, s storage.Scope) ([]*storage.Object, error) {
	var v scopeVersion
	err := t.queryRow(ctx, `SELECT last_modified, writes, live FROM timestamps WHERE parent_id = ? AND resource_name = ?`,
		s.Parent, s.Resource).Scan(&v.timestamp, &v.writes, &v.live)
	if errors.Is(err, sql.ErrNoRows) {
		return []*storage.Object{}, nil
	}
	if err != nil {
		return nil, t.d.Wrap(err)
	}
	if objs, ok := t.snaps.get(s, v); ok {
		return objs, nil
	}
	rows, err := t.query(ctx, `SELECT id, last_modified, deleted, `+t.d.JSONColumn+` FROM objects
		WHERE parent_id = ? AND resource_name = ? AND NOT deleted ORDER BY id`+t.d.CollateC, s.Parent, s.Resource)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var size int64
	objs, err := scanObjectsSized(rows, &size)
	if err != nil {
		return nil, t.d.Wrap(err)
	}
	t.snaps.put(s, v, objs, size)
	return objs, nil
}
