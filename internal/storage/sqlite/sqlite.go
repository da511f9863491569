// Package sqlite is the default storage backend: one SQLite file (pure Go,
// modernc.org/sqlite) in WAL mode, with synchronous=FULL so that a write is
// on disk when it is acknowledged.
//
// Writers are serialised by SQLite itself (BEGIN IMMEDIATE on a single
// writer connection), which is what makes per-scope timestamps strictly
// increasing; readers use a separate pool and see the last committed state.
// The transactions' work is the SQL backends' shared code (sqlstore), in
// SQLite's dialect.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"kintogo/internal/storage"
	"kintogo/internal/storage/sqlstore"
)

// dialect is SQLite's SQL: ? placeholders, LIKE without a default escape
// character, lists spelt out, and no row locks, since the single writer
// connection serializes writers.
var dialect = &sqlstore.Dialect{
	LikeEscape: ` ESCAPE '\'`,
	Greatest:   "MAX",
	// Data is stored as SQLite's binary JSON (JSONB), which its JSON
	// functions read without parsing; rows written as text read the same.
	JSONColumn:  "json(data)",
	JSONParam:   "jsonb(?)",
	JSON:        sqlstore.SQLiteJSON,
	TableExists: `SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?`,
}

// Store is the SQLite backend.
type Store struct {
	writer *sql.DB
	reader *sql.DB
	lock   *os.File // held for the store's lifetime: one kintogo per file
	server int      // opened Beside: the process id of the server holding the file
	path   string
	// refreshes counts the in-memory refreshes of the server holding
	// the lock (Refreshed).
	refreshes atomic.Int64
	// commits runs the writes on writer.
	commits *sqlstore.GroupCommitter
	// The statements prepared on each pool.
	writes, reads *sqlstore.Statements
	snaps         *sqlstore.Snapshots
	// logWriter names this store's commits in the change log; wake
	// receives after them (LogWake).
	logWriter *sqlstore.LogWriter
	wake      chan struct{}
}

// ErrLocked is returned by Open when another kintogo process uses the file.
var ErrLocked = errors.New("database is in use by another kintogo process")

// lockFile takes an exclusive lock on path + ".lock" and writes this
// process's id in it. kintogo keeps in-memory views of the data (the
// changes feed, caches), kept current by its own commits: a second
// server writing the same file would make them stale.
//
// The lock file says "PID REFRESHES": the server's process id, and how
// many times it has dropped its in-memory views on a command's request
// (Refreshed), which is how a command knows that its SIGHUP was handled
// (TellHolder).
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", path, ErrLocked)
		}
		return nil, err
	}
	writeLockState(f, 0)
	return f, nil
}

// writeLockState writes this process's id and its count of refreshes in
// the lock file f. The line is written over the old one, then the file
// cut to its length: a reader never sees it empty.
func writeLockState(f *os.File, refreshes int64) error {
	line := []byte(fmt.Sprintf("%d %d\n", os.Getpid(), refreshes))
	if _, err := f.WriteAt(line, 0); err != nil {
		return err
	}
	return f.Truncate(int64(len(line)))
}

// lockState reads path's lock file: the holder's process id (0 when
// unknown) and its count of refreshes.
func lockState(path string) (pid int, refreshes int) {
	raw, err := os.ReadFile(path + ".lock")
	if err != nil {
		return 0, 0
	}
	fields := strings.Fields(string(raw))
	if len(fields) > 0 {
		pid, _ = strconv.Atoi(fields[0])
	}
	if len(fields) > 1 {
		refreshes, _ = strconv.Atoi(fields[1])
	}
	return pid, refreshes
}

// ErrOutdated is returned by Open when the database schema is older than
// this binary's: run `kintogo migrate`.
var ErrOutdated = sqlstore.ErrOutdated

// Options tune Open.
type Options struct {
	// Migrate applies pending migrations instead of refusing an outdated
	// schema. A brand-new database is always initialised.
	Migrate bool
	// SnapshotBytes bounds the memory of the snapshots of scopes that
	// lists evaluate in Go (sqlstore.Snapshots); 0 keeps none.
	SnapshotBytes int64
	// Beside lets a short administrative command (create-user,
	// purge-deleted) open a file a running server holds: it writes
	// beside the server, then tells it (TellHolder) to drop its in-memory
	// views. Migrations are never run beside a server.
	Beside bool
}

func dsn(path string, write bool) string {
	v := url.Values{}
	v.Add("_pragma", "busy_timeout(10000)")
	v.Add("_pragma", "journal_mode(WAL)")
	v.Add("_pragma", "synchronous(FULL)")
	v.Add("_pragma", "foreign_keys(ON)")
	if write {
		v.Set("_txlock", "immediate")
	} else {
		v.Add("_pragma", "query_only(ON)")
	}
	// The path is part of a URI: escape what would end it or be decoded.
	escaped := strings.NewReplacer("%", "%25", "#", "%23", "?", "%3F").Replace(path)
	return "file:" + escaped + "?" + v.Encode()
}

