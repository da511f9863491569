package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	if _, err := s.Pool().Exec(ctx, `TRUNCATE changelog, changelog_ticks`); err != nil {
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

// Followers never skip a late commit: writers on three nodes hold their
// transactions open for random times before committing (so that their
// transaction ids commit out of order), while each node follows the log;
// every node reads every commit exactly once.
func TestFollowersNeverSkipALateCommit(t *testing.T) {
	ctx := context.Background()
	first := open(t, 0)
	nodes := []*postgres.Store{first.(*postgres.Store)}
	for range 2 {
		s, err := postgres.Open(ctx, dsn(t), postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		nodes = append(nodes, s)
	}
	const writers, writes = 12, 15
	total := writers * writes
	// Followers start before the writers and read while they write.
	type seen struct {
		ids  map[string]int
		errs []string
	}
	results := make([]seen, len(nodes))
	positions := make([]atomic.Int64, len(nodes))
	stop := make(chan struct{})
	var followers sync.WaitGroup
	for i, n := range nodes {
		// Where each follower starts, before anything is written.
		pos, err := n.LogHead(ctx)
		if err != nil {
			t.Fatal(err)
		}
		positions[i].Store(pos)
		followers.Add(1)
		go func() {
			defer followers.Done()
			res := seen{ids: map[string]int{}}
			defer func() { results[i] = res }()
			for {
				batches, err := n.ReadLog(ctx, pos, 16)
				if err != nil {
					res.errs = append(res.errs, err.Error())
					return
				}
				for _, b := range batches {
					if b.Position != pos+1 {
						res.errs = append(res.errs, fmt.Sprintf("position %d after %d", b.Position, pos))
					}
					pos = b.Position
					positions[i].Store(pos)
					for _, c := range b.Commits {
						for _, ch := range c.Changes {
							res.ids[ch.ID]++
						}
					}
				}
				if len(batches) > 0 {
					continue
				}
				select {
				case <-stop:
					if len(res.ids) >= total {
						return
					}
				case <-n.LogWake():
				case <-time.After(20 * time.Millisecond):
				}
			}
		}()
	}
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := nodes[w%len(nodes)]
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := 0; i < writes; i++ {
				scope := storage.Scope{Parent: fmt.Sprintf("/buckets/b/collections/c%d", rng.IntN(4)), Resource: "record"}
				hold := time.Duration(rng.IntN(30)) * time.Millisecond
				id := fmt.Sprintf("w%d-%d", w, i)
				err := node.Update(ctx, func(tx storage.Tx) error {
					if _, err := tx.Put(ctx, scope, &storage.Object{ID: id}); err != nil {
						return err
					}
					time.Sleep(hold) // the scope's lock held, the commit late
					return nil
				})
				if err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	done := make(chan struct{})
	go func() { followers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		for i, r := range results {
			t.Logf("node %d: %d of %d read, at position %d", i, len(r.ids), total, positions[i].Load())
		}
		var lo, hi, n int64
		nodes[0].Pool().QueryRow(ctx, `SELECT min(id), max(id), count(*) FROM changelog_ticks`).Scan(&lo, &hi, &n)
		t.Logf("ticks %d..%d (%d)", lo, hi, n)
		rows, _ := nodes[0].Pool().Query(ctx, `SELECT pid, state, coalesce(wait_event_type, ''), coalesce(wait_event, ''), left(query, 100), (now() - query_start)::text FROM pg_stat_activity WHERE datname = current_database()`)
		for rows != nil && rows.Next() {
			var pid int
			var state, wt, we, q, age string
			rows.Scan(&pid, &state, &wt, &we, &q, &age)
			t.Logf("%d %s %s %s %q %s", pid, state, wt, we, q, age)
		}
		t.Fatal("followers did not read every commit within 30 s")
	}
	for i, r := range results {
		for _, e := range r.errs {
			t.Errorf("node %d: %s", i, e)
		}
		if len(r.ids) != total {
			t.Errorf("node %d read %d writes, want %d", i, len(r.ids), total)
		}
		for id, n := range r.ids {
			if n != 1 {
				t.Errorf("node %d read %s %d times", i, id, n)
			}
		}
	}
}
