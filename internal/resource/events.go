package resource

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"kintogo/internal/events"
	"kintogo/internal/model"
	"kintogo/internal/storage"
)

// The path of a change: a storage transaction records what it changed
// (storage.Tx.Changes); EventsOf turns that record into events; the Feed
// delivers them, once the transaction committed, to everything that
// depends on the data: this node's commits right after they commit
// (Write), the other nodes' as Follow reads them from the change log.

// historyEvents bounds the events the History keeps for resumed streams.
const historyEvents = 1 << 16

// EventsOf derives the events of changes: the writes of Kinto's objects
// (buckets, collections, groups, records, accounts), the first timestamps
// of their scopes, and the changes of everything. Writes outside Kinto's
// tree (history entries, tokens, a plugin's bookkeeping) make none.
func EventsOf(changes []storage.Change) []events.Event {
	var out []events.Event
	for _, ch := range changes {
		if ch.Everything {
			out = append(out, events.Event{Everything: true})
			continue
		}
		ev, ok := eventOf(ch)
		if ok {
			out = append(out, ev)
		}
	}
	return out
}

func eventOf(ch storage.Change) (events.Event, bool) {
	ev := events.Event{ResourceName: ch.Scope.Resource, ID: ch.ID, Timestamp: ch.Timestamp, Deleted: ch.Deleted}
	parent := ch.Scope.Parent
	switch ch.Scope.Resource {
	case model.Bucket.Name:
		if parent != "" {
			return ev, false
		}
		ev.BucketID = ch.ID
	case model.Collection.Name, model.Group.Name:
		bid, ok := strings.CutPrefix(parent, "/buckets/")
		if !ok || strings.Contains(bid, "/") {
			return ev, false
		}
		ev.BucketID = bid
		if ch.Scope.Resource == model.Collection.Name {
			ev.CollectionID = ch.ID
		}
	case model.Record.Name:
		rest, ok := strings.CutPrefix(parent, "/buckets/")
		bid, cid, ok2 := strings.Cut(rest, "/collections/")
		if !ok || !ok2 || strings.Contains(cid, "/") {
			return ev, false
		}
		ev.BucketID, ev.CollectionID = bid, cid
	case model.Account.Name:
	default:
		return ev, false
	}
	return ev, true
}

// FollowOptions tune Follow.
type FollowOptions struct {
	// Prune removes from the log the commits older than Retention (a
	// node that writes; readers of a standby cannot).
	Prune     bool
	Retention time.Duration
	// Poll is the longest time between two reads of the log (the
	// backend also wakes the follower as soon as it may read more).
	Poll time.Duration
	// Log receives the follower's warnings; nil: slog.Default().
	Log *slog.Logger
}

// followBatch is how many positions one read of the log returns.
const followBatch = 256

// pruneEvery is the period of the log's pruning.
const pruneEvery = time.Minute

// Follow follows the storage's change log until ctx ends: the other
// nodes' commits (and those of commands writing beside this server) are
// delivered to the Feed, each once, and every commit, this node's too,
// goes into the History at its position. A follower that fell behind
// what the log keeps says so, delivers events.Reset (every view starts
// over) and goes on from the log's head. A storage without a log returns
// at once.
func (e *Engine) Follow(ctx context.Context, o FollowOptions) {
	l := storage.LogOf(e.store)
	if l == nil {
		return
	}
	log := o.Log
	if log == nil {
		log = slog.Default()
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	f := &follower{e: e, l: l, log: log, catchUp: make(chan chan struct{})}
	e.follower.Store(f)
	poll := time.NewTicker(o.Poll)
	defer poll.Stop()
	var pruned time.Time
	for ctx.Err() == nil {
		f.read(ctx)
		if o.Prune && o.Retention > 0 && time.Since(pruned) > pruneEvery {
			pruned = time.Now()
			if _, err := l.PruneLog(ctx, time.Now().Add(-o.Retention)); err != nil && ctx.Err() == nil {
				log.Warn("change log: pruning failed", "err", err)
			}
		}
		select {
		case <-ctx.Done():
		case <-l.LogWake():
		case <-poll.C:
		case done := <-f.catchUp:
			f.read(ctx)
			close(done)
		}
	}
}

// CatchUp returns once the follower has read the log as far as it goes
// now, every commit this node acknowledged included (the server calls it
// when a command wrote beside it, a stream that starts now), or ctx ended.
func (e *Engine) CatchUp(ctx context.Context) {
	f := e.follower.Load()
	if f == nil {
		return
	}
	if t, ok := f.l.(storage.Ticking); ok {
		// An error leaves the ticks of the writers' own ticker, a few
		// milliseconds later.
		_ = t.Publish(ctx)
	}
	done := make(chan struct{})
	select {
	case f.catchUp <- done:
	case <-ctx.Done():
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// follower is the state of Follow.
type follower struct {
	e       *Engine
	l       storage.Log
	log     *slog.Logger
	started bool
	pos     int64
	failing bool
	catchUp chan chan struct{}
}

// read reads what the log holds after the follower's position.
func (f *follower) read(ctx context.Context) {
	if !f.started {
		head, err := f.l.LogHead(ctx)
		if err != nil {
			f.warn(ctx, err)
			return
		}
		f.pos, f.started = head, true
		f.e.history.Start(head)
	}
	for ctx.Err() == nil {
		batches, err := f.l.ReadLog(ctx, f.pos, followBatch)
		if errors.Is(err, storage.ErrLogTruncated) {
			head, herr := f.l.LogHead(ctx)
			if herr != nil {
				f.warn(ctx, herr)
				return
			}
			f.log.Warn("change log: this node fell behind what the log keeps; its in-memory views start over", "position", f.pos, "head", head)
			f.pos = head
			f.e.history.Start(head)
			f.e.feed.Deliver(events.Reset)
			continue
		}
		if err != nil {
			f.warn(ctx, err)
			return
		}
		f.failing = false
		for _, b := range batches {
			f.deliver(b)
		}
		if len(batches) < followBatch {
			return
		}
	}
}

// deliver hands the other writers' commits of a batch to the Feed, and
// the whole batch to the History.
func (f *follower) deliver(b storage.Batch) {
	own := f.l.Writer()
	var all, others []events.Event
	var at time.Time
	for _, c := range b.Commits {
		evs := EventsOf(c.Changes)
		all = append(all, evs...)
		if c.Writer != own {
			others = append(others, evs...)
			at = c.At
		}
	}
	if len(others) > 0 {
		f.e.feed.Deliver(events.Batch{Events: others, Committed: at})
	}
	f.e.history.Append(b.Position, all)
	f.pos = b.Position
}

func (f *follower) warn(ctx context.Context, err error) {
	if ctx.Err() != nil || f.failing {
		return
	}
	f.failing = true
	f.log.Warn("change log: cannot read it; other nodes' changes wait until it can", "err", err)
}
