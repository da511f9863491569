// Package postgres is the storage backend for several stateless kintogo
// nodes sharing one PostgreSQL database (pgx, pgxpool).
//
// Timestamps: a write locks its scope's row of the timestamps table until
// commit (SELECT ... FOR UPDATE), so writers of one scope are serialised
// and their timestamps follow commit order, across nodes: a client polling
// with _since never misses a record committed after its previous poll.
// Writers of different scopes run in parallel. Transactions that meet a
// deadlock or a serialization failure are retried.
//
// The transactions' work is the SQL backends' shared code (sqlstore), in
// PostgreSQL's dialect.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"kintogo/internal/kerr"
	"kintogo/internal/storage"
	"kintogo/internal/storage/sqlstore"
)

// dialect is PostgreSQL's SQL: numbered parameters, arrays for lists,
// JSONB data, and the row locks that order each scope's writers across
// nodes.
var dialect = &sqlstore.Dialect{
	NumberedParams: true,
	Greatest:       "GREATEST",
	JSONColumn:     "data::text",
	JSONParam:      "?::jsonb",
	JSON:           sqlstore.PostgresJSON,
	Arrays:         true,
	CollateC:       ` COLLATE "C"`,
	RowLocks:       true,
	Truncate:       true,
	Retryable:      retryable,
	Unstorable:     unstorable,
	TableExists:    `SELECT to_regclass(?) IS NOT NULL`,
}

// Store is the PostgreSQL backend.
type Store struct {
	pool   *pgxpool.Pool
	groups *sqlstore.Groups
	snaps  *sqlstore.Snapshots
	// stop ends the ticker and the listener on Close: they hold
	// connections, which the pool waits for.
	stop   context.Context
	cancel context.CancelFunc

	// The change log (log.go): this store's name in it, the channel
	// waking its followers, the ticker's, and whether a commit of this
	// store is not covered by a tick yet.
	logWriter   *sqlstore.LogWriter
	wake        chan struct{}
	tickc       chan struct{}
	pendingTick atomic.Bool
	// tickMu serializes this store's ticks, so that Publish waits for a
	// tick in flight (which may or may not cover a commit) before it
	// decides whether to tick.
	tickMu sync.Mutex
	// standby: the database is a hot standby (read-only replica).
	standby      bool
	tickerDone   chan struct{}
	listenerDone chan struct{}
}

// ErrOutdated is returned by Open when the schema is older than this
// binary's: run `kintogo migrate`.
var ErrOutdated = sqlstore.ErrOutdated

// Options tune Open.
type Options struct {
	// Migrate creates or upgrades the schema; otherwise Open refuses a
	// database whose schema is missing or outdated.
	Migrate bool
	// MaxConns bounds the pool's connections, opened as needed (pgx's
	// default when 0: as many as CPUs, at least 4, which leaves
	// concurrent requests waiting for a connection while the database is
	// idle). pool_max_conns in the URL takes precedence.
	MaxConns int32
	// SnapshotBytes bounds the memory of the snapshots of scopes that
	// lists evaluate in Go (sqlstore.Snapshots); 0 keeps none.
	SnapshotBytes int64
	// ReadOnly: this node never writes (kintogo's readonly setting), so
	// it never ticks the change log either.
	ReadOnly bool
	// Logger receives the change log's warnings; nil: slog.Default().
	Logger *slog.Logger
}

// Open connects to the database at dsn (postgres://user:pass@host/db).
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	if opts.MaxConns > 0 && !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = opts.MaxConns
	}
	// Every statement kintogo sends is prepared and parameterized, and
	// its best plan does not depend on the values: point lookups by
	// primary key, pages read in index order, scans of one scope. Generic
	// plans spare the server planning them again on every execution
	// (PostgreSQL's default plans the first five, and on when it guesses a
	// custom plan cheaper), about a tenth of its work on small writes.
	if _, set := cfg.ConnConfig.RuntimeParams["plan_cache_mode"]; !set {
		cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s := &Store{pool: pool, snaps: sqlstore.NewSnapshots(opts.SnapshotBytes),
		wake: make(chan struct{}, 1), tickc: make(chan struct{}, 1)}
	s.logWriter = &sqlstore.LogWriter{Name: uuid.NewString(), Committed: s.tickSoon}
	s.groups = sqlstore.NewGroups(dialect, func(ctx context.Context) (sqlstore.Txn, error) {
		return beginPipeline(ctx, pool, false)
	}, groupSize, s.logWriter)
	s.stop, s.cancel = context.WithCancel(context.Background())
	if err := schema.Upgrade(ctx, db{querier{pool}, pool}, sqlstore.UpgradeOptions{Migrate: opts.Migrate, Exclusive: s.exclusive}); err != nil {
		s.cancel()
		pool.Close()
		return nil, fmt.Errorf("postgresql: %w", err)
	}
	if err := pool.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&s.standby); err != nil {
		s.cancel()
		pool.Close()
		return nil, fmt.Errorf("postgresql: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	s.tickerDone, s.listenerDone = make(chan struct{}), make(chan struct{})
	if s.standby {
		// A standby receives no notifications: it polls what it replayed.
		close(s.tickerDone)
		go s.pollReplay()
	} else {
		if opts.ReadOnly {
			close(s.tickerDone)
		} else {
			go s.ticker(log)
		}
		go s.listen()
	}
	return s, nil
}

// Shared implements storage.Shared: the nodes of a cluster share the
// database.
func (s *Store) Shared() bool { return true }

// Close implements storage.Storage. A commit of this store that no tick
// covers yet gets one first (bounded), so that the other nodes see it
// without waiting for theirs.
func (s *Store) Close() error {
	if s.pendingTick.Load() && !s.standby {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		s.Tick(ctx)
		cancel()
	}
	s.cancel()
	<-s.tickerDone
	<-s.listenerDone
	s.pool.Close()
	return nil
}

// retryable reports errors after which a transaction may simply run again:
// deadlocks and serialization failures.
// unstorable: values jsonb refuses (a \u0000 in a string, a number
// beyond numeric's range).
func unstorable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "22P05" || pe.Code == "22003" || pe.Code == "22021")
}

