package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"kintogo/internal/kerr"
	"kintogo/internal/query"
	"kintogo/internal/storage"
)

// tx implements storage.Tx over one driver transaction. Filters on id and
// last_modified run in SQL; the rest of a list's selection runs in Go
// (storage.Select), so every backend answers identically.
type tx struct {
	d        *Dialect
	q        Querier
	writable bool
	depth    int // nesting of savepoints
	// broken is set when a savepoint could not be rolled back: the
	// transaction holds work that failed, and must not commit.
	broken error
	// held are the timestamps of the scopes this transaction wrote: no
	// one else can change them until it ends (it holds their rows' locks,
	// or the database's only writer lock), so its next writes there need
	// not read them again. Forgotten whenever work is undone or
	// timestamps are written otherwise.
	held map[storage.Scope]int64
	// snaps, in read-only transactions, are the snapshots lists may use.
	snaps *Snapshots
	// memo, in read-write transactions, are the reads it may repeat.
	memo memo
	// changes are what the transaction changed (storage.Tx.Changes),
	// appended to the change log when it commits.
	changes []storage.Change
}

// Changes implements storage.Tx.
func (t *tx) Changes() []storage.Change { return t.changes }

var errReadOnly = kerr.E(kerr.Other, "write in a read-only transaction")

// now is the clock of timestamps, in milliseconds.
func now() int64 { return time.Now().UnixMilli() }

// The tx's own statements go through these three: they rewrite
// placeholders, and exec refuses to write in a read-only transaction.

func (t *tx) exec(ctx context.Context, q string, args ...any) error {
	if !t.writable {
		return errReadOnly
	}
	return t.d.Wrap(t.q.Exec(ctx, t.d.rebind(q), args...))
}

func (t *tx) query(ctx context.Context, q string, args ...any) (Rows, error) {
	rows, err := t.q.Query(ctx, t.d.rebind(q), args...)
	return rows, t.d.Wrap(err)
}

func (t *tx) queryRow(ctx context.Context, q string, args ...any) Row {
	return t.q.QueryRow(ctx, t.d.rebind(q), args...)
}

// Savepoint implements storage.Tx. In a read-only transaction, which has
// nothing to undo, fn simply runs.
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
	// Undoing must happen even when ctx has ended, often why fn failed.
	undo := context.WithoutCancel(ctx)
	changed := len(t.changes)
	rollback := func() error {
		t.forget()
		t.changes = t.changes[:changed]
		rerr := t.q.Exec(undo, "ROLLBACK TO SAVEPOINT "+name)
		if rerr != nil && t.broken == nil {
			t.broken = t.d.Wrap(rerr)
		}
		return rerr
	}
	defer func() {
		if p := recover(); p != nil {
			rollback()
			panic(p)
		}
		if f, ok := t.q.(Flusher); ok && err == nil {
			err = t.d.Wrap(f.Flush(ctx))
		}
		if err != nil {
			// Also what makes a PostgreSQL transaction usable again
			// after a failed statement.
			if rerr := rollback(); rerr != nil {
				err = t.d.Wrap(rerr)
				return
			}
		}
		if rerr := t.q.Exec(undo, "RELEASE SAVEPOINT "+name); rerr != nil && err == nil {
			err = t.d.Wrap(rerr)
		}
	}()
	return fn(t)
}

// Get implements storage.Tx.
func (t *tx) Get(ctx context.Context, s storage.Scope, id string) (*storage.Object, error) {
	key := objectKey{s, id}
	if o, ok := t.memo.objects[key]; ok {
		if o == nil {
			return nil, kerr.ObjectNotFound(s.Resource, id)
		}
		return o, nil
	}
	o, err := t.get(ctx, s, id)
	if t.writable && (err == nil || kerr.Is(err, kerr.NotFound)) {
		t.memo.rememberObject(key, o)
	}
	return o, err
}

