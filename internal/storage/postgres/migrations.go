package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
)

// migrations is the append-only list of schema steps: migrations[i] brings a
// database from version i to i+1, in one transaction. Never edit a released
// step; add one.
var migrations = []string{
	// 1: Kinto's storage and permission model. Timestamps are integer
	// milliseconds; a scope's row in timestamps is its resource timestamp
	// and the lock that orders its writers.
	`CREATE TABLE IF NOT EXISTS metadata (name TEXT PRIMARY KEY, value TEXT NOT NULL);
	CREATE TABLE objects (
		parent_id TEXT COLLATE "C" NOT NULL,
		resource_name TEXT COLLATE "C" NOT NULL,
		id TEXT COLLATE "C" NOT NULL,
		last_modified BIGINT NOT NULL,
		deleted BOOLEAN NOT NULL DEFAULT FALSE,
		data JSONB NOT NULL DEFAULT '{}',
		PRIMARY KEY (parent_id, resource_name, id)
	);
	CREATE INDEX idx_objects_last_modified ON objects (parent_id, resource_name, last_modified);
	CREATE TABLE timestamps (
		parent_id TEXT COLLATE "C" NOT NULL,
		resource_name TEXT COLLATE "C" NOT NULL,
		last_modified BIGINT NOT NULL,
		PRIMARY KEY (parent_id, resource_name)
	);
	CREATE INDEX idx_timestamps_resource ON timestamps (resource_name, parent_id text_pattern_ops);
	CREATE TABLE access_control_entries (
		object_id TEXT COLLATE "C" NOT NULL,
		permission TEXT NOT NULL,
		principal TEXT NOT NULL,
		PRIMARY KEY (object_id, permission, principal)
	);
	CREATE INDEX idx_ace_principal ON access_control_entries (principal);
	CREATE TABLE user_principals (
		user_id TEXT COLLATE "C" NOT NULL,
		principal TEXT NOT NULL,
		PRIMARY KEY (user_id, principal)
	);
	CREATE INDEX idx_user_principals_principal ON user_principals (principal);`,
}

// LatestVersion is the schema version this binary writes.
var LatestVersion = len(migrations)

func (s *Store) schemaVersion(ctx context.Context) (int, error) {
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT to_regclass('metadata') IS NOT NULL`).Scan(&exists); err != nil || !exists {
		return 0, err
	}
	var v string
	err := s.pool.QueryRow(ctx, `SELECT value FROM metadata WHERE name = 'kintogo_schema_version'`).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(v)
}

// migrate applies the steps after version, each in its own transaction,
// under an advisory lock so that nodes starting together migrate once.
func (s *Store) migrate(ctx context.Context, version int) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(727274)`); err != nil {
		return err
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock(727274)`)
	if version, err = s.schemaVersion(ctx); err != nil {
		return err
	}
	for i := version; i < len(migrations); i++ {
		tx, err := conn.Begin(ctx)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, migrations[i]); err != nil {
			tx.Rollback(ctx)
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO metadata (name, value) VALUES ('kintogo_schema_version', $1)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value`, strconv.Itoa(i+1)); err != nil {
			tx.Rollback(ctx)
			return err
		}
		if err := tx.Commit(ctx); err != nil {
			return err
		}
	}
	return nil
}
