package storagetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"kintogo/internal/kerr"
	"kintogo/internal/query"
	"kintogo/internal/storage"
)

// Concurrent writers, as a backend may group them into shared commits
// (SQLite does): each write is committed before Update returns, its
// timestamp is unique and increasing in its scope in the order writes
// were acknowledged, and a write that fails, panics or is canceled leaves
// nothing while the others around it commit.

// concurrentWrite is one acknowledged write of testConcurrentWrites.
type concurrentWrite struct {
	scope      storage.Scope
	id         string
	ts         int64
	start, end time.Time
}

// Writers into a few scopes at once: every acknowledged write is there,
// each scope's timestamps are distinct, and a write acknowledged before
// another began has the smaller timestamp (commit order is real-time
// order).
func testConcurrentWrites(t *testing.T, s storage.Storage) {
	const writers, each = 16, 15
	scopes := []storage.Scope{records, {Parent: "/buckets/b/collections/d", Resource: "record"}}
	var mu sync.Mutex
	var done []concurrentWrite
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				cw := concurrentWrite{scope: scopes[(w+i)%len(scopes)], id: fmt.Sprintf("w%d-%d", w, i), start: time.Now()}
				err := s.Update(ctx, func(tx storage.Tx) error {
					o, err := tx.Put(ctx, cw.scope, &storage.Object{ID: cw.id, Data: map[string]any{"w": "x"}})
					if err != nil {
						return err
					}
					cw.ts = o.LastModified
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
				cw.end = time.Now()
				mu.Lock()
				done = append(done, cw)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent write: %v", err)
	}
	for _, scope := range scopes {
		var mine []concurrentWrite
		for _, cw := range done {
			if cw.scope == scope {
				mine = append(mine, cw)
			}
		}
		sort.Slice(mine, func(i, j int) bool { return mine[i].ts < mine[j].ts })
		for i := 1; i < len(mine); i++ {
			if mine[i].ts == mine[i-1].ts {
				t.Errorf("%s: %s and %s have the same timestamp %d", scope.Parent, mine[i-1].id, mine[i].id, mine[i].ts)
			}
		}
		for _, a := range mine {
			for _, b := range mine {
				if a.end.Before(b.start) && a.ts >= b.ts {
					t.Errorf("%s acknowledged before %s began, but its timestamp %d is not smaller than %d", a.id, b.id, a.ts, b.ts)
				}
			}
		}
		view(t, s, func(tx storage.Tx) error {
			got, err := tx.List(ctx, scope, storage.ListOptions{})
			if err != nil {
				return err
			}
			stored := map[string]int64{}
			for _, o := range got {
				stored[o.ID] = o.LastModified
			}
			for _, cw := range mine {
				if ts, ok := stored[cw.id]; !ok || ts != cw.ts {
					t.Errorf("acknowledged %s (timestamp %d): stored %v, %d", cw.id, cw.ts, ok, ts)
				}
			}
			if len(got) != len(mine) {
				t.Errorf("%s holds %d records, %d were written", scope.Parent, len(got), len(mine))
			}
			ts, err := tx.Timestamp(ctx, scope)
			if err != nil {
				return err
			}
			if last := mine[len(mine)-1].ts; ts != last {
				t.Errorf("%s timestamp %d, newest write %d", scope.Parent, ts, last)
			}
			return nil
		})
	}
}

var errRefused = errors.New("refused by the test")

// Among concurrent writers, those that fail after writing, or panic, or
// whose context ends in the middle of their work, leave nothing; the
// others commit. A panic reaches the caller whose function panicked, and
// no other.
func testFailingWritesFailAlone(t *testing.T, s storage.Storage) {
	const writers = 40
	type outcome struct {
		err      error
		panicked any
	}
	results := make([]outcome, writers)
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { results[w].panicked = recover() }()
			wctx, cancel := context.WithCancel(ctx)
			defer cancel()
			results[w].err = s.Update(wctx, func(tx storage.Tx) error {
				if _, err := tx.Put(wctx, records, &storage.Object{ID: fmt.Sprintf("w%d", w), Data: map[string]any{}}); err != nil {
					return err
				}
				switch w % 4 {
				case 1:
					return errRefused
				case 2:
					panic(fmt.Sprintf("writer %d panics", w))
				case 3:
					cancel()
					_, err := tx.Put(wctx, records, &storage.Object{ID: fmt.Sprintf("w%d-more", w), Data: map[string]any{}})
					return err
				}
				return nil
			})
		}()
	}
	wg.Wait()
	var stored map[string]bool
	view(t, s, func(tx storage.Tx) error {
		got, err := tx.List(ctx, records, storage.ListOptions{})
		stored = map[string]bool{}
		for _, o := range got {
			stored[o.ID] = true
		}
		return err
	})
	for w, r := range results {
		id := fmt.Sprintf("w%d", w)
		switch w % 4 {
		case 0:
			if r.err != nil || r.panicked != nil || !stored[id] {
				t.Errorf("writer %d: error %v, panic %v, stored %v; want committed", w, r.err, r.panicked, stored[id])
			}
		case 1:
			if !errors.Is(r.err, errRefused) || stored[id] {
				t.Errorf("failing writer %d: error %v, stored %v; want its error and nothing stored", w, r.err, stored[id])
			}
		case 2:
			if r.panicked != fmt.Sprintf("writer %d panics", w) || stored[id] {
				t.Errorf("panicking writer %d: panic %v, stored %v; want its panic and nothing stored", w, r.panicked, stored[id])
			}
		case 3:
			if !kerr.Is(r.err, kerr.Unavailable) || stored[id] || stored[id+"-more"] {
				t.Errorf("canceled writer %d: error %v, stored %v; want Unavailable and nothing stored", w, r.err, stored[id])
			}
		}
	}
}

