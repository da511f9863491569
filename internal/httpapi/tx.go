package httpapi

import (
	"context"

	"kintogo/internal/resource"
	"kintogo/internal/storage"
)

// view runs fn in a read-only transaction, or inside a unit of work (a
// batch) in the unit's (sub-requests see what earlier ones wrote).
func (s *Server) view(ctx context.Context, fn func(storage.Tx) error) error {
	return resource.Read(ctx, s.engine, fn)
}

// inUnit reports whether the request runs inside a unit of work (a batch):
// its reads see uncommitted writes, so nothing computed from them may be
// shared with other requests, and nothing may wait while it holds the
// unit's transaction.
func inUnit(ctx context.Context) bool { return resource.UnitOf(ctx) != nil }
