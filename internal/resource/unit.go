package resource

import (
	"context"
	"slices"
	"time"

	"kintogo/internal/events"
	"kintogo/internal/model"
	"kintogo/internal/storage"
)

// Change is one write a unit of work made, as its in-transaction hooks see
// it: what was written (the object, or its tombstone; nil for a flush),
// what it replaced, and by whom. (What goes out after the commit is not
// built from it: it is derived from what the transaction itself recorded,
// see events.go.)
type Change struct {
	// Action is "create", "update", "delete" or "flush".
	Action string
	Path   model.Path // the object's path (ID set)
	Object *storage.Object
	Old    *storage.Object // what it replaced, nil for a creation
	Caller *Caller
	// Sent is the data the request sent (a PATCH's fields), nil when none.
	Sent map[string]any
}

// Bucket and Collection are the ids of the bucket and collection the
// changed object is or lies in ("" when none).
func (ch Change) Bucket() string { b, _ := ch.Path.In(); return b }

// Collection: see Bucket.
func (ch Change) Collection() string { _, c := ch.Path.In(); return c }

// Hooks are what plugins attach to writes. What plugins do after a commit
// (of this node or another) subscribes to the engine's Feed.
type Hooks struct {
	// BeforeWrite runs in the transaction before a write of an object at
	// the path takes its first lock: a hook that will write elsewhere later
	// (history) takes its locks here, so that writers lock in one order.
	BeforeWrite []func(ctx context.Context, u *Unit, p model.Path) error
	// InTransaction runs in the transaction for every change, once it is
	// fully written (object, permissions): its failure fails the write
	// (Kinto's ResourceChanged).
	InTransaction []func(ctx context.Context, u *Unit, ch Change) error
	// Notice runs in the transaction for every notice a plugin announces
	// (Unit.Announce: the signer's review events), for plugins that act
	// on them (e-mails, chat hooks).
	Notice []func(ctx context.Context, u *Unit, n Notice) error
}

// Notice is an event a plugin announces in a unit, beyond the changes of
// objects: Kinto's events other than ResourceChanged.
type Notice struct {
	// Name is the event's Python name, as Kinto's plugins match it
	// ("kinto_remote_settings.signer.events.ReviewRequested").
	Name string
	// Change is the change that raised it.
	Change Change
	// Fields are added to the change's payload (comment, changes_count).
	Fields map[string]any
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
	// onCommit are what plugins asked to run once the unit committed;
	// atEnd, last in its transaction.
	onCommit []func()
	atEnd    []func(ctx context.Context) error
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

// OnCommit runs fn once the outermost unit committed, after the Feed
// delivered its changes (the signer's review events); never when the
// unit rolls back or runs again.
func (u *Unit) OnCommit(fn func()) { u.onCommit = append(u.onCommit, fn) }

// AtEnd runs fn last in the outermost unit's transaction, once all its
// writes are done (a batch's sub-requests included): what depends on the
// final state of the request (the ACL of a history entry) is written
// there. Its error fails the unit.
func (u *Unit) AtEnd(fn func(ctx context.Context) error) { u.atEnd = append(u.atEnd, fn) }

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

// Changed runs the in-transaction hooks of a change.
func (u *Unit) Changed(ctx context.Context, ch Change) error {
	for _, h := range u.engine.hooks.InTransaction {
		if err := h(ctx, u, ch); err != nil {
			return err
		}
	}
	return nil
}

// Announce runs the Notice hooks of a notice.
func (u *Unit) Announce(ctx context.Context, n Notice) error {
	for _, h := range u.engine.hooks.Notice {
		if err := h(ctx, u, n); err != nil {
			return err
		}
	}
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
// engine's Feed delivers what the transaction recorded it changed.
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
			parent.onCommit = append(parent.onCommit, u.onCommit...)
			parent.atEnd = append(parent.atEnd, u.atEnd...)
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
	var committed []storage.Change
	var after []func()
	err := e.store.Update(ctx, func(tx storage.Tx) error {
		// The transaction may be shared with other units (group
		// commit): this unit's changes are those recorded from here.
		start := len(tx.Changes())
		u := &Unit{Tx: tx, engine: e}
		v, err := fn(u)
		if err != nil {
			return err
		}
		for i := 0; i < len(u.atEnd); i++ { // an AtEnd function may add one
			if err := u.atEnd[i](ctx); err != nil {
				return err
			}
		}
		out, after = v, u.onCommit
		committed = slices.Clone(tx.Changes()[start:])
		return nil
	})
	if err != nil {
		var zero T
		return zero, err
	}
	if evs := EventsOf(committed); len(evs) > 0 {
		e.feed.Deliver(events.Batch{Events: evs, Local: true, Committed: time.Now()})
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

// Origin is what a write's request says of where it comes from, for the
// plugins that tell people about changes (Kinto's root_url,
// client_address, user_agent).
type Origin struct {
	RootURL, ClientAddress, UserAgent string
}

type originKey struct{}

// WithOrigin returns ctx carrying o.
func WithOrigin(ctx context.Context, o Origin) context.Context {
	return context.WithValue(ctx, originKey{}, o)
}

// OriginOf is the Origin ctx carries (zero when none).
func OriginOf(ctx context.Context) Origin {
	o, _ := ctx.Value(originKey{}).(Origin)
	return o
}
