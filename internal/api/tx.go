package api

import (
	"context"

	"kintogo/internal/events"
	"kintogo/internal/storage"
)

// batchKey marks a context whose request is a sub-request of a batch.
type batchKey struct{}

// batchState is what the sub-requests of one batch share: the storage
// transaction of the whole batch, and the events to publish once it
// commits.
type batchState struct {
	tx     storage.Tx
	events []events.Event
}

func batchOf(ctx context.Context) *batchState {
	b, _ := ctx.Value(batchKey{}).(*batchState)
	return b
}

// update runs fn in a read-write transaction: its own, or, inside a batch,
// a savepoint of the batch's (a failing sub-request leaves nothing behind,
// and nothing is committed before the whole batch is).
func (s *Server) update(ctx context.Context, fn func(storage.Tx) error) error {
	if b := batchOf(ctx); b != nil {
		return b.tx.Savepoint(ctx, fn)
	}
	return s.store.Update(ctx, fn)
}

// view runs fn in a read-only transaction, or inside a batch in the
// batch's (sub-requests see what earlier ones wrote).
func (s *Server) view(ctx context.Context, fn func(storage.Tx) error) error {
	if b := batchOf(ctx); b != nil {
		return fn(b.tx)
	}
	return s.store.View(ctx, fn)
}