func (t *tx) get(ctx context.Context, s storage.Scope, id string) (*storage.Object, error) {
	var lm int64
	var raw string
	err := t.queryRow(ctx, `SELECT last_modified, `+t.d.JSONColumn+` FROM objects
		WHERE parent_id = ? AND resource_name = ? AND id = ? AND NOT deleted`, s.Parent, s.Resource, id).Scan(&lm, &raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, kerr.ObjectNotFound(s.Resource, id)
	}
	if err != nil {
		return nil, t.d.Wrap(err)
	}
	data, err := decodeData(raw)
	if err != nil {
		return nil, t.d.Wrap(err)
	}
	return &storage.Object{ID: id, LastModified: lm, Data: data}, nil
}

// scopeTimestamp returns a scope's timestamp, 0 when it has none. With
// lock (RowLocks dialects only), it first makes sure the scope has a
// timestamps row and locks it until the end of the transaction.
func (t *tx) scopeTimestamp(ctx context.Context, s storage.Scope, lock bool) (int64, error) {
	q := `SELECT last_modified FROM timestamps WHERE parent_id = ? AND resource_name = ?`
	if lock {
		q += ` FOR UPDATE`
	}
	var ts int64
	err := t.queryRow(ctx, q, s.Parent, s.Resource).Scan(&ts)
	if errors.Is(err, sql.ErrNoRows) {
		if !lock {
			return 0, nil
		}
		// The scope's first write: a row to lock, which a concurrent
		// first write may be inserting too.
		if err := t.exec(ctx, `INSERT INTO timestamps (parent_id, resource_name, last_modified) VALUES (?, ?, 0)
			ON CONFLICT DO NOTHING`, s.Parent, s.Resource); err != nil {
			return 0, err
		}
		err = t.queryRow(ctx, q, s.Parent, s.Resource).Scan(&ts)
	}
	return ts, t.d.Wrap(err)
}

