package sqlite

import (
	"context"

	"kintogo/internal/storage/sqlstore"
)

// schema is the SQLite schema's history. Existing databases keep their
// version under storage_schema_version.
var schema = &sqlstore.Schema{
	Dialect:    dialect,
	VersionKey: "storage_schema_version",
	Migrations: []sqlstore.Migration{
		{Name: "Kinto's storage and permission model", Up: func(ctx context.Context, tx sqlstore.Querier) error {
			return sqlstore.Exec(ctx, tx,
				`CREATE TABLE metadata (name TEXT PRIMARY KEY, value TEXT NOT NULL)`,
				`CREATE TABLE objects (
					parent_id TEXT NOT NULL,
					resource_name TEXT NOT NULL,
					id TEXT NOT NULL,
					last_modified INTEGER NOT NULL,
					deleted BOOLEAN NOT NULL DEFAULT 0,
					data TEXT NOT NULL DEFAULT '{}',
					PRIMARY KEY (parent_id, resource_name, id)
				) WITHOUT ROWID`,
				`CREATE INDEX idx_objects_last_modified ON objects (parent_id, resource_name, last_modified)`,
				`CREATE TABLE timestamps (
					parent_id TEXT NOT NULL,
					resource_name TEXT NOT NULL,
					last_modified INTEGER NOT NULL,
					PRIMARY KEY (parent_id, resource_name)
				) WITHOUT ROWID`,
				`CREATE TABLE access_control_entries (
					object_id TEXT NOT NULL,
					permission TEXT NOT NULL,
					principal TEXT NOT NULL,
					PRIMARY KEY (object_id, permission, principal)
				) WITHOUT ROWID`,
				`CREATE INDEX idx_ace_principal ON access_control_entries (principal)`,
				`CREATE TABLE user_principals (
					user_id TEXT NOT NULL,
					principal TEXT NOT NULL,
					PRIMARY KEY (user_id, principal)
				) WITHOUT ROWID`,
				`CREATE INDEX idx_user_principals_principal ON user_principals (principal)`,
			)
		}},
		// Steps 2 and on are the same SQL on every dialect.
		sqlstore.OrderAndCount,
		sqlstore.ScopeVersion,
		// The change log (log.go): one row per committed transaction
		// that changed something; AUTOINCREMENT never reuses the id of
		// a pruned row, so ids are positions in commit order (SQLite
		// has one writer).
		{Name: "the change log", Up: func(ctx context.Context, tx sqlstore.Querier) error {
			return sqlstore.Exec(ctx, tx, `CREATE TABLE changelog (
				id INTEGER PRIMARY KEY AUTOINCREMENT,
				writer TEXT NOT NULL,
				at INTEGER NOT NULL,
				changes TEXT NOT NULL
			)`)
		}},
		// Append new steps here; never edit the ones above.
	},
}

// LatestVersion is the schema version this binary writes.
var LatestVersion = schema.Latest()
