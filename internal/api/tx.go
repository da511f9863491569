package api

import (
	"context"

	"kintogo/internal/events"
	"kintogo/internal/storage"
)

// batchKey marks a context whose request is a sub-request of a batch.
type batchKey struct{}

// batchState is what the sub-requests of one run of a batch share: the
// storage transaction of the whole batch, the events to publish once it
// commits, and the error that makes the whole batch run again.
type batchState struct {
	tx     storage.Tx
	events []events.Event
	// retry is set when a sub-request met an error after which the whole
	// transaction may run again (storage.IsRetryable): the batch stops
	// and returns it to the storage, which retries it.
	retry error
}

func batchOf(ctx context.Context) *batchState {
	b, _ := ctx.Value(batchKey{}).(*batchState)
	return b
}

// update runs fn in a read-write transaction: its own, or, inside a batch,
// a savepoint of the batch's (a failing sub-request leaves nothing behind,
// and nothing is committed before the whole batch is).
//
// fn may run several times (the storage retries a transaction that met a
// deadlock): it returns what it computed, and only the result of the run
// that committed is returned; fn must change nothing outside tx.
func update[T any](s *Server, ctx context.Context, fn func(storage.Tx) (T, error)) (T, error) {
	var out T
	run := func(tx storage.Tx) error {
		v, err := fn(tx)
		if err == nil {
			out = v
		}
		return err
	}
	var err error
	if b := batchOf(ctx); b != nil {
		err = b.tx.Savepoint(ctx, run)
	} else {
		err = s.store.Update(ctx, run)
	}
	if err != nil {
		var zero T
		return zero, err
	}
	return out, nil
}

// view runs fn in a read-only transaction, or inside a batch in the
// batch's (sub-requests see what earlier ones wrote).
func (s *Server) view(ctx context.Context, fn func(storage.Tx) error) error {
	if b := batchOf(ctx); b != nil {
		return fn(b.tx)
	}
	return s.store.View(ctx, fn)
}