// writeRow stores one row with the next timestamp of its scope (see
// storage.NextTimestamp) and keeps the scope's timestamp current: the one
// write beneath Create, Put and Delete.
func (t *tx) writeRow(ctx context.Context, s storage.Scope, o *storage.Object, supplied int64) (*storage.Object, error) {
	if !t.writable {
		return nil, errReadOnly
	}
	delete(t.memo.objects, objectKey{s, o.ID})
	prev, held := t.held[s]
	if !held {
		var err error
		if prev, err = t.scopeTimestamp(ctx, s, t.d.RowLocks); err != nil {
			return nil, err
		}
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
	out.LastModified = storage.NextTimestamp(prev, now(), supplied)
	// The scope's live count changes by (is the row live now?) - (was
	// it?); it is computed by the database before the row is replaced, so
	// that both statements wait together in a pipeline. A supplied
	// timestamp in the past must not move the scope's back.
	live := 0
	if !o.Deleted {
		live = 1
	}
	if err := t.exec(ctx, `INSERT INTO timestamps (parent_id, resource_name, last_modified, live)
		VALUES (?, ?, ?, ? - COALESCE((SELECT CASE WHEN deleted THEN 0 ELSE 1 END FROM objects
			WHERE parent_id = ? AND resource_name = ? AND id = ?), 0))
		ON CONFLICT (parent_id, resource_name) DO UPDATE SET
		last_modified = `+t.d.Greatest+`(timestamps.last_modified, excluded.last_modified),
		live = timestamps.live + excluded.live, writes = timestamps.writes + 1`,
		s.Parent, s.Resource, out.LastModified, live, s.Parent, s.Resource, o.ID); err != nil {
		return nil, err
	}
	if err := t.exec(ctx, `INSERT INTO objects (parent_id, resource_name, id, last_modified, deleted, data)
		VALUES (?, ?, ?, ?, ?, `+t.d.JSONParam+`)
		ON CONFLICT (parent_id, resource_name, id) DO UPDATE SET
		last_modified = excluded.last_modified, deleted = excluded.deleted, data = excluded.data`,
		s.Parent, s.Resource, o.ID, out.LastModified, o.Deleted, raw); err != nil {
		return nil, err
	}
	if t.held == nil {
		t.held = map[storage.Scope]int64{}
	}
	t.held[s] = max(prev, out.LastModified)
	t.changes = append(t.changes, storage.Change{Scope: s, ID: o.ID, Timestamp: out.LastModified, Deleted: o.Deleted})
	return out, nil
}

// Create implements storage.Tx: a live object with the same id is a
// conflict.
func (t *tx) Create(ctx context.Context, s storage.Scope, obj *storage.Object) (*storage.Object, error) {
	if !t.writable {
		return nil, errReadOnly
	}
	if _, err := t.Get(ctx, s, obj.ID); err == nil {
		return nil, kerr.E(kerr.Conflict, "object "+obj.ID+" already exists")
	} else if !kerr.Is(err, kerr.NotFound) {
		return nil, err
	}
	return t.writeRow(ctx, s, &storage.Object{ID: obj.ID, Data: obj.Data}, obj.LastModified)
}

// Put implements storage.Tx.
func (t *tx) Put(ctx context.Context, s storage.Scope, obj *storage.Object) (*storage.Object, error) {
	return t.writeRow(ctx, s, &storage.Object{ID: obj.ID, Data: obj.Data}, obj.LastModified)
}

// Delete implements storage.Tx: the tombstone keeps a supplied timestamp
// only when it is newer than the object's.
func (t *tx) Delete(ctx context.Context, s storage.Scope, id string, lastModified int64) (*storage.Object, error) {
	if !t.writable {
		return nil, errReadOnly
	}
	old, err := t.Get(ctx, s, id)
	if err != nil {
		return nil, err
	}
	return t.writeRow(ctx, s, &storage.Object{ID: id, Deleted: true}, storage.TombstoneTimestamp(old, lastModified))
}

// List implements storage.Tx: SQL selects exactly the page when it can
// evaluate the whole selection (compileList); otherwise it narrows the
// rows read and storage.Select applies the selection in Go.
func (t *tx) List(ctx context.Context, s storage.Scope, opts storage.ListOptions) ([]*storage.Object, error) {
	if opts.IDs != nil && len(opts.IDs) == 0 {
		return []*storage.Object{}, nil
	}
	if t.snaps != nil && !opts.IncludeDeleted && onData(opts) {
		// The database would read and compare every row of the scope;
		// its snapshot in memory answers faster.
		all, err := t.liveObjects(ctx, s)
		if err != nil {
			return nil, err
		}
		return storage.Select(ctx, all, opts)
	}
	p := t.d.compileList(s, opts, false)
	if p.exact {
		objs, err := t.listRows(ctx, p.sql(`id, last_modified, deleted, `+t.d.JSONColumn, true), p.args)
		if err != nil || !holdsComposite(objs, p.composites) {
			return objs, err
		}
		// SQL could not order those: the same rows, ordered in Go.
		p.exact = false
	}
	all, err := t.listRows(ctx, p.sql(`id, last_modified, deleted, `+t.d.JSONColumn, false)+" ORDER BY id"+t.d.CollateC, p.args)
	if err != nil {
		return nil, err
	}
	return storage.Select(ctx, all, opts)
}

// onData reports whether a selection filters or sorts on data fields,
// which no index serves: SQL would scan the scope.
func onData(opts storage.ListOptions) bool {
	for _, f := range opts.Filters {
		if f.Field != query.IDField && f.Field != query.ModifiedField {
			return true
		}
	}
	for _, so := range opts.Sort {
		if so.Field != query.IDField && so.Field != query.ModifiedField {
			return true
		}
	}
	return false
}

func (t *tx) listRows(ctx context.Context, q string, args []any) ([]*storage.Object, error) {
	rows, err := t.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	objs, err := scanObjects(rows)
	return objs, t.d.Wrap(err)
}

// holdsComposite reports whether an object has an array or an object at
// one of fields.
func holdsComposite(objs []*storage.Object, fields []string) bool {
	for _, f := range fields {
		for _, o := range objs {
			switch v, _ := o.Field(f); v.(type) {
			case []any, map[string]any:
				return true
			}
		}
	}
	return false
}

// Count implements storage.Tx: the scope's live count without filters,
// in SQL when it evaluates the filters exactly, else over the selection
// in Go.
func (t *tx) Count(ctx context.Context, s storage.Scope, filters []query.Filter, ids []string) (int, error) {
	if ids != nil && len(ids) == 0 {
		return 0, nil
	}
	if ids == nil && len(filters) == 0 {
		var n int
		err := t.queryRow(ctx, `SELECT live FROM timestamps WHERE parent_id = ? AND resource_name = ?`, s.Parent, s.Resource).Scan(&n)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, nil
		}
		return n, t.d.Wrap(err)
	}
	opts := storage.ListOptions{Filters: filters, IDs: ids}
	if p := t.d.compileList(s, opts, true); p.exact {
		var n int
		err := t.queryRow(ctx, p.sql("count(*)", false), p.args...).Scan(&n)
		return n, t.d.Wrap(err)
	}
	objs, err := t.List(ctx, s, opts)
	return len(objs), err
}

