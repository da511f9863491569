// Package app assembles a kintogo server from settings: it opens the
// configured storage backend and builds the HTTP handler. The command line
// (cmd/kintogo) and the tests share it, so that tests run the real stack.
package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/google/uuid"

	"kintogo/internal/config"
	"kintogo/internal/events"
	"kintogo/internal/httpapi"
	"kintogo/internal/resource"
	"kintogo/internal/storage"
	"kintogo/internal/storage/memory"
	"kintogo/internal/storage/postgres"
	"kintogo/internal/storage/sqlite"
)

// Version is kintogo's version, set at build time with
// -ldflags "-X kintogo/internal/app.Version=...".
var Version = "0.1.0-dev"

// Commit is the source revision the binary was built from, when known.
func Commit() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}

// OpenStorage opens the backend named by storage_backend (Kinto's names are
// accepted). migrate lets an existing database be upgraded; otherwise an
// outdated schema is refused.
func OpenStorage(ctx context.Context, s *config.Settings, migrate bool) (storage.Storage, error) {
	switch backend := s.String("storage_backend"); backend {
	case "sqlite", "kintogo.storage.sqlite":
		return sqlite.Open(ctx, s.String("storage_url"), sqlite.Options{Migrate: migrate,
			SnapshotBytes: s.Int("storage_snapshot_max_bytes")})
	case "memory", "kinto.core.storage.memory":
		return memory.New(), nil
	case "postgresql", "kinto.core.storage.postgresql":
		return postgres.Open(ctx, s.String("storage_url"), postgres.Options{Migrate: migrate,
			MaxConns:      int32(s.Int("storage_pool_size") + s.Int("storage_max_overflow")),
			SnapshotBytes: s.Int("storage_snapshot_max_bytes")})
	default:
		return nil, fmt.Errorf("unknown storage_backend %q (sqlite, postgresql, memory)", backend)
	}
}

// New opens storage and returns the HTTP handler and the storage (to close
// on shutdown).
func New(ctx context.Context, s *config.Settings, log *slog.Logger) (*httpapi.Server, storage.Storage, error) {
	store, err := OpenStorage(ctx, s, false)
	if err != nil {
		return nil, nil, err
	}
	srv, err := NewServer(s, store, httpapi.Options{Version: Version, Commit: Commit(), Logger: log})
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	if pg, ok := store.(*postgres.Store); ok {
		fanOut(ctx, pg, srv, log)
	}
	return srv, store, nil
}

// fanOut connects the nodes sharing a PostgreSQL database: this node's
// commits are announced with NOTIFY in their transactions, and the other
// nodes' announcements (LISTEN) update this node's in-memory views. The
// delay between a commit on one node and the others' views is the
// notification's delivery time.
func fanOut(ctx context.Context, pg *postgres.Store, srv *httpapi.Server, log *slog.Logger) {
	node := uuid.NewString()
	// The announcement is part of the write's transaction: delivered
	// exactly when the commit is.
	srv.Engine().Hook(resource.Hooks{BeforeCommit: []func(context.Context, storage.Tx, []events.Event) error{
		func(ctx context.Context, tx storage.Tx, evs []events.Event) error {
			payload, _ := json.Marshal(evs)
			return tx.Announce(ctx, postgres.Message(node, string(payload)))
		},
	}})
	go pg.Listen(context.WithoutCancel(ctx), node, func(payload string) {
		var evs []events.Event
		if payload == "" || json.Unmarshal([]byte(payload), &evs) != nil {
			evs = nil
		}
		srv.RemoteChange(evs)
	})
}
