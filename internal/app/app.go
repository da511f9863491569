// Package app assembles a kintogo server from settings: it opens the
// configured storage backend and builds the HTTP handler. The command line
// (cmd/kintogo) and the tests share it, so that tests run the real stack.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"kintogo/internal/config"
	"kintogo/internal/events"
	"kintogo/internal/httpapi"
	"kintogo/internal/resource"
	"kintogo/internal/storage"
	"kintogo/internal/storage/memory"
	"kintogo/internal/storage/postgres"
	"kintogo/internal/storage/sqlite"
	"kintogo/internal/storage/sqlstore"
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

// OpenOptions say how OpenStorage opens the backend.
type OpenOptions struct {
	// Migrate lets an existing database be upgraded; otherwise an
	// outdated schema is refused.
	Migrate bool
	// Beside lets an administrative command open a SQLite file that a
	// running server holds (see sqlite.Options.Beside).
	Beside bool
	// Logger receives the storage's warnings; nil: slog.Default().
	Logger *slog.Logger
}

// OpenStorage opens the backend named by storage_backend (Kinto's names are
// accepted).
func OpenStorage(ctx context.Context, s *config.Settings, o OpenOptions) (storage.Storage, error) {
	switch backend := s.StorageBackend(); backend {
	case config.SQLite:
		return sqlite.Open(ctx, s.String("storage_url"), sqlite.Options{Migrate: o.Migrate, Beside: o.Beside,
			SnapshotBytes: s.Int("storage_snapshot_max_bytes")})
	case config.Memory:
		return memory.New(), nil
	case config.PostgreSQL:
		url := s.String("storage_url")
		if !strings.HasPrefix(url, "postgres://") && !strings.HasPrefix(url, "postgresql://") && !strings.Contains(url, "host=") && !strings.Contains(url, "dbname=") {
			return nil, fmt.Errorf("storage_backend is postgresql, but storage_url %q is no PostgreSQL URL: set kinto.storage_url (or KINTO_STORAGE_URL) to postgres://user:password@host:5432/dbname", url)
		}
		return postgres.Open(ctx, url, postgres.Options{Migrate: o.Migrate,
			MaxConns:      int32(s.Int("storage_pool_size") + s.Int("storage_max_overflow")),
			SnapshotBytes: s.Int("storage_snapshot_max_bytes"),
			ReadOnly:      s.Bool("readonly"), Logger: o.Logger})
	default:
		return nil, fmt.Errorf("unknown storage_backend %q (sqlite, postgresql, memory)", backend)
	}
}

// MigrationPlan tells what `kintogo migrate` would do, changing nothing.
func MigrationPlan(ctx context.Context, s *config.Settings) (sqlstore.Plan, error) {
	switch backend := s.StorageBackend(); backend {
	case config.SQLite:
		return sqlite.Plan(ctx, s.String("storage_url"))
	case config.Memory:
		return sqlstore.Plan{}, nil
	case config.PostgreSQL:
		return postgres.Plan(ctx, s.String("storage_url"))
	default:
		return sqlstore.Plan{}, fmt.Errorf("unknown storage_backend %q (sqlite, postgresql, memory)", backend)
	}
}

// New opens storage and returns the HTTP handler and the storage (to close
// on shutdown). Until ctx ends, the server follows the change log (Follow).
func New(ctx context.Context, s *config.Settings, log *slog.Logger) (*httpapi.Server, storage.Storage, error) {
	store, err := OpenStorage(ctx, s, OpenOptions{Logger: log})
	if err != nil {
		return nil, nil, err
	}
	srv, err := NewServer(s, store, httpapi.Options{Version: Version, Commit: Commit(), Logger: log})
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	go Follow(ctx, srv, s, log)
	return srv, store, nil
}

// Follow makes srv follow its storage's change log until ctx ends: the
// commits of the other nodes sharing a PostgreSQL database (readers on a
// streaming standby included), and those of commands writing beside it,
// reach its in-memory views and waiting requests, each once (see
// resource.Engine.Follow). Nodes that write prune the log. The plugins'
// background work runs meanwhile (httpapi.Server.Run).
func Follow(ctx context.Context, srv *httpapi.Server, s *config.Settings, log *slog.Logger) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Run(ctx)
	}()
	srv.Engine().Follow(ctx, resource.FollowOptions{
		Prune:     !s.Bool("readonly"),
		Retention: time.Duration(s.Int("change_log_retention_seconds")) * time.Second,
		Log:       log,
	})
	<-done
}

// Admin is kintogo assembled for an administrative command (create-user,
// purge-deleted): the engine and plugins of a server that never listens,
// over storage opened beside the servers that may be running. What it
// writes reaches them through the change log, as other nodes' writes do;
// on SQLite the command also tells the server holding the file (a SIGHUP
// when it closes) to read the log before the command ends.
type Admin struct {
	Server *httpapi.Server
	Store  storage.Storage
	wrote  bool
}

// OpenAdmin opens the configured storage and builds the server over it.
func OpenAdmin(ctx context.Context, s *config.Settings, log *slog.Logger) (*Admin, error) {
	store, err := OpenStorage(ctx, s, OpenOptions{Beside: true, Logger: log})
	if err != nil {
		return nil, err
	}
	srv, err := NewServer(s, store, httpapi.Options{Version: Version, Commit: Commit(), Logger: log})
	if err != nil {
		store.Close()
		return nil, err
	}
	a := &Admin{Server: srv, Store: store}
	srv.Engine().Feed().Subscribe(func(b events.Batch) { a.wrote = a.wrote || b.Local })
	return a, nil
}

// PurgeTombstones deletes the tombstones of the resources older than
// before (0: any age) beyond the keep newest per parent, in one
// transaction, and returns how many it deleted.
func (a *Admin) PurgeTombstones(ctx context.Context, resources []string, before int64, keep int) (int, error) {
	var total int
	err := a.Store.Update(ctx, func(tx storage.Tx) error {
		total = 0
		for _, r := range resources {
			n, err := tx.PurgeTombstones(ctx, r, before, keep)
			if err != nil {
				return err
			}
			total += n
		}
		return nil
	})
	a.wrote = a.wrote || (err == nil && total > 0)
	return total, err
}

// Close closes the storage (on PostgreSQL, after a tick that makes its
// commits readable in the log), then tells the SQLite server holding the
// file, if the command wrote, to read the log.
func (a *Admin) Close() error {
	err := a.Store.Close()
	if sq, ok := a.Store.(*sqlite.Store); ok && a.wrote {
		if e := sq.TellHolder(5 * time.Second); e != nil && err == nil {
			err = e
		}
	}
	return err
}