// PurgeTree implements storage.Tx.
func (t *tx) PurgeTree(ctx context.Context, parent string) error {
	if !t.writable {
		return errReadOnly
	}
	t.forget()
	for _, table := range []string{"objects", "timestamps"} {
		if err := t.exec(ctx, `DELETE FROM `+table+` WHERE parent_id = ? OR `+t.d.like("parent_id"),
			parent, likePrefix(parent+"/")); err != nil {
			return err
		}
	}
	return nil
}

// PurgeTombstones implements storage.Tx. The scopes it purged count a
// write, so that snapshots of them (which hold tombstones) are dropped.
func (t *tx) PurgeTombstones(ctx context.Context, resource string, before int64, keep int) (int, error) {
	if !t.writable {
		return 0, errReadOnly
	}
	t.forget()
	// The tombstones to purge, ranked newest first in their parent.
	doomed := `SELECT parent_id, resource_name, id FROM (
		SELECT parent_id, resource_name, id, last_modified,
			row_number() OVER (PARTITION BY parent_id ORDER BY last_modified DESC, id DESC) AS pos
		FROM objects WHERE resource_name = ? AND deleted) ranked
		WHERE pos > ? AND last_modified < ?`
	if before <= 0 {
		before = math.MaxInt64
	}
	args := []any{resource, keep, before}
	var n int
	if err := t.queryRow(ctx, `SELECT count(*) FROM (`+doomed+`) d`, args...).Scan(&n); err != nil {
		return 0, t.d.Wrap(err)
	}
	if n == 0 {
		return 0, nil
	}
	if err := t.exec(ctx, `UPDATE timestamps SET writes = writes + 1
		WHERE resource_name = ? AND parent_id IN (SELECT parent_id FROM (`+doomed+`) d)`, append([]any{resource}, args...)...); err != nil {
		return 0, err
	}
	if err := t.exec(ctx, `DELETE FROM objects WHERE (parent_id, resource_name, id) IN (`+doomed+`)`, args...); err != nil {
		return 0, err
	}
	t.changes = append(t.changes, storage.Change{Everything: true})
	return n, nil
}

// Timestamp implements storage.Tx.
func (t *tx) Timestamp(ctx context.Context, s storage.Scope) (int64, error) {
	return t.scopeTimestamp(ctx, s, false)
}

// InitTimestamp implements storage.Tx. A placeholder row left by a lock
// (timestamp 0) counts as none.
func (t *tx) InitTimestamp(ctx context.Context, s storage.Scope) (int64, error) {
	t.held = nil
	floor := now()
	if err := t.exec(ctx, `INSERT INTO timestamps (parent_id, resource_name, last_modified) VALUES (?, ?, ?)
		ON CONFLICT (parent_id, resource_name) DO UPDATE SET last_modified = excluded.last_modified
		WHERE timestamps.last_modified = 0`, s.Parent, s.Resource, floor); err != nil {
		return 0, err
	}
	ts, err := t.Timestamp(ctx, s)
	if err == nil && ts == floor {
		// This floor is new (or equal to an earlier one: a harmless
		// repetition).
		t.changes = append(t.changes, storage.Change{Scope: s, Timestamp: ts})
	}
	return ts, err
}

