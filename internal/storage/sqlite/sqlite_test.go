package sqlite_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"kintogo/internal/storage"
	"kintogo/internal/storage/sqlite"
	"kintogo/internal/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Storage {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "test.db"), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
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
	s.Close()
	s, err = sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the database is not at its path: %v", err)
	}
	s.View(ctx, func(tx storage.Tx) error {
		got, err := tx.Get(ctx, scope, "c")
		if err != nil || got.LastModified != written.LastModified || got.Data["title"] != "x" {
			t.Errorf("after reopen: %v, %v", got, err)
		}
		return nil
	})
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
	s.Close()
	s, err = sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	s.Close()
}
