package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"kintogo/internal/kerr"
	"kintogo/internal/storage"
	"kintogo/internal/storage/postgres"
	"kintogo/internal/storage/storagetest"
)

// dsn is the test database; tests skip without it (CI sets it).
func dsn(t *testing.T) string {
	d := os.Getenv("KINTOGO_TEST_POSTGRES")
	if d == "" {
		t.Skip("KINTOGO_TEST_POSTGRES is not set: no PostgreSQL to test against")
	}
	return d
}

// Open returns a store on an emptied test database.
func Open(t *testing.T) storage.Storage { return open(t, 64<<20) }

// open returns a store on an emptied test database, with snapshots of
// that many bytes.
func open(t *testing.T, snapshots int64) storage.Storage {
	ctx := context.Background()
	s, err := postgres.Open(ctx, dsn(t), postgres.Options{Migrate: true, SnapshotBytes: snapshots})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(tx storage.Tx) error { return tx.Flush(ctx) }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

// The contract, with lists on data fields evaluated by PostgreSQL, and
// from snapshots in memory.
func TestConformance(t *testing.T) {
	t.Run("sql", func(t *testing.T) { storagetest.Run(t, func(t *testing.T) storage.Storage { return open(t, 0) }) })
	t.Run("snapshots", func(t *testing.T) { storagetest.Run(t, Open) })
}

// A database without kintogo's schema is refused until migrated.
func TestOutdatedSchemaRefused(t *testing.T) {
	ctx := context.Background()
	admin, err := postgres.Open(ctx, dsn(t), postgres.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	name := "kintogo_fresh_" + strings.ReplaceAll(strconv.FormatInt(time.Now().UnixNano(), 36), "-", "")
	if _, err := admin.Pool().Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Skipf("cannot create a database: %v", err)
	}
	defer func() {
		if _, err := admin.Pool().Exec(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	}()
	fresh := dsn(t)[:strings.LastIndex(dsn(t), "/")+1] + name
	if _, err := postgres.Open(ctx, fresh, postgres.Options{}); !errors.Is(err, postgres.ErrOutdated) {
		t.Fatalf("open without migrate: %v, want ErrOutdated", err)
	}
	s, err := postgres.Open(ctx, fresh, postgres.Options{Migrate: true})
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = postgres.Open(ctx, fresh, postgres.Options{}); err != nil {
		t.Fatalf("open after migrate: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// The pool holds Kinto's storage_pool_size + storage_max_overflow
// connections (Options.MaxConns), unless the URL says otherwise; and
// that many transactions really run at once.
func TestPoolSize(t *testing.T) {
	ctx := context.Background()
	s, err := postgres.Open(ctx, dsn(t), postgres.Options{Migrate: true, MaxConns: 30})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.Pool().Config().MaxConns; got != 30 {
		t.Errorf("pool of %d connections, want 30", got)
	}
	held := make(chan struct{})
	release := make(chan struct{})
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		go func() {
			errs <- s.View(ctx, func(tx storage.Tx) error {
				if _, err := tx.Timestamp(ctx, storage.Scope{Parent: "/buckets/b", Resource: "collection"}); err != nil {
					return err
				}
				held <- struct{}{}
				<-release
				return nil
			})
		}()
	}
	for i := 0; i < 20; i++ {
		select {
		case <-held:
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d transactions ran at once", i)
		}
	}
	close(release)
	for i := 0; i < 20; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	sep := "?"
	if strings.Contains(dsn(t), "?") {
		sep = "&"
	}
	own, err := postgres.Open(ctx, dsn(t)+sep+"pool_max_conns=7", postgres.Options{MaxConns: 30})
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	if got := own.Pool().Config().MaxConns; got != 7 {
		t.Errorf("pool_max_conns=7 in the URL gave %d connections", got)
	}
}

// A savepoint rolled back releases the scope lock its writes took: the
// transaction's next write in that scope locks and reads it again, so
// that a write another transaction committed in between (here with a
// timestamp an hour ahead) is not overtaken.
func TestLockReleasedBySavepointIsTakenAgain(t *testing.T) {
	ctx := context.Background()
	s := Open(t)
	scope := storage.Scope{Parent: "/buckets/b/collections/c", Resource: "record"}
	ahead := time.Now().Add(time.Hour).UnixMilli()
	var later *storage.Object
	err := s.Update(ctx, func(tx storage.Tx) error {
		tx.Savepoint(ctx, func(tx storage.Tx) error {
			if _, err := tx.Put(ctx, scope, &storage.Object{ID: "undone", Data: map[string]any{}}); err != nil {
				return err
			}
			return errors.New("undo")
		})
		// (A read sends what waits in the pipeline, the ROLLBACK TO.)
		if _, err := tx.Get(ctx, scope, "undone"); !kerr.Is(err, kerr.NotFound) {
			return fmt.Errorf("undone write: %v", err)
		}
		// Another transaction writes the scope meanwhile: nothing holds
		// its lock any more.
		done := make(chan error, 1)
		go func() {
			done <- s.Update(ctx, func(tx storage.Tx) error {
				_, err := tx.Put(ctx, scope, &storage.Object{ID: "ahead", Data: map[string]any{}, LastModified: ahead})
				return err
			})
		}()
		select {
		case err := <-done:
			if err != nil {
				return err
			}
		case <-time.After(10 * time.Second):
			return errors.New("the other writer waited for a lock the savepoint released")
		}
		var err error
		later, err = tx.Put(ctx, scope, &storage.Object{ID: "later", Data: map[string]any{}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if later.LastModified <= ahead {
		t.Errorf("write after the other transaction's: timestamp %d, not after %d", later.LastModified, ahead)
	}
}
