package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// migrations is the append-only list of schema steps: migrations[i] brings a
// database from version i to i+1. Never edit a released step; add one.
var migrations = []string{
	// 1: Kinto's storage and permission model.
	`CREATE TABLE metadata (name TEXT PRIMARY KEY, value TEXT NOT NULL);
	CREATE TABLE objects (
		parent_id TEXT NOT NULL,
		resource_name TEXT NOT NULL,
		id TEXT NOT NULL,
		last_modified INTEGER NOT NULL,
		deleted BOOLEAN NOT NULL DEFAULT 0,
		data TEXT NOT NULL DEFAULT '{}',
		PRIMARY KEY (parent_id, resource_name, id)
	) WITHOUT ROWID;
	CREATE INDEX idx_objects_last_modified ON objects (parent_id, resource_name, last_modified);
	CREATE TABLE timestamps (
		parent_id TEXT NOT NULL,
		resource_name TEXT NOT NULL,
		last_modified INTEGER NOT NULL,
		PRIMARY KEY (parent_id, resource_name)
	) WITHOUT ROWID;
	CREATE TABLE access_control_entries (
		object_id TEXT NOT NULL,
		permission TEXT NOT NULL,
		principal TEXT NOT NULL,
		PRIMARY KEY (object_id, permission, principal)
	) WITHOUT ROWID;
	CREATE INDEX idx_ace_principal ON access_control_entries (principal);
	CREATE TABLE user_principals (
		user_id TEXT NOT NULL,
		principal TEXT NOT NULL,
		PRIMARY KEY (user_id, principal)
	) WITHOUT ROWID;
	CREATE INDEX idx_user_principals_principal ON user_principals (principal);`,
}

// LatestVersion is the schema version this binary writes.
var LatestVersion = len(migrations)

func (s *Store) schemaVersion(ctx context.Context) (int, error) {
	var n int
	err := s.writer.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'metadata'`).Scan(&n)
	if err != nil || n == 0 {
		return 0, err
	}
	var v string
	err = s.writer.QueryRowContext(ctx, `SELECT value FROM metadata WHERE name = 'storage_schema_version'`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(v)
}

// migrate applies the steps after version, each in its own transaction.
func (s *Store) migrate(ctx context.Context, version int) error {
	for i := version; i < len(migrations); i++ {
		tx, err := s.writer.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		for _, stmt := range strings.Split(migrations[i], ";") {
			if strings.TrimSpace(stmt) == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				tx.Rollback()
				return fmt.Errorf("migration %d: %w", i+1, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO metadata (name, value) VALUES ('storage_schema_version', ?)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value`, strconv.Itoa(i+1)); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}
