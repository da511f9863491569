package events

import "sync"

// Positioned is the events of the commits at one position of the change
// log, all nodes' alike.
type Positioned struct {
	Position int64
	Events   []Event
}

// History keeps the newest positions of the change log a node followed,
// every node's commits in the order they all share: what a stream resumed
// from a position (Last-Event-ID), on any node, needs. It holds at most
// max events. The zero value is not usable; call NewHistory.
type History struct {
	mu      sync.Mutex
	max     int
	size    int          // events held
	known   int64        // positions after known are all held (0: none yet)
	head    int64        // the newest position followed
	entries []Positioned // positions after known, oldest first
	wake    chan struct{}
}

// NewHistory returns a history holding at most max events.
func NewHistory(max int) *History {
	return &History{max: max, wake: make(chan struct{})}
}

// Start says that the history begins at position head: what came before
// is unknown (a follower that starts, or starts over after falling
// behind the log).
func (h *History) Start(head int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.entries, h.size, h.known, h.head = nil, 0, head, head
	h.wakeLocked()
}

// Append adds the events of the next position.
func (h *History) Append(pos int64, evs []Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if pos <= h.head {
		return
	}
	h.entries = append(h.entries, Positioned{Position: pos, Events: evs})
	h.size += len(evs)
	h.head = pos
	for h.size > h.max && len(h.entries) > 1 {
		h.size -= len(h.entries[0].Events)
		h.known = h.entries[0].Position
		h.entries = h.entries[1:]
	}
	h.wakeLocked()
}

func (h *History) wakeLocked() {
	close(h.wake)
	h.wake = make(chan struct{})
}

// Head is the newest position followed.
func (h *History) Head() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.head
}

// Since returns the positions after after, and the head; ok is false when
// the history does not hold all of them (after is older than what it
// keeps, or newer than its head: a position of another database).
func (h *History) Since(after int64) (out []Positioned, head int64, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if after < h.known || after > h.head {
		return nil, h.head, false
	}
	for i, e := range h.entries {
		if e.Position > after {
			return h.entries[i:len(h.entries):len(h.entries)], h.head, true
		}
	}
	return nil, h.head, true
}

// Wait returns a channel closed when the next position is appended (or
// the history starts over). Take it before reading, so that nothing slips
// in between.
func (h *History) Wait() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.wake
}
