package postgres

import (
	"context"

	"kintogo/internal/storage/sqlstore"
)

// schema is the PostgreSQL schema's history. Existing databases keep
// their version under kintogo_schema_version.
var schema = &sqlstore.Schema{
	Dialect:    dialect,
	VersionKey: "kintogo_schema_version",
	Migrations: []sqlstore.Migration{
		// Timestamps are integer milliseconds; a scope's row in timestamps
		// is its resource timestamp and the lock that orders its writers.
		{Name: "Kinto's storage and permission model", Up: func(ctx context.Context, tx sqlstore.Querier) error {
			return sqlstore.Exec(ctx, tx,
				`CREATE TABLE IF NOT EXISTS metadata (name TEXT PRIMARY KEY, value TEXT NOT NULL)`,
				`CREATE TABLE objects (
					parent_id TEXT COLLATE "C" NOT NULL,
					resource_name TEXT COLLATE "C" NOT NULL,
					id TEXT COLLATE "C" NOT NULL,
					last_modified BIGINT NOT NULL,
					deleted BOOLEAN NOT NULL DEFAULT FALSE,
					data JSONB NOT NULL DEFAULT '{}',
					PRIMARY KEY (parent_id, resource_name, id)
				)`,
				`CREATE INDEX idx_objects_last_modified ON objects (parent_id, resource_name, last_modified)`,
				`CREATE TABLE timestamps (
					parent_id TEXT COLLATE "C" NOT NULL,
					resource_name TEXT COLLATE "C" NOT NULL,
					last_modified BIGINT NOT NULL,
					PRIMARY KEY (parent_id, resource_name)
				)`,
				`CREATE INDEX idx_timestamps_resource ON timestamps (resource_name, parent_id text_pattern_ops)`,
				`CREATE TABLE access_control_entries (
					object_id TEXT COLLATE "C" NOT NULL,
					permission TEXT NOT NULL,
					principal TEXT NOT NULL,
					PRIMARY KEY (object_id, permission, principal)
				)`,
				`CREATE INDEX idx_ace_principal ON access_control_entries (principal)`,
				`CREATE TABLE user_principals (
					user_id TEXT COLLATE "C" NOT NULL,
					principal TEXT NOT NULL,
					PRIMARY KEY (user_id, principal)
				)`,
				`CREATE INDEX idx_user_principals_principal ON user_principals (principal)`,
			)
		}},
		// Steps 2 and on are the same SQL on every dialect.
		sqlstore.OrderAndCount,
		sqlstore.ScopeVersion,
		// The change log (log.go): a row per committed transaction that
		// changed something, with its transaction id, and the ticks
		// that order them.
		{Name: "the change log", Up: func(ctx context.Context, tx sqlstore.Querier) error {
			return sqlstore.Exec(ctx, tx,
				`CREATE TABLE changelog (
					txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
					writer TEXT NOT NULL,
					at BIGINT NOT NULL,
					changes TEXT NOT NULL
				)`,
				`CREATE INDEX idx_changelog_txid ON changelog (txid)`,
				`CREATE TABLE changelog_ticks (
					id BIGINT PRIMARY KEY,
					snapshot pg_snapshot NOT NULL,
					at BIGINT NOT NULL
				)`,
			)
		}},
		// Append new steps here; never edit the ones above.
	},
}

// LatestVersion is the schema version this binary writes.
var LatestVersion = schema.Latest()

// migrationLock is the advisory lock key under which nodes migrate.
const migrationLock = 727274

// exclusive runs fn on one connection holding the migration advisory
// lock, so that nodes starting together migrate once.
func (s *Store) exclusive(ctx context.Context, fn func(sqlstore.DB) error) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return err
	}
	// Unlocked even when ctx has ended, or the pooled connection would
	// keep the lock.
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, migrationLock)
	return fn(db{querier{conn}, conn})
}
