// Package sqlstore is what the SQL storage backends (SQLite, PostgreSQL)
// share: the whole storage.Tx contract written once over a driver
// transaction, the mapping of driver errors to the contract's, and the
// schema migration runner.
//
// A backend keeps only what is its own: opening its database, its
// connection pools, its transaction retries, and its Dialect, the
// description of how its SQL differs. It begins a driver transaction, wraps
// it in a Txn and hands it to Dialect.Run, which gives the caller's
// function a storage.Tx and ends the transaction.
//
// Shared statements are written with ? placeholders; Dialect rewrites them
// for databases that number their parameters.
package sqlstore

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"kintogo/internal/kerr"
	"kintogo/internal/storage"
)

// Querier runs statements, as a driver's transaction, connection or pool
// does. Statements are the driver's native SQL: Querier does no rewriting.
type Querier interface {
	// Exec runs a statement that returns no rows.
	Exec(ctx context.Context, query string, args ...any) error
	// Query runs a statement and returns its rows; the caller closes them.
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	// QueryRow runs a statement expected to return at most one row. A
	// missing row is an error for which errors.Is(err, sql.ErrNoRows)
	// holds (pgx's ErrNoRows does).
	QueryRow(ctx context.Context, query string, args ...any) Row
}

// Rows is a result set being read.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	// Err is the error met while iterating, if any.
	Err() error
	Close()
}

// Row is the result of QueryRow; its error, if any, is reported by Scan.
type Row interface {
	Scan(dest ...any) error
}

// Flusher is a Querier whose statements that return nothing may wait
// (PostgreSQL's pipeline) and report their errors later; Flush sends them
// and returns the first error. A savepoint flushes before it is released,
// so that it reports the failures of its own work.
type Flusher interface {
	Flush(ctx context.Context) error
}

// Txn is one driver transaction, begun by the backend.
type Txn interface {
	Querier
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error
}

// DB is a database handle that runs statements on its own and begins
// transactions: what the migration runner needs.
type DB interface {
	Querier
	Begin(ctx context.Context) (Txn, error)
}

// Dialect describes how a backend's SQL differs from the shared
// statements, and how its errors are classified. Its strings must all be
// set; its flags, false, describe SQLite (? placeholders, lists spelt out,
// writers serialized by the database).
type Dialect struct {
	// NumberedParams rewrites each ? placeholder into $1, $2, ...
	// (PostgreSQL). A ? inside a quoted literal is left alone.
	NumberedParams bool
	// LikeEscape follows every LIKE comparison. Patterns escape %, _ and
	// \ with a backslash, so it must make the backslash LIKE's escape
	// character: ` ESCAPE '\'` for SQLite, which has none by default;
	// empty for PostgreSQL, whose default it is (and whose LIKE ANY takes
	// no ESCAPE clause).
	LikeEscape string
	// Greatest is the SQL function returning the larger of two values:
	// SQLite's two-argument MAX, PostgreSQL's GREATEST.
	Greatest string
	// JSONColumn reads the data column as JSON text ("data",
	// "data::text"); JSONParam is the placeholder that writes JSON text
	// into it ("?", "?::jsonb").
	JSONColumn, JSONParam string
	// JSON is how SQL reads the JSON fields of data, to filter and sort
	// on them (NoJSON: in Go only).
	JSON JSONFlavor
	// CollateC follows a text column whose order must be bytewise, as Go
	// compares strings (` COLLATE "C"` for PostgreSQL, whose default
	// collation is the locale's; empty for SQLite, bytewise already).
	CollateC string
	// Arrays binds a list as one array parameter, compared with = ANY(?),
	// LIKE ANY(?) and unnest (PostgreSQL): one statement text whatever the
	// list's length. Without it lists are spelt out, IN (?, ?, ...).
	Arrays bool
	// RowLocks serializes the writers of a scope with the lock of its
	// timestamps row, taken with SELECT ... FOR UPDATE after inserting a
	// placeholder row (timestamp 0) when there is none: concurrent
	// transactions then give timestamps in commit order (PostgreSQL).
	// Without it, the database serializes all writers already (SQLite's
	// single writer) and LockScope does nothing.
	RowLocks bool
	// Truncate makes Flush empty the tables with one TRUNCATE rather than
	// a DELETE per table (SQLite has no TRUNCATE).
	Truncate bool
	// Retryable reports the driver errors after which the whole
	// transaction may run again (deadlocks, serialization failures); nil
	// when the database has none.
	Retryable func(error) bool
	// Unstorable reports the driver errors that refuse a value the client
	// sent (PostgreSQL's jsonb has no \u0000): a 400, not a 503. Nil when
	// the database stores every JSON value.
	Unstorable func(error) bool
	// TableExists is a query of one parameter, a table name, answering
	// one boolean: whether that table exists. The migration runner uses it
	// to recognise a database never initialised.
	TableExists string
}