// A list on data fields (which a backend may answer from a snapshot of
// the scope in memory) sees every write before it: creations, deletions,
// replacements, a replacement whose supplied timestamp is in the past
// (which leaves the scope's timestamp as it was), and a purge.
func testListsSeeEveryWrite(t *testing.T, s storage.Storage) {
	green := storage.ListOptions{Filters: []query.Filter{{Field: "tag", Op: query.EQ, Value: "green"}},
		Sort: []query.Sort{{Field: "n"}}}
	list := func() []string {
		t.Helper()
		var got []string
		view(t, s, func(tx storage.Tx) error {
			objs, err := tx.List(ctx, records, green)
			for _, o := range objs {
				got = append(got, o.ID)
			}
			return err
		})
		return got
	}
	put := func(id, tag string, n int, supplied int64) {
		t.Helper()
		update(t, s, func(tx storage.Tx) error {
			_, err := tx.Put(ctx, records, &storage.Object{ID: id, LastModified: supplied,
				Data: map[string]any{"tag": tag, "n": json.Number(strconv.Itoa(n))}})
			return err
		})
	}
	want := func(step string, ids ...string) {
		t.Helper()
		if got := list(); fmt.Sprint(got) != fmt.Sprint(ids) {
			t.Errorf("after %s: %v, want %v", step, got, ids)
		}
	}
	put("a", "green", 2, 0)
	put("b", "red", 1, 0)
	want("creations", "a")
	put("c", "green", 1, 0)
	want("a creation", "c", "a")
	put("b", "green", 3, 0)
	want("a replacement", "c", "a", "b")
	var first int64
	view(t, s, func(tx storage.Tx) error {
		o, err := tx.Get(ctx, records, "c")
		first = o.LastModified
		return err
	})
	put("c", "red", 1, first-1000) // in the past: the scope's timestamp stays
	want("a replacement with an older timestamp", "a", "b")
	update(t, s, func(tx storage.Tx) error {
		_, err := tx.Delete(ctx, records, "a", 0)
		return err
	})
	want("a deletion", "b")
	update(t, s, func(tx storage.Tx) error { return tx.PurgeTree(ctx, "/buckets/b") })
	want("a purge")
	put("b", "green", 3, 0)
	want("a creation after the purge", "b")
}

// Within one transaction, a read after the transaction's own write sees
// it, whatever the backend keeps of earlier reads; and after a savepoint
// is undone, what it wrote is gone for reads too.
func testReadsSeeTheTransactionsWrites(t *testing.T, s storage.Storage) {
	acl := []storage.ACE{{URI: "/buckets/b/collections/c/records/r", Permission: "write"}}
	update(t, s, func(tx storage.Tx) error {
		check := func(what string, ok bool) {
			if !ok {
				t.Errorf("within the transaction: %s", what)
			}
		}
		_, err := tx.Get(ctx, records, "r")
		check("a missing object is missing", kerr.Is(err, kerr.NotFound))
		if _, err := tx.Put(ctx, records, &storage.Object{ID: "r", Data: map[string]any{"v": "1"}}); err != nil {
			return err
		}
		o, err := tx.Get(ctx, records, "r")
		check("the object just created is there", err == nil && o.Data["v"] == "1")
		if _, err := tx.Put(ctx, records, &storage.Object{ID: "r", Data: map[string]any{"v": "2"}}); err != nil {
			return err
		}
		o, err = tx.Get(ctx, records, "r")
		check("the object replaced has its new data", err == nil && o.Data["v"] == "2")

		p, err := tx.UserPrincipals(ctx, "alice", false)
		check("no groups yet", err == nil && len(p) == 0)
		if err := tx.AddUserPrincipal(ctx, "alice", "/buckets/b/groups/g"); err != nil {
			return err
		}
		p, err = tx.UserPrincipals(ctx, "alice", false)
		check("the group just joined", err == nil && len(p) == 1)

		found, err := tx.HasAny(ctx, acl, []string{"alice"})
		check("no permission yet", err == nil && !found)
		if err := tx.SetPermissions(ctx, acl[0].URI, map[string][]string{"write": {"alice"}}); err != nil {
			return err
		}
		found, err = tx.HasAny(ctx, acl, []string{"alice"})
		check("the permission just given", err == nil && found)
		if err := tx.DeletePermissions(ctx, acl[0].URI); err != nil {
			return err
		}
		found, err = tx.HasAny(ctx, acl, []string{"alice"})
		check("the permission just removed", err == nil && !found)

		tx.Savepoint(ctx, func(tx storage.Tx) error {
			if _, err := tx.Put(ctx, records, &storage.Object{ID: "undone", Data: map[string]any{}}); err != nil {
				return err
			}
			if err := tx.SetPermissions(ctx, acl[0].URI, map[string][]string{"write": {"alice"}}); err != nil {
				return err
			}
			if _, err := tx.Get(ctx, records, "undone"); err != nil {
				return err
			}
			if found, err := tx.HasAny(ctx, acl, []string{"alice"}); err != nil || !found {
				return fmt.Errorf("permission in the savepoint: %v %v", found, err)
			}
			return errRefused
		})
		_, err = tx.Get(ctx, records, "undone")
		check("what an undone savepoint wrote is gone", kerr.Is(err, kerr.NotFound))
		found, err = tx.HasAny(ctx, acl, []string{"alice"})
		check("the permission an undone savepoint gave is gone", err == nil && !found)
		return nil
	})
}
