// Package events describes committed changes, delivers them, and tells
// what depends on them: the in-memory views of the stored data (caches,
// the changes monitor) and the requests waiting for a change (long-polls,
// event streams) are valid for, or wait on, a scope of the data, and a
// change touches only the scopes it changed.
//
// Changes come from one place: what each storage transaction recorded
// (storage.Tx.Changes), turned into events by the resource engine, and
// delivered by a Feed once committed: this node's commits before their
// writer gets its answer, the other nodes' as this node follows the
// change log (storage.Log).
package events

import "sync"

// Event is one committed change of an object of Kinto's tree.
type Event struct {
	ResourceName string // "bucket", "collection", "group", "record", "account"; "" with Everything
	BucketID     string
	CollectionID string
	// ID is the object's id, "" when its scope got its first timestamp
	// (a collection's records scope when the collection is created).
	ID        string
	Timestamp int64 // the object's new timestamp (the tombstone's for deletions)
	Deleted   bool  // the object was deleted
	// Everything: anything may have changed (a flush, purged tombstones,
	// commits a follower could not read): every view starts over.
	Everything bool
}

// Scope is what a view depends on: a collection (its metadata, permissions
// and records), or with an empty Collection a bucket object. A bucket
// contains its collections: a change of the bucket (its permissions, its
// deletion) changes every collection's scope too, not the other way.
type Scope struct {
	Bucket, Collection string
}

// Of is the scope an event touches; all is true when it may change
// anything (a flush; a group, whose principal may be granted anywhere).
func Of(ev Event) (s Scope, all bool) {
	if ev.Everything {
		return Scope{}, true
	}
	switch ev.ResourceName {
	case "bucket":
		return Scope{Bucket: ev.BucketID}, false
	case "collection", "record":
		return Scope{Bucket: ev.BucketID, Collection: ev.CollectionID}, false
	case "account":
		return Scope{}, false // outside the bucket tree: only the account's own views
	}
	return Scope{}, true
}

// Hub keeps the version of every scope and wakes whoever waits on one.
// Versions come from one clock that every change advances, so a view
// computed at a scope's version is valid exactly while Version returns the
// same value. The zero value is ready to use.
type Hub struct {
	mu      sync.Mutex
	clock   uint64
	all     uint64 // the clock at the last change of everything
	buckets map[string]*bucketState
}

type bucketState struct {
	scope       scopeState             // the bucket itself
	collections map[string]*scopeState // its collections
}

type scopeState struct {
	version uint64
	wake    chan struct{} // nil while nobody waits
}

func (h *Hub) bucket(id string, create bool) *bucketState {
	if h.buckets == nil {
		if !create {
			return nil
		}
		h.buckets = map[string]*bucketState{}
	}
	b := h.buckets[id]
	if b == nil && create {
		b = &bucketState{collections: map[string]*scopeState{}}
		h.buckets[id] = b
	}
	return b
}

func (st *scopeState) touch(v uint64) {
	st.version = v
	if st.wake != nil {
		close(st.wake)
		st.wake = nil
	}
}

// Touch records a change of the scope (of the bucket and all its
// collections when Collection is empty) and wakes whoever waits on it.
func (h *Hub) Touch(s Scope) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clock++
	b := h.bucket(s.Bucket, true)
	if s.Collection == "" {
		b.scope.touch(h.clock)
		for _, c := range b.collections {
			c.touch(h.clock)
		}
		return
	}
	c := b.collections[s.Collection]
	if c == nil {
		c = &scopeState{}
		b.collections[s.Collection] = c
	}
	c.touch(h.clock)
}

// TouchAll records a change of everything and wakes every waiter.
func (h *Hub) TouchAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clock++
	h.all = h.clock
	for _, b := range h.buckets {
		b.scope.touch(h.clock)
		for _, c := range b.collections {
			c.touch(h.clock)
		}
	}
}

// Version is the scope's version: it changes when the scope, its bucket
// or everything changes.
func (h *Hub) Version(s Scope) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	v := h.all
	if b := h.bucket(s.Bucket, false); b != nil {
		v = max(v, b.scope.version)
		if s.Collection != "" {
			if c := b.collections[s.Collection]; c != nil {
				v = max(v, c.version)
			}
		}
	}
	return v
}

// Wait returns a channel closed at the next change of the scope (or of its
// bucket, or of everything). Take it before reading the data it guards, so
// that no change slips in between.
func (h *Hub) Wait(s Scope) <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	b := h.bucket(s.Bucket, true)
	st := &b.scope
	if s.Collection != "" {
		st = b.collections[s.Collection]
		if st == nil {
			st = &scopeState{version: h.all}
			b.collections[s.Collection] = st
		}
	}
	if st.wake == nil {
		st.wake = make(chan struct{})
	}
	return st.wake
}
