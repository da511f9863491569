package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
)

// ErrOutdated is returned when the database schema is older than this
// binary's and migrating was not asked for: run `kintogo migrate`.
var ErrOutdated = errors.New("database schema is outdated: run `kintogo migrate`")

// Migration is one step of a schema's history.
type Migration struct {
	// Name says what the step does; errors name the step by it.
	Name string
	// Up applies the step inside tx, the step's own transaction, with the
	// backend's native SQL. It neither commits nor rolls back.
	Up func(ctx context.Context, tx Querier) error
}

// Schema is a backend's schema: an append-only list of migrations, where
// Migrations[i] brings a database from version i to i+1, and the version
// a database has reached, kept in its metadata table (name, value) under
// VersionKey. The first migration creates that table. A version number
// means one schema for ever: never edit or reorder a released step, add
// one.
type Schema struct {
	// Dialect writes the runner's own statements (reading and recording
	// the version).
	Dialect *Dialect
	// VersionKey is the name of the version's metadata row; it never
	// changes for a backend, or its existing databases would look empty.
	VersionKey string
	// Migrations are the steps, oldest first.
	Migrations []Migration
}

// Latest is the version this binary writes.
func (sc *Schema) Latest() int { return len(sc.Migrations) }

// Version returns the version of the database's schema: 0 when it has
// none (no metadata table, or no version in it).
func (sc *Schema) Version(ctx context.Context, q Querier) (int, error) {
	var exists bool
	if err := q.QueryRow(ctx, sc.Dialect.rebind(sc.Dialect.TableExists), "metadata").Scan(&exists); err != nil || !exists {
		return 0, err
	}
	var v string
	err := q.QueryRow(ctx, sc.Dialect.rebind(`SELECT value FROM metadata WHERE name = ?`), sc.VersionKey).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(v)
}

// UpgradeOptions say what Upgrade may do.
type UpgradeOptions struct {
	// Migrate applies pending migrations; without it an outdated schema
	// is refused with ErrOutdated.
	Migrate bool
	// InitEmpty initialises a database that has no schema at all even
	// without Migrate (a new SQLite file); otherwise such a database is
	// outdated too (a PostgreSQL database, created and upgraded by an
	// operator).
	InitEmpty bool
	// Exclusive, when set, runs fn holding a lock that keeps other
	// processes from migrating the same database at the same time, with
	// the DB fn must use (the connection holding the lock). The version
	// is read again under the lock: another process may have migrated
	// meanwhile.
	Exclusive func(ctx context.Context, fn func(DB) error) error
}

// Upgrade brings the database to the Latest version, or says why not. A
// schema newer than Latest is always refused: this binary does not know
// it. Each pending migration runs in its own transaction, which also
// records the version it reaches, so that a failed step leaves the
// database at the previous version.
func (sc *Schema) Upgrade(ctx context.Context, db DB, opts UpgradeOptions) error {
	version, err := sc.Version(ctx, db)
	if err != nil {
		return err
	}
	switch {
	case version > sc.Latest():
		return fmt.Errorf("database schema version %d is newer than this kintogo (%d)", version, sc.Latest())
	case version == sc.Latest():
		return nil
	case !opts.Migrate && !(version == 0 && opts.InitEmpty):
		return ErrOutdated
	}
	if opts.Exclusive == nil {
		return sc.apply(ctx, db)
	}
	return opts.Exclusive(ctx, func(db DB) error { return sc.apply(ctx, db) })
}

// apply runs the migrations after the database's version.
func (sc *Schema) apply(ctx context.Context, db DB) error {
	version, err := sc.Version(ctx, db)
	if err != nil {
		return err
	}
	for i := version; i < sc.Latest(); i++ {
		if err := sc.step(ctx, db, i); err != nil {
			return fmt.Errorf("migration %d (%s): %w", i+1, sc.Migrations[i].Name, err)
		}
	}
	return nil
}

// step runs Migrations[i] and records version i+1, in one transaction.
// The version is read again inside it: SQLite's transactions begin
// holding the write lock, so that a process that opened the same new file
// at the same moment (`kintogo start &` then `kintogo create-user`) and
// migrated first is seen here, and its steps are not run twice.
func (sc *Schema) step(ctx context.Context, db DB, i int) error {
	txn, err := db.Begin(ctx)
	if err != nil {
		return err
	}
	if version, err := sc.Version(ctx, txn); err != nil || version > i {
		txn.Rollback(context.Background())
		return err
	}
	if err := sc.Migrations[i].Up(ctx, txn); err != nil {
		txn.Rollback(context.Background())
		return err
	}
	if err := txn.Exec(ctx, sc.Dialect.rebind(`INSERT INTO metadata (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`), sc.VersionKey, strconv.Itoa(i+1)); err != nil {
		txn.Rollback(context.Background())
		return err
	}
	return txn.Commit(ctx)
}

// Migrations whose SQL every dialect shares.
var (
	// OrderAndCount makes lists in timestamp order cost O(page) in both
	// directions, ties included (storage.Order breaks them by id), and an
	// unfiltered count read one row: timestamps.live is the number of
	// live objects of the scope, kept by every write.
	OrderAndCount = Migration{Name: "lists and counts that do not grow with the collection", Up: func(ctx context.Context, tx Querier) error {
		return Exec(ctx, tx,
			`DROP INDEX idx_objects_last_modified`,
			`CREATE INDEX idx_objects_order ON objects (parent_id, resource_name, last_modified, id)`,
			`ALTER TABLE timestamps ADD COLUMN live BIGINT NOT NULL DEFAULT 0`,
			`UPDATE timestamps SET live = (SELECT count(*) FROM objects o
				WHERE o.parent_id = timestamps.parent_id AND o.resource_name = timestamps.resource_name AND NOT o.deleted)`,
		)
	}}
	// ScopeVersion adds timestamps.writes, the count of writes into the
	// scope: with its timestamp and live count, the version under which a
	// snapshot of its objects is kept (Snapshots).
	ScopeVersion = Migration{Name: "a version of every scope", Up: func(ctx context.Context, tx Querier) error {
		return Exec(ctx, tx, `ALTER TABLE timestamps ADD COLUMN writes BIGINT NOT NULL DEFAULT 0`)
	}}
)

// Plan is what an upgrade would do to a database: from its Version to
// Latest, through the Pending migrations' names (kintogo migrate
// --dry-run).
type Plan struct {
	Version, Latest int
	Pending         []string
}

// Plan reads the database's version and lists the migrations an upgrade
// would apply, without changing anything.
func (sc *Schema) Plan(ctx context.Context, q Querier) (Plan, error) {
	version, err := sc.Version(ctx, q)
	if err != nil {
		return Plan{}, err
	}
	return sc.PlanFrom(version), nil
}

// PlanFrom is the Plan of a database at version (0: a new one).
func (sc *Schema) PlanFrom(version int) Plan {
	p := Plan{Version: version, Latest: sc.Latest()}
	for i := version; i < sc.Latest(); i++ {
		p.Pending = append(p.Pending, sc.Migrations[i].Name)
	}
	return p
}
