package resource

import (
	"context"

	"kintogo/internal/events"
	"kintogo/internal/model"
	"kintogo/internal/storage"
)

// Change is one write a unit of work made, as its in-transaction hooks see
// it: the event that goes out after commit, what was written (the object,
// or its tombstone; nil for a flush), and by whom.
type Change struct {
	Event  events.Event
	Path   model.Path // the object's path (ID set)
	Object *storage.Object
	Old    *storage.Object // what it replaced, nil for a creation
	Caller *Caller
	// Sent is the data the request sent (a PATCH's fields), nil when none.
	Sent map[string]any
}

// Hooks are what plugins attach to writes.
type Hooks struct {
	// BeforeWrite runs in the transaction before a write of an object at
	// the path takes its first lock: a hook that will write elsewhere later
	// (history) takes its locks here, so that writers lock in one order.
	BeforeWrite []func(ctx context.Context, u *Unit, p model.Path) error
	// InTransaction runs in the transaction for every change, once it is
	// fully written (object, permissions): its failure fails the write
	// (Kinto's ResourceChanged).
	InTransaction []func(ctx context.Context, u *Unit, ch Change) error
	// BeforeCommit runs once per committed unit, last in its transaction,
	// with all its events (the announcement of the commit to other
	// nodes, delivered exactly when the commit is).
	BeforeCommit []func(ctx context.Context, tx storage.Tx, evs []events.Event) error
	// AfterCommit runs once the unit committed, before the writer gets its
	// answer, with all its events: caches, the monitor, push
	// (Kinto's AfterResourceChanged). It must be quick and cannot fail.
	AfterCommit []func(evs []events.Event)
}

// Unit is a unit of work: the only way to write. It owns a read-write
// transaction, collects the events of the writes made in it and runs the
// hooks. A unit nested in another (a batch's sub-request) runs in a
// savepoint of its parent's transaction: its events join the parent's
// when it succeeds, and go out when the outermost unit commits.
type Unit struct {
	// Tx is the unit's transaction.
	Tx     storage.Tx
	engine *Engine
	events []events.Event
	// onCommit are what plugins asked to run once the unit committed.
	onCommit []func()
	// marks are what plugins did once in the unit (see Once).
	marks  map[string]bool
	parent *Unit
	// retry is a retryable storage error met by a nested unit: the
	// outermost unit runs again (see Retry).
	retry error
}

type unitKey struct{}

// WithUnit returns a context in which writes and reads run in u (a batch
// passes it to its sub-requests).
func WithUnit(ctx context.Context, u *Unit) context.Context {
	return context.WithValue(ctx, unitKey{}, u)
}

// UnitOf returns the unit ctx runs in, nil when none.
func UnitOf(ctx context.Context) *Unit {
	u, _ := ctx.Value(unitKey{}).(*Unit)
	return u
}

// Retry returns the retryable error a nested unit met (nil when none):
// the caller running nested units (a batch) must stop and return it, so
// that the storage runs the whole unit again.
func (u *Unit) Retry() error { return u.retry }

// OnCommit runs fn once the outermost unit committed, after its
// AfterCommit hooks (a plugin's own events, the signer's reviews); never
// when the unit rolls back or runs again.
func (u *Unit) OnCommit(fn func()) { u.onCommit = append(u.onCommit, fn) }

// Once reports whether key is new to the unit (and its parents), and
// marks it: a plugin that acts once per write request rather than per
// object (the signer marks a source in progress once for a plural
// DELETE) asks it first. A nested unit's marks join its parent's when it
// succeeds.
func (u *Unit) Once(key string) bool {
	for p := u; p != nil; p = p.parent {
		if p.marks[key] {
			return false
		}
	}
	if u.marks == nil {
		u.marks = map[string]bool{}
	}
	u.marks[key] = true
	return true
}

// Changed records a change: its in-transaction hooks run now, its event
// goes out after commit.
func (u *Unit) Changed(ctx context.Context, ch Change) error {
	for _, h := range u.engine.hooks.InTransaction {
		if err := h(ctx, u, ch); err != nil {
			return err
		}
	}
	u.events = append(u.events, ch.Event)
	return nil
}

// beforeWrite runs the BeforeWrite hooks for a write at p.
func (u *Unit) beforeWrite(ctx context.Context, p model.Path) error {
	for _, h := range u.engine.hooks.BeforeWrite {
		if err := h(ctx, u, p); err != nil {
			return err
		}
	}
	return nil
}

// Write runs fn in a unit of work and returns its result. Inside another
// unit (ctx from WithUnit) it runs in a savepoint of it; otherwise in a new
// read-write transaction, committed when fn succeeds, after which the
// AfterCommit hooks get the unit's events.
//
// fn may run several times (the storage retries a transaction that met a
// deadlock): it returns what it computed and changes nothing outside its
// transaction; only the result of the run that committed is returned.
func Write[T any](ctx context.Context, e *Engine, fn func(u *Unit) (T, error)) (T, error) {
	var out T
	if parent := UnitOf(ctx); parent != nil {
		err := parent.Tx.Savepoint(ctx, func(tx storage.Tx) error {
			u := &Unit{Tx: tx, engine: e, parent: parent}
			v, err := fn(u)
			if err != nil {
				return err
			}
			out = v
			parent.events = append(parent.events, u.events...)
			parent.onCommit = append(parent.onCommit, u.onCommit...)
			for k := range u.marks {
				if parent.marks == nil {
					parent.marks = map[string]bool{}
				}
				parent.marks[k] = true
			}
			return nil
		})
		if storage.IsRetryable(err) {
			parent.retry = err
		}
		if err != nil {
			var zero T
			return zero, err
		}
		return out, nil
	}
	var committed []events.Event
	var after []func()
	err := e.store.Update(ctx, func(tx storage.Tx) error {
		u := &Unit{Tx: tx, engine: e}
		v, err := fn(u)
		if err != nil {
			return err
		}
		if len(u.events) > 0 {
			for _, h := range e.hooks.BeforeCommit {
				if err := h(ctx, tx, u.events); err != nil {
					return err
				}
			}
		}
		out, committed, after = v, u.events, u.onCommit
		return nil
	})
	if err != nil {
		var zero T
		return zero, err
	}
	if len(committed) > 0 {
		for _, h := range e.hooks.AfterCommit {
			h(committed)
		}
	}
	for _, fn := range after {
		fn()
	}
	return out, nil
}

// Read runs fn in a read-only transaction, or inside a unit in the unit's
// own (what the unit wrote so far is visible).
func Read(ctx context.Context, e *Engine, fn func(tx storage.Tx) error) error {
	if u := UnitOf(ctx); u != nil {
		return fn(u.Tx)
	}
	return e.store.View(ctx, fn)
}
