package sqlstore

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"kintogo/internal/kerr"
	"kintogo/internal/storage"
)

// groupCommitter returns a committer on a fresh SQLite database that
// counts the transactions it begins.
func groupCommitter(t *testing.T) (*GroupCommitter, *atomic.Int32) {
	raw, _ := testDB(t)
	var begun atomic.Int32
	g := NewGroupCommitter(sqliteDialect, func(ctx context.Context) (Txn, error) {
		begun.Add(1)
		tx, err := raw.BeginTx(ctx, nil)
		if err != nil {
			return nil, err
		}
		return StdTxn(tx), nil
	}, 64, nil)
	return g, &begun
}

// holdCommitter makes g run a write that waits until hold is closed, and
// returns once it runs; first gets the write's outcome.
func holdCommitter(g *GroupCommitter) (hold chan struct{}, first chan error) {
	hold, held := make(chan struct{}), make(chan struct{})
	first = make(chan error, 1)
	go func() {
		first <- g.Update(context.Background(), func(storage.Tx) error {
			close(held)
			<-hold
			return nil
		})
	}()
	<-held
	return hold, first
}

// Writers that arrive while a transaction runs share the next one: 20
// waiting writers take one or two transactions, not 20, and every one of
// them returns after its commit.
func TestWritersShareCommits(t *testing.T) {
	g, begun := groupCommitter(t)
	ctx := context.Background()
	hold, first := holdCommitter(g)
	var ran atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.Update(ctx, func(storage.Tx) error { ran.Add(1); return nil }); err != nil {
				t.Error(err)
			}
		}()
	}
	// Let the 20 queue behind the held transaction.
	time.Sleep(100 * time.Millisecond)
	close(hold)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if ran.Load() != 20 {
		t.Fatalf("%d of 20 writes ran", ran.Load())
	}
	if n := begun.Load(); n > 3 {
		t.Errorf("21 writes took %d transactions; waiting writers should share them", n)
	}
}

// A writer whose context ends while it waits for its group returns at
// once, and its function never runs.
func TestAbandonedWriteDoesNotRun(t *testing.T) {
	g, _ := groupCommitter(t)
	ctx := context.Background()
	hold, first := holdCommitter(g)
	waiting, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	var ran atomic.Bool
	err := g.Update(waiting, func(storage.Tx) error { ran.Store(true); return nil })
	if !kerr.Is(err, kerr.Unavailable) {
		t.Errorf("abandoned write: %v, want Unavailable", err)
	}
	close(hold)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	// A later write runs, after the abandoned one would have.
	if err := g.Update(ctx, func(storage.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if ran.Load() {
		t.Error("the abandoned write ran")
	}
}
