package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"kintogo/internal/storage"
)

// A database written before the live counts existed gets them right when
// migrated: tombstones are not counted, every scope has its own.
func TestMigrationCountsExistingObjects(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	all := schema.Migrations
	schema.Migrations = all[:1]
	s, err := Open(ctx, path, Options{})
	schema.Migrations = all
	if err != nil {
		t.Fatal(err)
	}
	a := storage.Scope{Parent: "/buckets/b/collections/a", Resource: "record"}
	b := storage.Scope{Parent: "/buckets/b/collections/b", Resource: "record"}
	// Version 1 has no live column: write its rows as it did.
	for _, row := range []struct {
		s       storage.Scope
		id      string
		deleted bool
	}{{a, "1", false}, {a, "2", false}, {a, "3", true}, {b, "1", true}} {
		if _, err := s.writer.ExecContext(ctx, `INSERT INTO objects (parent_id, resource_name, id, last_modified, deleted) VALUES (?, ?, ?, 1, ?)`,
			row.s.Parent, row.s.Resource, row.id, row.deleted); err != nil {
			t.Fatal(err)
		}
		if _, err := s.writer.ExecContext(ctx, `INSERT OR REPLACE INTO timestamps (parent_id, resource_name, last_modified) VALUES (?, ?, 1)`,
			row.s.Parent, row.s.Resource); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(ctx, path, Options{}); err == nil {
		s.Close()
		t.Fatal("an outdated database was opened without migrating")
	}
	if s, err = Open(ctx, path, Options{Migrate: true}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.View(ctx, func(tx storage.Tx) error {
		for scope, want := range map[storage.Scope]int{a: 2, b: 0} {
			if n, err := tx.Count(ctx, scope, nil, nil); err != nil || n != want {
				t.Errorf("%v: %d, %v; want %d", scope, n, err, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
