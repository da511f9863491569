// Package sqlite is the default storage backend: one SQLite file (pure Go,
// modernc.org/sqlite) in WAL mode, with synchronous=FULL so that a write is
// on disk when it is acknowledged.
//
// Writers are serialised by SQLite itself (BEGIN IMMEDIATE on a single
// writer connection), which is what makes per-scope timestamps strictly
// increasing; readers use a separate pool and see the last committed state.
// Filters on id and last_modified run in SQL; other filters, sorting and
// pagination are evaluated in Go with the same code as the memory backend
// (storage.Select), so both backends answer identically.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"kintogo/internal/kerr"
	"kintogo/internal/query"
	"kintogo/internal/storage"
)

// Store is the SQLite backend.
type Store struct {
	writer *sql.DB
	reader *sql.DB
	lock   *os.File // held for the store's lifetime: one kintogo per file
	now    func() int64
}

// ErrLocked is returned by Open when another kintogo process uses the file.
var ErrLocked = errors.New("database is in use by another kintogo process")

// lockFile takes an exclusive lock on path + ".lock". kintogo keeps
// in-memory views of the data (the changes feed), kept current by its own
// commits: a second process writing the same file would make them stale.
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
	return f, nil
}

// ErrOutdated is returned by Open when the database schema is older than
// this binary's: run `kintogo migrate`.
var ErrOutdated = errors.New("database schema is outdated: run `kintogo migrate`")

// Options tune Open.
type Options struct {
	// Migrate applies pending migrations instead of refusing an outdated
	// schema. A brand-new database is always initialised.
	Migrate bool
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
	lock, err := lockFile(path)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			lock.Close()
		}
	}()
	writer, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		return nil, err
	}
	writer.SetMaxOpenConns(1)
	s = &Store{writer: writer, lock: lock, now: func() int64 { return time.Now().UnixMilli() }}
	version, err := s.schemaVersion(ctx)
	if err != nil {
		writer.Close()
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	if version < len(migrations) {
		if version > 0 && !opts.Migrate {
			writer.Close()
			return nil, ErrOutdated
		}
		if err := s.migrate(ctx, version); err != nil {
			writer.Close()
			return nil, err
		}
	}
	if version > len(migrations) {
		writer.Close()
		return nil, fmt.Errorf("database schema version %d is newer than this kintogo (%d)", version, len(migrations))
	}
	reader, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		writer.Close()
		return nil, err
	}
	reader.SetMaxOpenConns(max(4, runtime.GOMAXPROCS(0)*2))
	s.reader = reader
	return s, nil
}

// Close implements storage.Storage.
func (s *Store) Close() error {
	err := s.writer.Close()
	if s.reader != nil {
		if e := s.reader.Close(); err == nil {
			err = e
		}
	}
	s.lock.Close() // releases the lock
	return err
}

// Update implements storage.Storage.
func (s *Store) Update(ctx context.Context, fn func(storage.Tx) error) (err error) {
	sqltx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return unavailable(err)
	}
	defer func() {
		if p := recover(); p != nil {
			sqltx.Rollback()
			panic(p)
		}
		if err != nil {
			sqltx.Rollback()
			return
		}
		if cerr := sqltx.Commit(); cerr != nil {
			err = unavailable(cerr)
		}
	}()
	return fn(&tx{s: s, q: sqltx, writable: true})
}

// View implements storage.Storage.
func (s *Store) View(ctx context.Context, fn func(storage.Tx) error) error {
	sqltx, err := s.reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return unavailable(err)
	}
	defer sqltx.Rollback()
	return fn(&tx{s: s, q: sqltx})
}

func unavailable(err error) error {
	if err == nil {
		return nil
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return kerr.Wrap(kerr.Unavailable, "Request canceled or timed out.", err)
	}
	return kerr.Wrap(kerr.Unavailable, "", err)
}

type tx struct {
	s        *Store
	q        *sql.Tx
	writable bool
	depth    int // nesting of savepoints
}

func (t *tx) Savepoint(ctx context.Context, fn func(storage.Tx) error) (err error) {
	if !t.writable {
		return fn(t)
	}
	t.depth++
	name := "sp" + strconv.Itoa(t.depth)
	defer func() { t.depth-- }()
	if _, err := t.q.ExecContext(ctx, "SAVEPOINT "+name); err != nil {
		return unavailable(err)
	}
	defer func() {
		if p := recover(); p != nil {
			t.q.ExecContext(ctx, "ROLLBACK TO "+name)
			panic(p)
		}
		if err != nil {
			if _, rerr := t.q.ExecContext(ctx, "ROLLBACK TO "+name); rerr != nil {
				err = unavailable(rerr)
				return
			}
		}
		if _, rerr := t.q.ExecContext(ctx, "RELEASE "+name); rerr != nil && err == nil {
			err = unavailable(rerr)
		}
	}()
	return fn(t)
}

var errReadOnly = kerr.E(kerr.Other, "write in a read-only transaction")

func encodeData(m map[string]any) (string, error) {
	if m == nil {
		return "{}", nil
	}
	b, err := json.Marshal(m)
	return string(b), err
}

func (t *tx) Get(ctx context.Context, s storage.Scope, id string) (*storage.Object, error) {
	var lm int64
	var raw string
	err := t.q.QueryRowContext(ctx,
		`SELECT last_modified, data FROM objects WHERE parent_id = ? AND resource_name = ? AND id = ? AND NOT deleted`,
		s.Parent, s.Resource, id).Scan(&lm, &raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, kerr.ObjectNotFound(s.Resource, id)
	}
	if err != nil {
		return nil, unavailable(err)
	}
	data, err := storage.DecodeData(raw)
	if err != nil {
		return nil, unavailable(err)
	}
	return &storage.Object{ID: id, LastModified: lm, Data: data}, nil
}

// write stores one row with the next timestamp of its scope and keeps the
// scope's timestamp row current, in the caller's transaction.
// WriteRow implements storage.RowWriter.
func (t *tx) WriteRow(ctx context.Context, s storage.Scope, o *storage.Object, supplied int64) (*storage.Object, error) {
	if !t.writable {
		return nil, errReadOnly
	}
	prev, err := t.Timestamp(ctx, s)
	if err != nil {
		return nil, err
	}
	raw, err := encodeData(o.Data)
	if err != nil {
		return nil, kerr.Wrap(kerr.Invalid, "data cannot be stored", err)
	}
	if o.Deleted {
		raw = "{}"
	}
	out := &storage.Object{ID: o.ID, Deleted: o.Deleted, Data: o.Data}
	if o.Deleted {
		out.Data = nil
	}
	out.LastModified = storage.NextTimestamp(prev, t.s.now(), supplied)
	if _, err := t.q.ExecContext(ctx, `INSERT INTO objects (parent_id, resource_name, id, last_modified, deleted, data)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (parent_id, resource_name, id) DO UPDATE SET
		last_modified = excluded.last_modified, deleted = excluded.deleted, data = excluded.data`,
		s.Parent, s.Resource, o.ID, out.LastModified, o.Deleted, raw); err != nil {
		return nil, unavailable(err)
	}
	if _, err := t.q.ExecContext(ctx, `INSERT INTO timestamps (parent_id, resource_name, last_modified) VALUES (?, ?, ?)
		ON CONFLICT (parent_id, resource_name) DO UPDATE SET last_modified = MAX(last_modified, excluded.last_modified)`,
		s.Parent, s.Resource, out.LastModified); err != nil {
		return nil, unavailable(err)
	}
	return out, nil
}

func (t *tx) Create(ctx context.Context, s storage.Scope, obj *storage.Object) (*storage.Object, error) {
	return storage.CreateObject(ctx, t, s, obj)
}

func (t *tx) Put(ctx context.Context, s storage.Scope, obj *storage.Object) (*storage.Object, error) {
	return t.WriteRow(ctx, s, &storage.Object{ID: obj.ID, Data: obj.Data}, obj.LastModified)
}

func (t *tx) Delete(ctx context.Context, s storage.Scope, id string, lastModified int64) (*storage.Object, error) {
	return storage.DeleteObject(ctx, t, s, id, lastModified)
}

// pushDown turns the filters SQL can evaluate on columns into a WHERE clause;
// the rest are evaluated in Go afterwards (Select re-checks all of them).
func pushDown(filters []query.Filter) (string, []any) {
	var where []string
	var args []any
	ops := map[query.Operator]string{query.EQ: "=", query.LT: "<", query.GT: ">", query.MAX: "<=", query.MIN: ">="}
	for _, f := range filters {
		op, ok := ops[f.Op]
		if !ok {
			continue
		}
		switch f.Field {
		case query.ModifiedField:
			if n, ok := f.Value.(int64); ok {
				where = append(where, "last_modified "+op+" ?")
				args = append(args, n)
			}
		case query.IDField:
			if s, ok := f.Value.(string); ok && f.Op == query.EQ {
				where = append(where, "id = ?")
				args = append(args, s)
			}
		}
	}
	if len(where) == 0 {
		return "", nil
	}
	return " AND " + strings.Join(where, " AND "), args
}

func (t *tx) List(ctx context.Context, s storage.Scope, opts storage.ListOptions) ([]*storage.Object, error) {
	if opts.IDs != nil && len(opts.IDs) == 0 {
		return []*storage.Object{}, nil
	}
	q := `SELECT id, last_modified, deleted, data FROM objects WHERE parent_id = ? AND resource_name = ?`
	args := []any{s.Parent, s.Resource}
	if !opts.IncludeDeleted {
		q += " AND NOT deleted"
	}
	extra, extraArgs := pushDown(opts.Filters)
	q += extra + " ORDER BY id"
	args = append(args, extraArgs...)
	rows, err := t.q.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	all, err := storage.ScanObjects(rows)
	if err != nil {
		return nil, unavailable(err)
	}
	return storage.Select(ctx, all, opts)
}

func (t *tx) Count(ctx context.Context, s storage.Scope, filters []query.Filter, ids []string) (int, error) {
	objs, err := t.List(ctx, s, storage.ListOptions{Filters: filters, IDs: ids})
	return len(objs), err
}

// likePrefix escapes a prefix for a LIKE ... ESCAPE '\' pattern.
func likePrefix(p string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(p) + "%"
}

func (t *tx) PurgeTree(ctx context.Context, parent string) error {
	if !t.writable {
		return errReadOnly
	}
	for _, table := range []string{"objects", "timestamps"} {
		if _, err := t.q.ExecContext(ctx, `DELETE FROM `+table+` WHERE parent_id = ? OR parent_id LIKE ? ESCAPE '\'`,
			parent, likePrefix(parent+"/")); err != nil {
			return unavailable(err)
		}
	}
	return nil
}

func (t *tx) Timestamp(ctx context.Context, s storage.Scope) (int64, error) {
	var ts int64
	err := t.q.QueryRowContext(ctx, `SELECT last_modified FROM timestamps WHERE parent_id = ? AND resource_name = ?`,
		s.Parent, s.Resource).Scan(&ts)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return ts, unavailable(err)
}

func (t *tx) InitTimestamp(ctx context.Context, s storage.Scope) (int64, error) {
	if !t.writable {
		return 0, errReadOnly
	}
	if _, err := t.q.ExecContext(ctx, `INSERT INTO timestamps (parent_id, resource_name, last_modified) VALUES (?, ?, ?)
		ON CONFLICT DO NOTHING`, s.Parent, s.Resource, t.s.now()); err != nil {
		return 0, unavailable(err)
	}
	return t.Timestamp(ctx, s)
}

func (t *tx) Timestamps(ctx context.Context, resource string, prefixes []string) (map[string]int64, error) {
	out := map[string]int64{}
	if len(prefixes) == 0 {
		return out, nil
	}
	var cond []string
	args := []any{resource}
	for _, p := range prefixes {
		cond = append(cond, `parent_id LIKE ? ESCAPE '\'`)
		args = append(args, likePrefix(p))
	}
	rows, err := t.q.QueryContext(ctx, `SELECT parent_id, last_modified FROM timestamps WHERE resource_name = ? AND (`+
		strings.Join(cond, " OR ")+`)`, args...)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	stamps, err := storage.ScanTimestamps(rows)
	return stamps, unavailable(err)
}

func (t *tx) Permissions(ctx context.Context, uri string) (map[string][]string, error) {
	rows, err := t.q.QueryContext(ctx, `SELECT permission, principal FROM access_control_entries WHERE object_id = ? ORDER BY permission, principal`, uri)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	perms, err := storage.ScanGroups(rows, nil)
	return perms, unavailable(err)
}

func (t *tx) SetPermissions(ctx context.Context, uri string, perms map[string][]string) error {
	if !t.writable {
		return errReadOnly
	}
	names := make([]string, 0, len(perms))
	for perm := range perms {
		names = append(names, perm)
	}
	sort.Strings(names)
	for _, perm := range names {
		if _, err := t.q.ExecContext(ctx, `DELETE FROM access_control_entries WHERE object_id = ? AND permission = ?`, uri, perm); err != nil {
			return unavailable(err)
		}
		for _, p := range perms[perm] {
			if _, err := t.q.ExecContext(ctx, `INSERT INTO access_control_entries (object_id, permission, principal) VALUES (?, ?, ?)
				ON CONFLICT DO NOTHING`, uri, perm, p); err != nil {
				return unavailable(err)
			}
		}
	}
	return nil
}

func (t *tx) DeletePermissions(ctx context.Context, uris ...string) error {
	if !t.writable {
		return errReadOnly
	}
	for _, pattern := range uris {
		var err error
		if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
			_, err = t.q.ExecContext(ctx, `DELETE FROM access_control_entries WHERE object_id LIKE ? ESCAPE '\'`, likePrefix(prefix))
		} else {
			_, err = t.q.ExecContext(ctx, `DELETE FROM access_control_entries WHERE object_id = ?`, pattern)
		}
		if err != nil {
			return unavailable(err)
		}
	}
	return nil
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

func (t *tx) HasAny(ctx context.Context, aces []storage.ACE, principals []string) (bool, error) {
	if len(aces) == 0 || len(principals) == 0 {
		return false, nil
	}
	var cond []string
	var args []any
	for _, a := range aces {
		cond = append(cond, "(object_id = ? AND permission = ?)")
		args = append(args, a.URI, a.Permission)
	}
	for _, p := range principals {
		args = append(args, p)
	}
	var one int
	err := t.q.QueryRowContext(ctx, `SELECT 1 FROM access_control_entries WHERE (`+strings.Join(cond, " OR ")+
		`) AND principal IN (`+placeholders(len(principals))+`) LIMIT 1`, args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, unavailable(err)
}

func (t *tx) Accessible(ctx context.Context, prefix string, extra int, perms, principals []string) (map[string][]string, error) {
	out := map[string][]string{}
	if len(perms) == 0 || len(principals) == 0 {
		return out, nil
	}
	args := []any{likePrefix(prefix)}
	for _, p := range perms {
		args = append(args, p)
	}
	for _, p := range principals {
		args = append(args, p)
	}
	rows, err := t.q.QueryContext(ctx, `SELECT DISTINCT object_id, permission FROM access_control_entries
		WHERE object_id LIKE ? ESCAPE '\' AND permission IN (`+placeholders(len(perms))+`)
		AND principal IN (`+placeholders(len(principals))+`)`, args...)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	found, err := storage.ScanGroups(rows, func(uri string) bool { return storage.SegmentsAfter(uri, prefix) == extra })
	return found, unavailable(err)
}

func (t *tx) UserPrincipals(ctx context.Context, userID string, authenticated bool) ([]string, error) {
	users := []any{userID}
	if authenticated {
		users = append(users, "system.Authenticated")
	}
	rows, err := t.q.QueryContext(ctx, `SELECT DISTINCT principal FROM user_principals WHERE user_id IN (`+
		placeholders(len(users))+`) ORDER BY principal`, users...)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	principals, err := storage.ScanStrings(rows)
	return principals, unavailable(err)
}

func (t *tx) exec(ctx context.Context, q string, args ...any) error {
	if !t.writable {
		return errReadOnly
	}
	_, err := t.q.ExecContext(ctx, q, args...)
	return unavailable(err)
}

func (t *tx) AddUserPrincipal(ctx context.Context, userID, principal string) error {
	return t.exec(ctx, `INSERT INTO user_principals (user_id, principal) VALUES (?, ?) ON CONFLICT DO NOTHING`, userID, principal)
}

func (t *tx) RemoveUserPrincipal(ctx context.Context, userID, principal string) error {
	return t.exec(ctx, `DELETE FROM user_principals WHERE user_id = ? AND principal = ?`, userID, principal)
}

func (t *tx) RemovePrincipal(ctx context.Context, principal string) error {
	if err := t.exec(ctx, `DELETE FROM user_principals WHERE principal = ?`, principal); err != nil {
		return err
	}
	return t.exec(ctx, `DELETE FROM access_control_entries WHERE principal = ?`, principal)
}

// LockScope implements storage.Tx: the one writer connection serializes
// writers already.
func (t *tx) LockScope(ctx context.Context, s storage.Scope) error { return nil }

func (t *tx) Flush(ctx context.Context) error {
	for _, table := range []string{"objects", "timestamps", "access_control_entries", "user_principals"} {
		if err := t.exec(ctx, `DELETE FROM `+table); err != nil {
			return err
		}
	}
	return nil
}
