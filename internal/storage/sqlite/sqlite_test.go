package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"kintogo/internal/storage"
	"kintogo/internal/storage/sqlite"
	"kintogo/internal/storage/storagetest"
)

// The contract, with lists on data fields evaluated by SQLite, and from
// snapshots in memory.
func TestConformance(t *testing.T) {
	t.Run("sql", func(t *testing.T) { conformance(t, 0) })
	t.Run("snapshots", func(t *testing.T) { conformance(t, 64<<20) })
}

func conformance(t *testing.T, snapshots int64) {
	storagetest.Run(t, func(t *testing.T) storage.Storage {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "test.db"), sqlite.Options{SnapshotBytes: snapshots})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
		return s
	})
}

// Data written and acknowledged survives closing and reopening the file,
// whatever characters its path holds.
func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "odd #1 ?x=%41.db")
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	scope := storage.Scope{Parent: "/buckets/b", Resource: "collection"}
	var written *storage.Object
	if err := s.Update(ctx, func(tx storage.Tx) (err error) {
		written, err = tx.Put(ctx, scope, &storage.Object{ID: "c", Data: map[string]any{"title": "x"}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the database is not at its path: %v", err)
	}
	if err := s.View(ctx, func(tx storage.Tx) error {
		got, err := tx.Get(ctx, scope, "c")
		if err != nil {
			return err
		}
		if got.LastModified != written.LastModified || got.Data["title"] != "x" {
			t.Errorf("after reopen: %v", got)
		}
		return nil
	}); err != nil {
		t.Fatalf("after reopen: %v", err)
	}
}

// One process per database file: a second Open fails until the first
// store is closed.
func TestOneStorePerFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "test.db")
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sqlite.Open(ctx, path, sqlite.Options{}); !errors.Is(err, sqlite.ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// A server and a command beside it (`kintogo start &` then `kintogo
// create-user`) opening the same new file at once: whichever migrates
// first, the other finds the schema made and both open it.
func TestConcurrentOpensOfANewFile(t *testing.T) {
	ctx := context.Background()
	for round := 0; round < 10; round++ {
		path := filepath.Join(t.TempDir(), "new.db")
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, 2)
		stores := make(chan *sqlite.Store, 2)
		for _, opts := range []sqlite.Options{{}, {Beside: true}} {
			go func() {
				s, err := sqlite.Open(ctx, path, opts)
				if err == nil {
					stores <- s
				}
				errs <- err
			}()
			// The server holds the lock file before the command starts.
			for i := 0; i < 1000; i++ {
				if b, _ := os.ReadFile(path + ".lock"); len(b) > 0 {
					break
				}
				time.Sleep(time.Millisecond)
			}
		}
		for i := 0; i < 2; i++ {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		close(stores)
		for s := range stores {
			s.Close()
		}
	}
}

// The schema version is read from where existing databases keep it
// (metadata, storage_schema_version): a database claiming a version this
// binary does not know is refused, migrating or not.
func TestNewerSchemaRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "test.db")
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	var v string
	if err := db.QueryRowContext(ctx, `SELECT value FROM metadata WHERE name = 'storage_schema_version'`).Scan(&v); err != nil {
		t.Fatalf("version row: %v", err)
	}
	if want := strconv.Itoa(sqlite.LatestVersion); v != want {
		t.Fatalf("version %s, want %s", v, want)
	}
	if _, err := db.ExecContext(ctx, `UPDATE metadata SET value = '99' WHERE name = 'storage_schema_version'`); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for _, migrate := range []bool{false, true} {
		s, err := sqlite.Open(ctx, path, sqlite.Options{Migrate: migrate})
		if err == nil {
			s.Close()
			t.Fatalf("migrate=%v: a newer schema was accepted", migrate)
		}
		if !strings.Contains(err.Error(), "newer") {
			t.Errorf("migrate=%v: %v, want a newer-schema error", migrate, err)
		}
	}
}