// Open opens (creating if needed) the database file at path.
func Open(ctx context.Context, path string, opts Options) (s *Store, err error) {
	if opts.Beside && !opts.Migrate {
		// A command beside a server never creates a database: one that
		// is not there is not the server's (unless a server just
		// started, `kintogo start &` right before: a few seconds).
		missing := func() bool { _, err := os.Stat(path); return errors.Is(err, os.ErrNotExist) }
		for wait := 0; missing() && wait < 30; wait++ {
			time.Sleep(100 * time.Millisecond)
		}
		if missing() {
			abs, _ := filepath.Abs(path)
			return nil, fmt.Errorf("no database at %s: run this command in the folder the server runs in, or name its database with KINTO_STORAGE_URL=/path/to/kintogo.db (or --ini with its settings)", abs)
		}
	}
	// Errors about the folder name the folder (and the setting), not
	// the lock file they would meet first.
	dir := filepath.Dir(path)
	if info, err := os.Stat(dir); err != nil || !info.IsDir() {
		abs, _ := filepath.Abs(dir)
		return nil, fmt.Errorf("the folder of the database (storage_url %s) is missing: create %s, or set kinto.storage_url (KINTO_STORAGE_URL)", path, abs)
	}
	if err := syscall.Access(dir, 2 /* W_OK */); err != nil {
		abs, _ := filepath.Abs(dir)
		return nil, fmt.Errorf("cannot write in %s, the folder of the database (storage_url %s): %w", abs, path, err)
	}
	lock, err := lockFile(path)
	server := 0
	if errors.Is(err, ErrLocked) && opts.Beside && !opts.Migrate {
		server, _ = lockState(path)
		err = nil
	}
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil && lock != nil {
			lock.Close()
		}
	}()
	writer, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		return nil, err
	}
	writer.SetMaxOpenConns(1)
	// The lock file keeps other kintogo processes out: no lock is needed
	// to migrate. Beside a server (no lock here) nothing is migrated: a
	// server that has just started may still be making the schema of a
	// new file, and is waited for a few seconds.
	upgrade := func() error {
		return schema.Upgrade(ctx, sqlstore.StdDB(writer), sqlstore.UpgradeOptions{Migrate: opts.Migrate, InitEmpty: lock != nil})
	}
	err = upgrade()
	for wait := 0; lock == nil && errors.Is(err, sqlstore.ErrOutdated) && wait < 50; wait++ {
		time.Sleep(100 * time.Millisecond)
		err = upgrade()
	}
	if err != nil {
		writer.Close()
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	reader, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		writer.Close()
		return nil, err
	}
	reader.SetMaxOpenConns(max(4, runtime.GOMAXPROCS(0)*2))
	st := &Store{writer: writer, reader: reader, lock: lock, server: server, path: path,
		writes: sqlstore.NewStatements(writer), reads: sqlstore.NewStatements(reader),
		snaps: sqlstore.NewSnapshots(opts.SnapshotBytes), wake: make(chan struct{}, 1)}
	st.logWriter = &sqlstore.LogWriter{Name: uuid.NewString(), Committed: st.wakeFollowers}
	st.commits = sqlstore.NewGroupCommitter(dialect, func(ctx context.Context) (sqlstore.Txn, error) {
		tx, err := writer.BeginTx(ctx, nil)
		if err != nil {
			return nil, err
		}
		return st.writes.Txn(tx), nil
	}, groupSize, st.logWriter)
	return st, nil
}

// Close implements storage.Storage.
func (s *Store) Close() error {
	s.writes.Close()
	s.reads.Close()
	err := s.writer.Close()
	if e := s.reader.Close(); err == nil {
		err = e
	}
	if s.lock != nil {
		s.lock.Close() // releases the lock
	}
	return err
}

// Refreshed is called by the server holding the file once it has dropped
// its in-memory views after a SIGHUP: it counts the refresh in the lock
// file, for the command waiting in TellHolder.
func (s *Store) Refreshed() error {
	if s.lock == nil {
		return nil
	}
	return writeLockState(s.lock, s.refreshes.Add(1))
}

// TellHolder tells the server holding the file (a store opened beside it)
// that the data changed outside it, with a SIGHUP, and waits until it
// says it has dropped its in-memory views (Refreshed), so that the
// command's change is seen by the server's next answer; at most timeout.
func (s *Store) TellHolder(timeout time.Duration) error {
	if s.server <= 0 {
		return nil
	}
	_, before := lockState(s.path)
	if err := syscall.Kill(s.server, syscall.SIGHUP); err != nil {
		return fmt.Errorf("telling the running server (pid %d) that the data changed: %w", s.server, err)
	}
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		// Refreshed, or replaced by a server that read the new data; an
		// unreadable file (pid 0) says neither.
		if pid, n := lockState(s.path); pid != 0 && (pid != s.server || n != before) {
			return nil
		}
	}
	return fmt.Errorf("the running server (pid %d) did not confirm within %v that it read the change", s.server, timeout)
}

// Update implements storage.Storage. Concurrent writers share commits
// (sqlstore.GroupCommitter); SQLite never asks for a retry: its writers do
// not run concurrently.
func (s *Store) Update(ctx context.Context, fn func(storage.Tx) error) error {
	return s.commits.Update(ctx, fn)
}

// groupSize bounds the writes sharing one commit (those waiting when it
// begins), so that one commit's latency stays bounded too.
const groupSize = 64

// View implements storage.Storage.
func (s *Store) View(ctx context.Context, fn func(storage.Tx) error) error {
	sqltx, err := s.reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return dialect.Wrap(err)
	}
	return dialect.View(ctx, s.reads.Txn(sqltx), s.snaps, fn)
}

// Plan tells what `kintogo migrate` would do to the database at path,
// without changing or creating anything (a missing file would be created
// at the latest version).
func Plan(ctx context.Context, path string) (sqlstore.Plan, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return schema.PlanFrom(0), nil
	}
	db, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return sqlstore.Plan{}, err
	}
	defer db.Close()
	return schema.Plan(ctx, sqlstore.StdDB(db))
}