// Timestamps implements storage.Tx. Placeholder rows left by locks
// (timestamp 0) are scopes without a timestamp.
func (t *tx) Timestamps(ctx context.Context, resource string, prefixes []string) (map[string]int64, error) {
	out := map[string]int64{}
	if len(prefixes) == 0 {
		return out, nil
	}
	patterns := make([]string, len(prefixes))
	for i, p := range prefixes {
		patterns[i] = likePrefix(p)
	}
	cond, args := t.d.likeAny("parent_id", patterns)
	rows, err := t.query(ctx, `SELECT parent_id, last_modified FROM timestamps
		WHERE resource_name = ? AND last_modified > 0 AND `+cond, append([]any{resource}, args...)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	stamps, err := scanTimestamps(rows)
	return stamps, t.d.Wrap(err)
}

// Permissions implements storage.Tx.
func (t *tx) Permissions(ctx context.Context, uri string) (map[string][]string, error) {
	// In byte order whatever the database's collation, as the memory
	// backend and storeNewPermissions give them.
	rows, err := t.query(ctx, `SELECT permission, principal FROM access_control_entries
		WHERE object_id = ? ORDER BY permission`+t.d.CollateC+`, principal`+t.d.CollateC, uri)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	perms, err := scanGroups(rows, nil)
	return perms, t.d.Wrap(err)
}

// SetPermissions implements storage.Tx. Permissions are written in name
// order, so that concurrent writers of one ACL take its row locks in one
// order.
func (t *tx) SetPermissions(ctx context.Context, uri string, perms map[string][]string) error {
	if !t.writable {
		return errReadOnly
	}
	names := make([]string, 0, len(perms))
	for perm := range perms {
		names = append(names, perm)
	}
	sort.Strings(names)
	t.memo.aclChanged(uri)
	for _, perm := range names {
		if err := t.exec(ctx, `DELETE FROM access_control_entries WHERE object_id = ? AND permission = ?`, uri, perm); err != nil {
			return err
		}
		for _, p := range perms[perm] {
			if err := t.exec(ctx, `INSERT INTO access_control_entries (object_id, permission, principal) VALUES (?, ?, ?)
				ON CONFLICT DO NOTHING`, uri, perm, p); err != nil {
				return err
			}
		}
	}
	return nil
}

// DeletePermissions implements storage.Tx.
func (t *tx) DeletePermissions(ctx context.Context, uris ...string) error {
	if !t.writable {
		return errReadOnly
	}
	t.memo.hasAny = nil
	for _, pattern := range uris {
		var err error
		if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
			err = t.exec(ctx, `DELETE FROM access_control_entries WHERE `+t.d.like("object_id"), likePrefix(prefix))
		} else {
			err = t.exec(ctx, `DELETE FROM access_control_entries WHERE object_id = ?`, pattern)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// HasAny implements storage.Tx.
func (t *tx) HasAny(ctx context.Context, aces []storage.ACE, principals []string) (bool, error) {
	if len(aces) == 0 || len(principals) == 0 {
		return false, nil
	}
	var key string
	if t.writable {
		key = hasAnyKey(aces, principals)
		if e, ok := t.memo.hasAny[key]; ok {
			return e.found, nil
		}
	}
	var q string
	var args []any
	if t.d.Arrays {
		uris := make([]string, len(aces))
		perms := make([]string, len(aces))
		for i, a := range aces {
			uris[i], perms[i] = a.URI, a.Permission
		}
		q = `SELECT EXISTS (SELECT 1 FROM access_control_entries e
			JOIN unnest(?::text[], ?::text[]) AS a(uri, perm) ON e.object_id = a.uri AND e.permission = a.perm
			WHERE e.principal = ANY(?))`
		args = []any{uris, perms, principals}
	} else {
		cond := make([]string, len(aces))
		for i, a := range aces {
			cond[i] = "(object_id = ? AND permission = ?)"
			args = append(args, a.URI, a.Permission)
		}
		in, inArgs := t.d.in("principal", principals)
		q = `SELECT EXISTS (SELECT 1 FROM access_control_entries WHERE (` + strings.Join(cond, " OR ") + `) AND ` + in + `)`
		args = append(args, inArgs...)
	}
	var found bool
	if err := t.queryRow(ctx, q, args...).Scan(&found); err != nil {
		return false, t.d.Wrap(err)
	}
	if t.writable {
		t.memo.rememberHasAny(key, aces, found)
	}
	return found, nil
}

// Accessible implements storage.Tx.
func (t *tx) Accessible(ctx context.Context, prefix string, extra int, perms, principals []string) (map[string][]string, error) {
	out := map[string][]string{}
	if len(perms) == 0 || len(principals) == 0 {
		return out, nil
	}
	permIn, permArgs := t.d.in("permission", perms)
	principalIn, principalArgs := t.d.in("principal", principals)
	args := append(append([]any{likePrefix(prefix)}, permArgs...), principalArgs...)
	rows, err := t.query(ctx, `SELECT DISTINCT object_id, permission FROM access_control_entries
		WHERE `+t.d.like("object_id")+` AND `+permIn+` AND `+principalIn, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	found, err := scanGroups(rows, func(uri string) bool { return storage.SegmentsAfter(uri, prefix) == extra })
	return found, t.d.Wrap(err)
}

// UserPrincipals implements storage.Tx.
func (t *tx) UserPrincipals(ctx context.Context, userID string, authenticated bool) ([]string, error) {
	if !t.writable {
		return t.userPrincipals(ctx, userID, authenticated)
	}
	key := principalsKey(userID, authenticated)
	if p, ok := t.memo.principals[key]; ok {
		return slices.Clone(p), nil
	}
	p, err := t.userPrincipals(ctx, userID, authenticated)
	if err == nil {
		t.memo.rememberPrincipals(key, p)
	}
	return p, err
}

func (t *tx) userPrincipals(ctx context.Context, userID string, authenticated bool) ([]string, error) {
	users := []string{userID}
	if authenticated {
		users = append(users, "system.Authenticated")
	}
	in, args := t.d.in("user_id", users)
	rows, err := t.query(ctx, `SELECT DISTINCT principal FROM user_principals WHERE `+in+` ORDER BY principal`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	principals, err := scanStrings(rows)
	return principals, t.d.Wrap(err)
}

// AddUserPrincipal implements storage.Tx.
func (t *tx) AddUserPrincipal(ctx context.Context, userID, principal string) error {
	t.memo.principals = nil
	return t.exec(ctx, `INSERT INTO user_principals (user_id, principal) VALUES (?, ?) ON CONFLICT DO NOTHING`, userID, principal)
}

// RemoveUserPrincipal implements storage.Tx.
func (t *tx) RemoveUserPrincipal(ctx context.Context, userID, principal string) error {
	t.memo.principals = nil
	return t.exec(ctx, `DELETE FROM user_principals WHERE user_id = ? AND principal = ?`, userID, principal)
}

// RemovePrincipal implements storage.Tx.
func (t *tx) RemovePrincipal(ctx context.Context, principal string) error {
	t.memo.principals, t.memo.hasAny = nil, nil
	if err := t.exec(ctx, `DELETE FROM user_principals WHERE principal = ?`, principal); err != nil {
		return err
	}
	return t.exec(ctx, `DELETE FROM access_control_entries WHERE principal = ?`, principal)
}

// LockScope implements storage.Tx: with RowLocks, the lock of the scope's
// timestamps row, the one its writes take; otherwise nothing, since the
// database serializes writers already.
func (t *tx) LockScope(ctx context.Context, s storage.Scope) error {
	if !t.d.RowLocks {
		return nil
	}
	if !t.writable {
		return errReadOnly
	}
	if _, err := t.scopeTimestamp(ctx, s, true); err != nil {
		return err
	}
	// What this transaction read of the scope before the lock may have
	// changed while it waited: it is read again.
	for k := range t.memo.objects {
		if k.scope == s {
			delete(t.memo.objects, k)
		}
	}
	return nil
}

// tables are every table of the contract's data, emptied by Flush.
var tables = []string{"objects", "timestamps", "access_control_entries", "user_principals"}

// Flush implements storage.Tx.
func (t *tx) Flush(ctx context.Context) error {
	t.forget()
	t.changes = append(t.changes, storage.Change{Everything: true})
	if t.d.Truncate {
		return t.exec(ctx, `TRUNCATE `+strings.Join(tables, ", "))
	}
	for _, table := range tables {
		if err := t.exec(ctx, `DELETE FROM `+table); err != nil {
			return err
		}
	}
	return nil
}
