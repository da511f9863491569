package storagetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"kintogo/internal/kerr"
	"kintogo/internal/storage"
)

// The change log's contract (storage.Log): what a transaction records of
// its changes is what the log holds of its commit, once, in commit order;
// nothing of a transaction rolled back, nor of the work of a savepoint
// undone.

// logTests are the change log's tests, run by Run on backends that have
// one.
var logTests = []struct {
	name string
	fn   func(*testing.T, storage.Storage, storage.Log)
}{
	{"LogHoldsWhatTransactionsRecorded", testLogRecords},
	{"LogHoldsEveryConcurrentCommitOnce", testLogConcurrent},
	{"LogPrunedReadersStartOver", testLogPruned},
}

// readLog reads the log after pos until its commits hold want changes (a
// backend may make a commit readable shortly after it returns), or 10 s
// passed.
func readLog(t *testing.T, l storage.Log, pos int64, want int) ([]storage.Commit, int64) {
	t.Helper()
	var out []storage.Commit
	changes := 0
	deadline := time.Now().Add(10 * time.Second)
	for {
		batches, err := l.ReadLog(ctx, pos, 64)
		if err != nil {
			t.Fatalf("ReadLog(%d): %v", pos, err)
		}
		for _, b := range batches {
			if b.Position <= pos {
				t.Fatalf("position %d after %d", b.Position, pos)
			}
			pos = b.Position
			out = append(out, b.Commits...)
			for _, c := range b.Commits {
				changes += len(c.Changes)
			}
		}
		if changes >= want && len(batches) == 0 {
			return out, pos
		}
		if len(batches) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("the log holds %d changes after %v, want %d", changes, pos, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func testLogRecords(t *testing.T, s storage.Storage, l storage.Log) {
	head, err := l.LogHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	floor := storage.Scope{Parent: "/buckets/b/collections/new", Resource: "record"}
	var recorded []storage.Change
	update(t, s, func(tx storage.Tx) error {
		if _, err := tx.Create(ctx, records, &storage.Object{ID: "r1", Data: map[string]any{"a": 1}}); err != nil {
			return err
		}
		if _, err := tx.Put(ctx, records, &storage.Object{ID: "r2"}); err != nil {
			return err
		}
		if _, err := tx.Delete(ctx, records, "r1", 0); err != nil {
			return err
		}
		if _, err := tx.InitTimestamp(ctx, floor); err != nil {
			return err
		}
		// Undone: not recorded.
		errUndo := errors.New("undo")
		if err := tx.Savepoint(ctx, func(tx storage.Tx) error {
			if _, err := tx.Put(ctx, records, &storage.Object{ID: "undone"}); err != nil {
				return err
			}
			return errUndo
		}); !errors.Is(err, errUndo) {
			return fmt.Errorf("savepoint: %v", err)
		}
		recorded = append([]storage.Change(nil), tx.Changes()...)
		return nil
	})
	if len(recorded) != 4 {
		t.Fatalf("recorded %+v, want 4 changes", recorded)
	}
	for i, want := range []storage.Change{
		{Scope: records, ID: "r1"}, {Scope: records, ID: "r2"}, {Scope: records, ID: "r1", Deleted: true}, {Scope: floor},
	} {
		got := recorded[i]
		if got.Scope != want.Scope || got.ID != want.ID || got.Deleted != want.Deleted || got.Timestamp == 0 {
			t.Errorf("change %d: %+v, want %+v with a timestamp", i, got, want)
		}
	}
	if recorded[0].Timestamp >= recorded[1].Timestamp || recorded[1].Timestamp >= recorded[2].Timestamp {
		t.Errorf("timestamps of the changes do not increase: %+v", recorded)
	}
	// Rolled back, read-only, or without changes: not logged.
	errRollback := errors.New("rollback")
	if err := s.Update(ctx, func(tx storage.Tx) error {
		if _, err := tx.Put(ctx, records, &storage.Object{ID: "rolled-back"}); err != nil {
			return err
		}
		return errRollback
	}); !errors.Is(err, errRollback) {
		t.Fatal(err)
	}
	update(t, s, func(tx storage.Tx) error { _, err := tx.Get(ctx, records, "r2"); return err })
	view(t, s, func(tx storage.Tx) error { _, err := tx.Get(ctx, records, "r2"); return err })
	// A second commit, so that the first is known to be alone.
	update(t, s, func(tx storage.Tx) error { _, err := tx.Put(ctx, records, &storage.Object{ID: "r3"}); return err })

	commits, _ := readLog(t, l, head, 5)
	if len(commits) != 2 {
		t.Fatalf("the log holds %d commits, want 2: %+v", len(commits), commits)
	}
	if d := cmp.Diff(recorded, commits[0].Changes); d != "" {
		t.Errorf("the log's first commit differs from what the transaction recorded: %s", d)
	}
	if len(commits[1].Changes) != 1 || commits[1].Changes[0].ID != "r3" {
		t.Errorf("second commit %+v, want r3's", commits[1])
	}
	for _, c := range commits {
		if c.Writer != l.Writer() || c.Writer == "" {
			t.Errorf("commit by %q, want this store's %q", c.Writer, l.Writer())
		}
		if time.Since(c.At) > time.Minute || time.Until(c.At) > time.Minute {
			t.Errorf("commit time %v", c.At)
		}
	}
	// A flush is a change of everything.
	update(t, s, func(tx storage.Tx) error { return tx.Flush(ctx) })
	_, pos := readLog(t, l, head, 6)
	if h, err := l.LogHead(ctx); err != nil || h != pos {
		t.Errorf("LogHead %d, %v; want %d", h, err, pos)
	}
}

// Concurrent writers, each commit read once and in each scope in the
// order of its timestamps.
func testLogConcurrent(t *testing.T, s storage.Storage, l storage.Log) {
	head, err := l.LogHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const writers, writes = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers*writes)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			scope := storage.Scope{Parent: fmt.Sprintf("/buckets/b/collections/c%d", w%3), Resource: "record"}
			for i := 0; i < writes; i++ {
				err := s.Update(ctx, func(tx storage.Tx) error {
					_, err := tx.Put(ctx, scope, &storage.Object{ID: fmt.Sprintf("w%d-%d", w, i)})
					return err
				})
				if err != nil && !kerr.Is(err, kerr.Unavailable) {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	commits, _ := readLog(t, l, head, writers*writes)
	seen := map[string]bool{}
	last := map[storage.Scope]int64{}
	for _, c := range commits {
		for _, ch := range c.Changes {
			if seen[ch.ID] {
				t.Errorf("%s read twice", ch.ID)
			}
			seen[ch.ID] = true
			if ch.Timestamp <= last[ch.Scope] {
				t.Errorf("%s at %d read after %d in its scope", ch.ID, ch.Timestamp, last[ch.Scope])
			}
			last[ch.Scope] = ch.Timestamp
		}
	}
	if len(seen) != writers*writes {
		t.Errorf("%d writes read, want %d", len(seen), writers*writes)
	}
}

// A reader behind what the log keeps is told so; the head stays readable.
func testLogPruned(t *testing.T, s storage.Storage, l storage.Log) {
	head, err := l.LogHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		update(t, s, func(tx storage.Tx) error {
			_, err := tx.Put(ctx, records, &storage.Object{ID: fmt.Sprint("p", i)})
			return err
		})
		// One position each (a backend may gather commits made together).
		readLog(t, l, head, i+1)
	}
	_, pos := readLog(t, l, head, 3)
	if _, err := l.PruneLog(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.ReadLog(ctx, head, 10); !errors.Is(err, storage.ErrLogTruncated) {
		t.Errorf("ReadLog of a pruned position: %v, want ErrLogTruncated", err)
	}
	if h, err := l.LogHead(ctx); err != nil || h != pos {
		t.Errorf("head after pruning %d, %v; want %d", h, err, pos)
	}
	if batches, err := l.ReadLog(ctx, pos, 10); err != nil || len(batches) != 0 {
		t.Errorf("ReadLog of the head after pruning: %v, %v", batches, err)
	}
	update(t, s, func(tx storage.Tx) error { _, err := tx.Put(ctx, records, &storage.Object{ID: "after"}); return err })
	if commits, _ := readLog(t, l, pos, 1); len(commits) != 1 || commits[0].Changes[0].ID != "after" {
		t.Errorf("after pruning: %+v", commits)
	}
}