func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

const maxAttempts = 8

// groupSize bounds the writes of one key sharing a commit.
const groupSize = 64

// Update implements storage.Storage: writes with a group key
// (storage.WithGroup) share commits with the others of their key, as they
// would wait for each other's lock anyway (sqlstore.Groups). fn runs again, after a short random
// pause, when the transaction meets a deadlock or a serialization failure
// (storage.IsRetryable), up to maxAttempts times.
func (s *Store) Update(ctx context.Context, fn func(storage.Tx) error) error {
	var err error
	key := storage.Group(ctx)
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if key != "" {
			err = s.groups.Update(ctx, key, fn)
		} else {
			err = s.run(ctx, false, fn)
		}
		if !storage.IsRetryable(err) {
			return err
		}
		// Transactions that deadlocked together would meet again if
		// they restarted together.
		pause := time.Duration(rand.Int64N(int64(attempt+1) * int64(5*time.Millisecond)))
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return storage.Canceled(ctx)
		}
	}
	return kerr.Wrap(kerr.Unavailable, "", err)
}

// View implements storage.Storage.
func (s *Store) View(ctx context.Context, fn func(storage.Tx) error) error {
	return s.run(ctx, true, fn)
}

func (s *Store) run(ctx context.Context, readOnly bool, fn func(storage.Tx) error) error {
	p, err := beginPipeline(ctx, s.pool, readOnly)
	if err != nil {
		return dialect.Wrap(err)
	}
	if readOnly {
		return dialect.View(ctx, p, s.snaps, fn)
	}
	return dialect.Run(ctx, p, s.logWriter, fn)
}

// handle is what pgx's pool, connections and transactions have in common.
type handle interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// querier adapts a pgx handle to sqlstore.Querier: pgx stays native, with
// its own types and array parameters.
type querier struct{ h handle }

func (q querier) Exec(ctx context.Context, sql string, args ...any) error {
	_, err := q.h.Exec(ctx, sql, args...)
	return err
}

func (q querier) Query(ctx context.Context, sql string, args ...any) (sqlstore.Rows, error) {
	return q.h.Query(ctx, sql, args...)
}

func (q querier) QueryRow(ctx context.Context, sql string, args ...any) sqlstore.Row {
	return q.h.QueryRow(ctx, sql, args...)
}

// txn adapts a pgx transaction to sqlstore.Txn.
type txn struct {
	querier
	tx pgx.Tx
}

func (t txn) Commit(ctx context.Context) error   { return t.tx.Commit(ctx) }
func (t txn) Rollback(ctx context.Context) error { return t.tx.Rollback(ctx) }

// db adapts a pool or a connection to sqlstore.DB, for migrations.
type db struct {
	querier
	b interface {
		Begin(ctx context.Context) (pgx.Tx, error)
	}
}

func (d db) Begin(ctx context.Context) (sqlstore.Txn, error) {
	tx, err := d.b.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return txn{querier{tx}, tx}, nil
}

// Plan tells what `kintogo migrate` would do to the database at dsn,
// without changing anything.
func Plan(ctx context.Context, dsn string) (sqlstore.Plan, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return sqlstore.Plan{}, err
	}
	defer pool.Close()
	p, err := schema.Plan(ctx, querier{pool})
	if err != nil {
		return p, fmt.Errorf("postgresql: %w", err)
	}
	return p, nil
}

// Pool gives the connection pool (tests, maintenance).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }
