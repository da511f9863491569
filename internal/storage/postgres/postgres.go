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
// Like the SQLite backend, filters on id and last_modified run in SQL and
// the others in Go (storage.Select), so every backend answers identically.
package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"kintogo/internal/kerr"
	"kintogo/internal/query"
	"kintogo/internal/storage"
)

// Store is the PostgreSQL backend.
type Store struct {
	pool *pgxpool.Pool
	now  func() int64
	// stop ends the listeners (Listen) on Close: they hold connections,
	// which the pool waits for.
	stop   context.Context
	cancel context.CancelFunc
}

// ErrOutdated is returned by Open when the schema is older than this
// binary's: run `kintogo migrate`.
var ErrOutdated = errors.New("database schema is outdated: run `kintogo migrate`")

// Options tune Open.
type Options struct {
	// Migrate creates or upgrades the schema; otherwise Open refuses a
	// database whose schema is missing or outdated.
	Migrate bool
}

// Open connects to the database at dsn (postgres://user:pass@host/db).
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, err
	}
	s := &Store{pool: pool, now: func() int64 { return time.Now().UnixMilli() }}
	s.stop, s.cancel = context.WithCancel(context.Background())
	version, err := s.schemaVersion(ctx)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgresql: %w", err)
	}
	switch {
	case version > len(migrations):
		pool.Close()
		return nil, fmt.Errorf("database schema version %d is newer than this kintogo (%d)", version, len(migrations))
	case version < len(migrations) && !opts.Migrate:
		pool.Close()
		return nil, ErrOutdated
	case version < len(migrations):
		if err := s.migrate(ctx, version); err != nil {
			pool.Close()
			return nil, err
		}
	}
	return s, nil
}

// Close implements storage.Storage.
func (s *Store) Close() error {
	s.cancel()
	s.pool.Close()
	return nil
}

// Pool gives the connection pool, for LISTEN/NOTIFY.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// retryable reports errors after which a transaction may simply run again:
// deadlocks and serialization failures.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

const maxAttempts = 8

// Update implements storage.Storage: fn runs again, after a short random
// pause, when the transaction meets a deadlock or a serialization failure
// (storage.IsRetryable), up to maxAttempts times.
func (s *Store) Update(ctx context.Context, fn func(storage.Tx) error) error {
	var err error
	for attempt := 0; attempt < maxAttempts; attempt++ {
		err = s.run(ctx, false, fn)
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

func (s *Store) run(ctx context.Context, readOnly bool, fn func(storage.Tx) error) (err error) {
	mode := pgx.ReadWrite
	if readOnly {
		mode = pgx.ReadOnly
	}
	ptx, err := s.pool.BeginTx(ctx, pgx.TxOptions{AccessMode: mode})
	if err != nil {
		return unavailable(err)
	}
	defer func() {
		if p := recover(); p != nil {
			ptx.Rollback(context.Background())
			panic(p)
		}
		if err != nil {
			ptx.Rollback(context.Background())
			return
		}
		if readOnly {
			ptx.Rollback(context.Background())
			return
		}
		if cerr := ptx.Commit(ctx); cerr != nil {
			err = unavailable(cerr)
		}
	}()
	return fn(&tx{s: s, q: ptx, writable: !readOnly})
}

func unavailable(err error) error {
	if err == nil {
		return nil
	}
	if retryable(err) {
		return storage.Retryable(err)
	}
	var ke *kerr.Error
	if errors.As(err, &ke) || storage.IsRetryable(err) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return kerr.Wrap(kerr.Unavailable, "Request canceled or timed out.", err)
	}
	return kerr.Wrap(kerr.Unavailable, "", err)
}

type tx struct {
	s        *Store
	q        pgx.Tx
	writable bool
	depth    int
}

var errReadOnly = kerr.E(kerr.Other, "write in a read-only transaction")

func (t *tx) exec(ctx context.Context, q string, args ...any) error {
	if !t.writable {
		return errReadOnly
	}
	_, err := t.q.Exec(ctx, q, args...)
	return unavailable(err)
}

func (t *tx) Get(ctx context.Context, s storage.Scope, id string) (*storage.Object, error) {
	var lm int64
	var raw string
	err := t.q.QueryRow(ctx, `SELECT last_modified, data::text FROM objects
		WHERE parent_id = $1 AND resource_name = $2 AND id = $3 AND NOT deleted`, s.Parent, s.Resource, id).Scan(&lm, &raw)
	if errors.Is(err, pgx.ErrNoRows) {
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

// lockScope takes the scope's timestamps row lock until commit and
// returns the scope's current timestamp (0 when none).
func (t *tx) lockScope(ctx context.Context, s storage.Scope) (int64, error) {
	if _, err := t.q.Exec(ctx, `INSERT INTO timestamps (parent_id, resource_name, last_modified) VALUES ($1, $2, 0)
		ON CONFLICT DO NOTHING`, s.Parent, s.Resource); err != nil {
		return 0, unavailable(err)
	}
	var ts int64
	err := t.q.QueryRow(ctx, `SELECT last_modified FROM timestamps WHERE parent_id = $1 AND resource_name = $2 FOR UPDATE`,
		s.Parent, s.Resource).Scan(&ts)
	return ts, unavailable(err)
}

// WriteRow implements storage.RowWriter.
func (t *tx) WriteRow(ctx context.Context, s storage.Scope, o *storage.Object, supplied int64) (*storage.Object, error) {
	if !t.writable {
		return nil, errReadOnly
	}
	prev, err := t.lockScope(ctx, s)
	if err != nil {
		return nil, err
	}
	raw := "{}"
	if !o.Deleted && o.Data != nil {
		b, err := json.Marshal(o.Data)
		if err != nil {
			return nil, kerr.Wrap(kerr.Invalid, "data cannot be stored", err)
		}
		raw = string(b)
	}
	out := &storage.Object{ID: o.ID, Deleted: o.Deleted, Data: o.Data}
	if o.Deleted {
		out.Data = nil
	}
	out.LastModified = storage.NextTimestamp(prev, t.s.now(), supplied)
	if err := t.exec(ctx, `INSERT INTO objects (parent_id, resource_name, id, last_modified, deleted, data)
		VALUES ($1, $2, $3, $4, $5, $6::jsonb)
		ON CONFLICT (parent_id, resource_name, id) DO UPDATE SET
		last_modified = excluded.last_modified, deleted = excluded.deleted, data = excluded.data`,
		s.Parent, s.Resource, o.ID, out.LastModified, o.Deleted, raw); err != nil {
		return nil, err
	}
	if err := t.exec(ctx, `UPDATE timestamps SET last_modified = GREATEST(last_modified, $3)
		WHERE parent_id = $1 AND resource_name = $2`, s.Parent, s.Resource, out.LastModified); err != nil {
		return nil, err
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

func (t *tx) List(ctx context.Context, s storage.Scope, opts storage.ListOptions) ([]*storage.Object, error) {
	if opts.IDs != nil && len(opts.IDs) == 0 {
		return []*storage.Object{}, nil
	}
	q := `SELECT id, last_modified, deleted, data::text FROM objects WHERE parent_id = $1 AND resource_name = $2`
	args := []any{s.Parent, s.Resource}
	if !opts.IncludeDeleted {
		q += " AND NOT deleted"
	}
	ops := map[query.Operator]string{query.EQ: "=", query.LT: "<", query.GT: ">", query.MAX: "<=", query.MIN: ">="}
	for _, f := range opts.Filters {
		op, ok := ops[f.Op]
		if !ok {
			continue
		}
		switch v := f.Value.(type) {
		case int64:
			if f.Field == query.ModifiedField {
				args = append(args, v)
				q += fmt.Sprintf(" AND last_modified %s $%d", op, len(args))
			}
		case string:
			if f.Field == query.IDField && f.Op == query.EQ {
				args = append(args, v)
				q += fmt.Sprintf(" AND id = $%d", len(args))
			}
		}
	}
	rows, err := t.q.Query(ctx, q+" ORDER BY id", args...)
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

func likePrefix(p string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(p) + "%"
}

func (t *tx) PurgeTree(ctx context.Context, parent string) error {
	for _, table := range []string{"objects", "timestamps"} {
		if err := t.exec(ctx, `DELETE FROM `+table+` WHERE parent_id = $1 OR parent_id LIKE $2`, parent, likePrefix(parent+"/")); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) Timestamp(ctx context.Context, s storage.Scope) (int64, error) {
	var ts int64
	err := t.q.QueryRow(ctx, `SELECT last_modified FROM timestamps WHERE parent_id = $1 AND resource_name = $2`,
		s.Parent, s.Resource).Scan(&ts)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return ts, unavailable(err)
}

func (t *tx) InitTimestamp(ctx context.Context, s storage.Scope) (int64, error) {
	if err := t.exec(ctx, `INSERT INTO timestamps (parent_id, resource_name, last_modified) VALUES ($1, $2, $3)
		ON CONFLICT (parent_id, resource_name) DO UPDATE SET last_modified = $3 WHERE timestamps.last_modified = 0`,
		s.Parent, s.Resource, t.s.now()); err != nil {
		return 0, err
	}
	return t.Timestamp(ctx, s)
}

func (t *tx) Timestamps(ctx context.Context, resource string, prefixes []string) (map[string]int64, error) {
	out := map[string]int64{}
	if len(prefixes) == 0 {
		return out, nil
	}
	patterns := make([]string, len(prefixes))
	for i, p := range prefixes {
		patterns[i] = likePrefix(p)
	}
	rows, err := t.q.Query(ctx, `SELECT parent_id, last_modified FROM timestamps
		WHERE resource_name = $1 AND last_modified > 0 AND parent_id LIKE ANY($2)`, resource, patterns)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	stamps, err := storage.ScanTimestamps(rows)
	return stamps, unavailable(err)
}

func (t *tx) Permissions(ctx context.Context, uri string) (map[string][]string, error) {
	rows, err := t.q.Query(ctx, `SELECT permission, principal FROM access_control_entries WHERE object_id = $1 ORDER BY permission, principal`, uri)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	perms, err := storage.ScanGroups(rows, nil)
	return perms, unavailable(err)
}

func (t *tx) SetPermissions(ctx context.Context, uri string, perms map[string][]string) error {
	names := make([]string, 0, len(perms))
	for perm := range perms {
		names = append(names, perm)
	}
	sort.Strings(names)
	for _, perm := range names {
		if err := t.exec(ctx, `DELETE FROM access_control_entries WHERE object_id = $1 AND permission = $2`, uri, perm); err != nil {
			return err
		}
		for _, p := range perms[perm] {
			if err := t.exec(ctx, `INSERT INTO access_control_entries (object_id, permission, principal) VALUES ($1, $2, $3)
				ON CONFLICT DO NOTHING`, uri, perm, p); err != nil {
				return err
			}
		}
	}
	return nil
}

func (t *tx) DeletePermissions(ctx context.Context, uris ...string) error {
	for _, pattern := range uris {
		var err error
		if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
			err = t.exec(ctx, `DELETE FROM access_control_entries WHERE object_id LIKE $1`, likePrefix(prefix))
		} else {
			err = t.exec(ctx, `DELETE FROM access_control_entries WHERE object_id = $1`, pattern)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) HasAny(ctx context.Context, aces []storage.ACE, principals []string) (bool, error) {
	if len(aces) == 0 || len(principals) == 0 {
		return false, nil
	}
	uris := make([]string, len(aces))
	perms := make([]string, len(aces))
	for i, a := range aces {
		uris[i], perms[i] = a.URI, a.Permission
	}
	var found bool
	err := t.q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM access_control_entries e
		JOIN unnest($1::text[], $2::text[]) AS a(uri, perm) ON e.object_id = a.uri AND e.permission = a.perm
		WHERE e.principal = ANY($3))`, uris, perms, principals).Scan(&found)
	return found, unavailable(err)
}

func (t *tx) Accessible(ctx context.Context, prefix string, extra int, perms, principals []string) (map[string][]string, error) {
	out := map[string][]string{}
	if len(perms) == 0 || len(principals) == 0 {
		return out, nil
	}
	rows, err := t.q.Query(ctx, `SELECT DISTINCT object_id, permission FROM access_control_entries
		WHERE object_id LIKE $1 AND permission = ANY($2) AND principal = ANY($3)`, likePrefix(prefix), perms, principals)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	found, err := storage.ScanGroups(rows, func(uri string) bool { return storage.SegmentsAfter(uri, prefix) == extra })
	return found, unavailable(err)
}

func (t *tx) UserPrincipals(ctx context.Context, userID string, authenticated bool) ([]string, error) {
	users := []string{userID}
	if authenticated {
		users = append(users, "system.Authenticated")
	}
	rows, err := t.q.Query(ctx, `SELECT DISTINCT principal FROM user_principals WHERE user_id = ANY($1) ORDER BY principal`, users)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	principals, err := storage.ScanStrings(rows)
	return principals, unavailable(err)
}

func (t *tx) AddUserPrincipal(ctx context.Context, userID, principal string) error {
	return t.exec(ctx, `INSERT INTO user_principals (user_id, principal) VALUES ($1, $2) ON CONFLICT DO NOTHING`, userID, principal)
}

func (t *tx) RemoveUserPrincipal(ctx context.Context, userID, principal string) error {
	return t.exec(ctx, `DELETE FROM user_principals WHERE user_id = $1 AND principal = $2`, userID, principal)
}

func (t *tx) RemovePrincipal(ctx context.Context, principal string) error {
	if err := t.exec(ctx, `DELETE FROM user_principals WHERE principal = $1`, principal); err != nil {
		return err
	}
	return t.exec(ctx, `DELETE FROM access_control_entries WHERE principal = $1`, principal)
}

// LockScope implements storage.Tx with the scope's row lock (lockScope).
func (t *tx) LockScope(ctx context.Context, s storage.Scope) error {
	if !t.writable {
		return errReadOnly
	}
	_, err := t.lockScope(ctx, s)
	return err
}

func (t *tx) Flush(ctx context.Context) error {
	return t.exec(ctx, `TRUNCATE objects, timestamps, access_control_entries, user_principals`)
}

func (t *tx) Savepoint(ctx context.Context, fn func(storage.Tx) error) (err error) {
	if !t.writable {
		return fn(t)
	}
	t.depth++
	name := "sp" + strconv.Itoa(t.depth)
	defer func() { t.depth-- }()
	if err := t.exec(ctx, "SAVEPOINT "+name); err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			t.q.Exec(ctx, "ROLLBACK TO SAVEPOINT "+name)
			panic(p)
		}
		if err != nil {
			if _, rerr := t.q.Exec(ctx, "ROLLBACK TO SAVEPOINT "+name); rerr != nil {
				err = unavailable(rerr)
				return
			}
		}
		if _, rerr := t.q.Exec(ctx, "RELEASE SAVEPOINT "+name); rerr != nil && err == nil {
			err = unavailable(rerr)
		}
	}()
	return fn(t)
}
