// Package storetest opens the storage backends for tests: memory, SQLite
// in a temporary directory, PostgreSQL when KINTOGO_TEST_POSTGRES names a
// test database (CI sets it; the tests that need it are skipped
// otherwise), and "retried" variants whose read-write transactions all run
// twice, the first run rolled back with a retryable error, as after a
// deadlock: code over them must return its results from the transaction
// function and change nothing outside it.
package storetest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"kintogo/internal/storage"
	"kintogo/internal/storage/memory"
	"kintogo/internal/storage/postgres"
	"kintogo/internal/storage/sqlite"
)

// Open is a constructor of a fresh, empty store, closed when the test ends.
type Open func(t testing.TB) storage.Storage

// Memory opens a memory store.
func Memory(t testing.TB) storage.Storage { return memory.New() }

// SQLite opens a SQLite store in a temporary directory.
func SQLite(t testing.TB) storage.Storage {
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "kintogo.db"), sqlite.Options{SnapshotBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// PostgreSQL opens the test database of KINTOGO_TEST_POSTGRES, emptied; nil
// when the variable is not set.
func PostgreSQL() Open {
	dsn := os.Getenv("KINTOGO_TEST_POSTGRES")
	if dsn == "" {
		return nil
	}
	return func(t testing.TB) storage.Storage {
		ctx := context.Background()
		s, err := postgres.Open(ctx, dsn, postgres.Options{Migrate: true, SnapshotBytes: 64 << 20})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Update(ctx, func(tx storage.Tx) error { return tx.Flush(ctx) }); err != nil {
			t.Fatal(err)
		}
		// The change log starts empty too (the flush's own commit
		// included): what a test reads of it is its own.
		if _, err := s.Pool().Exec(ctx, `TRUNCATE changelog, changelog_ticks`); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
}

// Backends are memory, memory-retried, sqlite and, when configured,
// postgresql.
func Backends() map[string]Open {
	all := map[string]Open{
		"memory":         Memory,
		"memory-retried": func(t testing.TB) storage.Storage { return Retried(Memory(t), nil) },
		"sqlite":         SQLite,
	}
	if pg := PostgreSQL(); pg != nil {
		all["postgresql"] = pg
	}
	return all
}

// errInjected is the retryable error of the first run of a retried
// transaction.
var errInjected = storage.Retryable(errors.New("injected conflict"))

// retried runs every read-write transaction twice.
type retried struct {
	storage.Storage
	runs *atomic.Int64
}

// Retried wraps s so that every Update runs its function twice, the first
// run rolled back with a retryable error; runs, when not nil, counts the
// runs.
func Retried(s storage.Storage, runs *atomic.Int64) storage.Storage {
	if runs == nil {
		runs = &atomic.Int64{}
	}
	return retried{s, runs}
}

func (r retried) Update(ctx context.Context, fn func(storage.Tx) error) error {
	err := r.Storage.Update(ctx, func(tx storage.Tx) error {
		r.runs.Add(1)
		if err := fn(tx); err != nil {
			return err
		}
		return errInjected
	})
	if err != errInjected {
		return err
	}
	return r.Storage.Update(ctx, func(tx storage.Tx) error {
		r.runs.Add(1)
		return fn(tx)
	})
}

// Unwrap implements storage.Unwrapper.
func (r retried) Unwrap() storage.Storage { return r.Storage }
