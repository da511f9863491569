// Package events carries "something changed" notices from the handlers
// that commit writes to the features that depend on stored data (the
// changes feed's snapshot, response caches, and later history and push).
//
// Events are published after the storage transaction committed and before
// the client gets its answer, so a subscriber that invalidates a cache
// guarantees that no acknowledged write is missing from a later read.
// Subscribers run synchronously and must be quick.
package events

import "sync"

// Event is one committed change.
type Event struct {
	Action       string // "create", "update", "delete" or "flush"
	ResourceName string // "bucket", "collection", "group", "record"; "" for flush
	BucketID     string
	CollectionID string
	ID           string // the object's id
	Timestamp    int64  // the object's new timestamp (the tombstone's for deletes)
}

// Bus dispatches events to subscribers. The zero value is ready to use.
type Bus struct {
	mu   sync.RWMutex
	subs []func([]Event)
}

// Subscribe registers fn to receive every batch of events published.
func (b *Bus) Subscribe(fn func([]Event)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.subs = append(b.subs, fn)
}

// Publish hands the events of one commit to every subscriber, in the order
// they subscribed.
func (b *Bus) Publish(evs ...Event) {
	if len(evs) == 0 {
		return
	}
	b.mu.RLock()
	subs := b.subs
	b.mu.RUnlock()
	for _, fn := range subs {
		fn(evs)
	}
}