// Wrap turns a driver error into the contract's: nil stays nil, kerr
// errors and errors already marked retryable pass through, errors the
// dialect deems Retryable are marked storage.Retryable, an ended context
// is a kerr.Unavailable "Request canceled or timed out.", and anything
// else is kerr.Unavailable.
func (d *Dialect) Wrap(err error) error {
	if err == nil {
		return nil
	}
	if d.Retryable != nil && d.Retryable(err) {
		return storage.Retryable(err)
	}
	var ke *kerr.Error
	if errors.As(err, &ke) || storage.IsRetryable(err) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return kerr.Wrap(kerr.Unavailable, "Request canceled or timed out.", err)
	}
	if d.Unstorable != nil && d.Unstorable(err) {
		return kerr.Wrap(kerr.Invalid, "data cannot be stored", err)
	}
	return kerr.Wrap(kerr.Unavailable, "", err)
}

// LogWriter is a store's side of its commits: its name in the change log
// (storage.Log.Writer) and what it does once a transaction that logged
// changes committed.
type LogWriter struct {
	Name string
	// Committed, when not nil, is called after such a commit (it wakes
	// the store's followers, or asks for a tick).
	Committed func()
}

// appendLog is the change log's one write: the changes of the transaction
// committing (PostgreSQL adds its transaction id by default).
const appendLog = `INSERT INTO changelog (writer, at, changes) VALUES (?, ?, ?)`

// Run runs fn with a read-write storage.Tx over txn, which the caller
// began, and ends txn: it commits when fn returns nil, after appending
// what the transaction changed to the change log (its last statement);
// it rolls back when fn returns an error (returned as is) or panics (the
// panic goes on). A failed commit is returned through Wrap, so a
// serialization failure at commit is retryable.
func (d *Dialect) Run(ctx context.Context, txn Txn, w *LogWriter, fn func(storage.Tx) error) (err error) {
	return d.run(ctx, txn, &tx{d: d, q: txn, writable: true}, w, fn)
}

// View runs fn with a read-only storage.Tx over txn, whose lists may use
// snaps, and rolls txn back.
func (d *Dialect) View(ctx context.Context, txn Txn, snaps *Snapshots, fn func(storage.Tx) error) error {
	return d.run(ctx, txn, &tx{d: d, q: txn, snaps: snaps}, nil, fn)
}

func (d *Dialect) run(ctx context.Context, txn Txn, t *tx, w *LogWriter, fn func(storage.Tx) error) (err error) {
	writable := t.writable
	logged := false
	defer func() {
		// The rollback must happen even when ctx has ended: that is
		// often why fn failed.
		if p := recover(); p != nil {
			txn.Rollback(context.Background())
			panic(p)
		}
		if err == nil && t.broken != nil {
			err = t.broken // a failed function's work could not be undone
		}
		if err == nil && writable && w != nil && len(t.changes) > 0 {
			logged = true
			err = d.Wrap(txn.Exec(ctx, d.rebind(appendLog), w.Name, time.Now().UnixMicro(), storage.EncodeChanges(t.changes)))
		}
		if err != nil || !writable {
			txn.Rollback(context.Background())
			return
		}
		if cerr := txn.Commit(ctx); cerr != nil {
			err = d.Wrap(cerr)
			return
		}
		if logged && w.Committed != nil {
			w.Committed()
		}
	}()
	return fn(t)
}

// rebind rewrites the ? placeholders of a shared statement for the
// dialect.
func (d *Dialect) rebind(query string) string {
	if !d.NumberedParams || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n, quoted := 0, false
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'':
			quoted = !quoted // '' inside a literal toggles twice
		case c == '?' && !quoted:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// like is the condition "column matches the pattern of one parameter",
// with the dialect's escape clause.
func (d *Dialect) like(column string) string {
	return column + " LIKE ?" + d.LikeEscape
}

// likeAny is the condition "column matches one of the patterns", and its
// arguments. patterns must not be empty.
func (d *Dialect) likeAny(column string, patterns []string) (string, []any) {
	if d.Arrays {
		return column + " LIKE ANY(?)", []any{patterns}
	}
	cond := make([]string, len(patterns))
	args := make([]any, len(patterns))
	for i, p := range patterns {
		cond[i], args[i] = d.like(column), p
	}
	return "(" + strings.Join(cond, " OR ") + ")", args
}

// in is the condition "column is one of values", and its arguments.
// values must not be empty.
func (d *Dialect) in(column string, values []string) (string, []any) {
	if d.Arrays {
		return column + " = ANY(?)", []any{values}
	}
	args := make([]any, len(values))
	for i, v := range values {
		args[i] = v
	}
	return column + " IN (" + strings.TrimSuffix(strings.Repeat("?, ", len(values)), ", ") + ")", args
}

// likePrefix is the LIKE pattern of the strings starting with p: p's
// wildcards and backslashes are escaped with a backslash.
func likePrefix(p string) string {
	return likeEscaper.Replace(p) + "%"
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// Exec runs statements in order on q, stopping at the first that fails:
// the body of most migrations.
func Exec(ctx context.Context, q Querier, statements ...string) error {
	for _, stmt := range statements {
		if err := q.Exec(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}
