package sqlstore

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"kintogo/internal/storage"
)

// GroupCommitter runs the read-write transactions of a database with one
// writer (SQLite) so that concurrent writers share commits: the functions
// waiting when a transaction begins run in it one after the other, each
// in its own savepoint, and one commit — one fsync — makes them all
// durable before any of them returns. A function that fails has its
// savepoint rolled back and fails alone; if the commit fails, every
// function of the group fails. Timestamps stay strictly increasing and in
// commit order: the functions of a group see each other's writes.
type GroupCommitter struct {
	d     *Dialect
	begin func(ctx context.Context) (Txn, error)
	max   int
	log   *LogWriter

	mu      sync.Mutex
	queue   []*groupWrite
	running bool
}

// groupWrite is one function waiting for its group.
type groupWrite struct {
	ctx   context.Context
	fn    func(storage.Tx) error
	state atomic.Int32 // waiting, then running or abandoned
	err   error
	panic any
	done  chan struct{}
}

const (
	writeWaiting int32 = iota
	writeRunning
	writeAbandoned
)

// NewGroupCommitter returns a committer beginning its transactions with
// begin, running at most max functions in one, and logging their changes
// as w.
func NewGroupCommitter(d *Dialect, begin func(ctx context.Context) (Txn, error), max int, w *LogWriter) *GroupCommitter {
	return &GroupCommitter{d: d, begin: begin, max: max, log: w}
}

// Update runs fn in the next group and returns once that group committed
// (fn's error if it failed). A caller whose ctx ends while fn waits gives
// up (fn will not run); once fn runs, the caller waits for the commit.
func (g *GroupCommitter) Update(ctx context.Context, fn func(storage.Tx) error) error {
	if err := storage.Canceled(ctx); err != nil {
		return err
	}
	w := &groupWrite{ctx: ctx, fn: fn, done: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, w)
	lead := !g.running
	g.running = true
	g.mu.Unlock()
	if lead {
		// The first writer to find no group running runs groups until
		// its own is done, then hands over to a goroutine if writers
		// still wait: no handoff when writers do not overlap.
		g.runGroups(w)
	}
	select {
	case <-w.done:
	case <-ctx.Done():
		if w.state.CompareAndSwap(writeWaiting, writeAbandoned) {
			return storage.Canceled(ctx)
		}
		<-w.done
	}
	if w.panic != nil {
		panic(w.panic)
	}
	return w.err
}

// runGroups runs groups while writers wait, until mine (nil: any) is
// done.
func (g *GroupCommitter) runGroups(mine *groupWrite) {
	for {
		g.mu.Lock()
		n := min(len(g.queue), g.max)
		if n == 0 {
			g.running = false
			g.mu.Unlock()
			return
		}
		if mine != nil && isDone(mine) {
			g.mu.Unlock()
			go g.runGroups(nil)
			return
		}
		group := append([]*groupWrite(nil), g.queue[:n]...)
		g.queue = g.queue[n:]
		g.mu.Unlock()
		g.run(group)
	}
}

func isDone(w *groupWrite) bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// run runs one group in one transaction.
func (g *GroupCommitter) run(group []*groupWrite) {
	live := group[:0:0]
	for _, w := range group {
		if w.state.CompareAndSwap(writeWaiting, writeRunning) {
			live = append(live, w)
		}
	}
	defer func() {
		for _, w := range live {
			close(w.done)
		}
	}()
	if len(live) == 0 {
		return
	}
	ctx := context.Background() // the group's: no one caller's
	txn, err := g.begin(ctx)
	if err != nil {
		err = g.d.Wrap(err)
		for _, w := range live {
			w.err = err
		}
		return
	}
	committed := false
	err = g.d.Run(ctx, uninterrupted{txn}, g.log, func(tx storage.Tx) error {
		if len(live) == 1 {
			// Alone in its transaction: no savepoint to pay for, its
			// failure rolls the transaction back.
			w := live[0]
			w.err = runSaved(w, tx, false)
			committed = w.err == nil
			return w.err
		}
		for _, w := range live {
			w.err = runSaved(w, tx, true)
		}
		committed = true
		return nil
	})
	if len(live) == 1 && live[0].err != nil {
		return // its own failure, rolled back
	}
	if err != nil || !committed {
		if err == nil {
			err = fmt.Errorf("group transaction did not run")
		}
		for _, w := range live {
			if w.err == nil {
				w.err = err // its work was not committed
			}
		}
	}
}

// runSaved runs one function of a group, in a savepoint when saved, with
// its own context; a panic is handed to its caller.
func runSaved(w *groupWrite, tx storage.Tx, saved bool) (err error) {
	defer func() {
		if p := recover(); p != nil {
			w.panic = p
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	if err := storage.Canceled(w.ctx); err != nil {
		return err
	}
	run := func(tx storage.Tx) error {
		if err := w.fn(tx); err != nil {
			return err
		}
		// Without a commit of its own, a function whose caller is gone
		// must not commit either.
		return storage.Canceled(w.ctx)
	}
	if !saved {
		return run(tx)
	}
	return tx.Savepoint(w.ctx, run)
}

// uninterrupted runs the statements of a group's transaction to their end
// even when the context of the function issuing them ends: SQLite rolls
// back the whole transaction when a write statement is interrupted, which
// would undo the group's other functions too. A function whose context
// has ended fails at its next statement instead, and its savepoint is
// rolled back alone.
type uninterrupted struct{ Txn }

func (u uninterrupted) Exec(ctx context.Context, query string, args ...any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return u.Txn.Exec(context.WithoutCancel(ctx), query, args...)
}

func (u uninterrupted) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return u.Txn.Query(context.WithoutCancel(ctx), query, args...)
}

func (u uninterrupted) QueryRow(ctx context.Context, query string, args ...any) Row {
	if err := ctx.Err(); err != nil {
		return errRow{err}
	}
	return u.Txn.QueryRow(context.WithoutCancel(ctx), query, args...)
}

// errRow is a Row whose Scan fails.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// Flush implements Flusher when the transaction does.
func (u uninterrupted) Flush(ctx context.Context) error {
	if f, ok := u.Txn.(Flusher); ok {
		return f.Flush(context.WithoutCancel(ctx))
	}
	return nil
}

// Groups runs the writes of a database that runs transactions in
// parallel (PostgreSQL): those with the same group key
// (storage.WithGroup) share commits through one GroupCommitter, created
// while the key has writers; different keys run side by side.
type Groups struct {
	d     *Dialect
	begin func(ctx context.Context) (Txn, error)
	max   int
	log   *LogWriter

	mu    sync.Mutex
	byKey map[string]*keyedGroup
}

type keyedGroup struct {
	*GroupCommitter
	users int // writers of the key in Update
}

// NewGroups returns the groups of a database whose transactions begin
// with begin; at most max writes share a commit, logged as w.
func NewGroups(d *Dialect, begin func(ctx context.Context) (Txn, error), max int, w *LogWriter) *Groups {
	return &Groups{d: d, begin: begin, max: max, log: w, byKey: map[string]*keyedGroup{}}
}

// Update runs fn in the next group of key.
func (g *Groups) Update(ctx context.Context, key string, fn func(storage.Tx) error) error {
	g.mu.Lock()
	k := g.byKey[key]
	if k == nil {
		k = &keyedGroup{GroupCommitter: NewGroupCommitter(g.d, g.begin, g.max, g.log)}
		g.byKey[key] = k
	}
	k.users++
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		if k.users--; k.users == 0 {
			delete(g.byKey, key) // no writer left: nothing queued
		}
		g.mu.Unlock()
	}()
	return k.GroupCommitter.Update(ctx, fn)
}
