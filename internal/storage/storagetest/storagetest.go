// Package storagetest is the conformance suite every storage backend must
// pass. A backend's test calls Run with a constructor of empty stores.
package storagetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"kintogo/internal/kerr"
	"kintogo/internal/query"
	"kintogo/internal/storage"
)

// Run runs the whole suite; newStore returns a fresh, empty store.
func Run(t *testing.T, newStore func(t *testing.T) storage.Storage) {
	tests := []struct {
		name string
		fn   func(*testing.T, storage.Storage)
	}{
		{"CreateGetDelete", testCreateGetDelete},
		{"TimestampsStrictlyIncrease", testTimestampsIncrease},
		{"ScopesAreIndependent", testScopesIndependent},
		{"ClientSuppliedTimestamp", testSuppliedTimestamp},
		{"InitTimestampFloor", testInitTimestamp},
		{"ListFiltersSortPaginate", testList},
		{"ListIDsRestriction", testListIDs},
		{"PurgeTree", testPurgeTree},
		{"PurgeTombstones", testPurgeTombstones},
		{"TimestampsByPrefix", testTimestampsByPrefix},
		{"Permissions", testPermissions},
		{"UserPrincipals", testUserPrincipals},
		{"RollbackOnError", testRollback},
		{"SavepointUndoesOnlyItsWork", testSavepoint},
		{"Flush", testFlush},
		{"ReadOnlyTransactionRefusesWrites", testReadOnly},
		{"RemovePrincipalRemovesItsACEs", testRemovePrincipalACEs},
		{"ListStopsWhenCanceled", testListCanceled},
		{"WriterWaitingGivesUpWithItsContext", testWriterGivesUp},
		{"LockScopeGivesNoTimestamp", testLockScope},
		{"ListsMatchTheEvaluator", testListDifferential},
		{"UnstorableValuesAreInvalid", testUnstorable},
		{"ConcurrentWritesAreCommittedInOrder", testConcurrentWrites},
		{"FailingWritesFailAlone", testFailingWritesFailAlone},
		{"ListsSeeEveryWrite", testListsSeeEveryWrite},
		{"ReadsSeeTheTransactionsWrites", testReadsSeeTheTransactionsWrites},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
	for _, tc := range logTests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			l := storage.LogOf(s)
			if l == nil {
				t.Skip("no change log")
			}
			tc.fn(t, s, l)
		})
	}
}

var ctx = context.Background()

var records = storage.Scope{Parent: "/buckets/b/collections/c", Resource: "record"}

// update runs fn in a read-write transaction; an error fails the test.
// Callbacks return their errors rather than call t.Fatal, which would
// leave the transaction to its backend's deferred handling.
func update(t *testing.T, s storage.Storage, fn func(storage.Tx) error) {
	t.Helper()
	if err := s.Update(ctx, fn); err != nil {
		t.Fatalf("update: %v", err)
	}
}

// view runs fn in a read-only transaction; an error fails the test.
func view(t *testing.T, s storage.Storage, fn func(storage.Tx) error) {
	t.Helper()
	if err := s.View(ctx, fn); err != nil {
		t.Fatalf("view: %v", err)
	}
}

func data(t *testing.T, js string) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(jsonReader(js))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func body(t *testing.T, o *storage.Object) string {
	t.Helper()
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatalf("marshal %s: %v", o.ID, err)
	}
	return string(b)
}

func testCreateGetDelete(t *testing.T, s storage.Storage) {
	var created *storage.Object
	update(t, s, func(tx storage.Tx) (err error) {
		created, err = tx.Create(ctx, records, &storage.Object{ID: "r1", Data: data(t, `{"title":"a","n":1,"nested":{"x":[1,2]}}`)})
		return err
	})
	if created.LastModified == 0 {
		t.Fatal("no timestamp assigned")
	}
	view(t, s, func(tx storage.Tx) error {
		got, err := tx.Get(ctx, records, "r1")
		if err != nil {
			return err
		}
		if diff := cmp.Diff(body(t, created), body(t, got)); diff != "" {
			t.Errorf("get differs (-created +got):\n%s", diff)
		}
		return nil
	})
	err := s.Update(ctx, func(tx storage.Tx) error {
		_, err := tx.Create(ctx, records, &storage.Object{ID: "r1"})
		return err
	})
	if !kerr.Is(err, kerr.Conflict) {
		t.Errorf("second create: want Conflict, got %v", err)
	}
	var tomb *storage.Object
	update(t, s, func(tx storage.Tx) (err error) {
		tomb, err = tx.Delete(ctx, records, "r1", 0)
		return err
	})
	if !tomb.Deleted || tomb.LastModified <= created.LastModified || len(tomb.Data) != 0 {
		t.Errorf("bad tombstone %s", body(t, tomb))
	}
	view(t, s, func(tx storage.Tx) error {
		if _, err := tx.Get(ctx, records, "r1"); !kerr.Is(err, kerr.NotFound) {
			t.Errorf("get tombstone: want NotFound, got %v", err)
		}
		if _, err := tx.Get(ctx, records, "nope"); !kerr.Is(err, kerr.NotFound) {
			t.Errorf("get missing: want NotFound, got %v", err)
		}
		live, err := tx.List(ctx, records, storage.ListOptions{})
		if err != nil {
			return err
		}
		all, err := tx.List(ctx, records, storage.ListOptions{IncludeDeleted: true})
		if err != nil {
			return err
		}
		if len(live) != 0 || len(all) != 1 || !all[0].Deleted {
			t.Errorf("list after delete: live %d, all %v", len(live), all)
		}
		ts, err := tx.Timestamp(ctx, records)
		if err != nil {
			return err
		}
		if ts != tomb.LastModified {
			t.Errorf("resource timestamp %d, want the tombstone's %d", ts, tomb.LastModified)
		}
		return nil
	})
	err = s.Update(ctx, func(tx storage.Tx) error { _, err := tx.Delete(ctx, records, "r1", 0); return err })
	if !kerr.Is(err, kerr.NotFound) {
		t.Errorf("delete tombstone: want NotFound, got %v", err)
	}
	// A tombstone is replaced by a new object with the same id.
	update(t, s, func(tx storage.Tx) error {
		o, err := tx.Create(ctx, records, &storage.Object{ID: "r1", Data: data(t, `{"v":2}`)})
		if err == nil && (o.LastModified <= tomb.LastModified || o.Deleted) {
			t.Errorf("recreated %s", body(t, o))
		}
		return err
	})
}

func testTimestampsIncrease(t *testing.T, s storage.Storage) {
	var last int64
	for i := 0; i < 50; i++ {
		update(t, s, func(tx storage.Tx) error {
			id := fmt.Sprintf("r%d", i%7)
			var o *storage.Object
			var err error
			switch i % 3 {
			case 0:
				o, err = tx.Put(ctx, records, &storage.Object{ID: id, Data: map[string]any{}})
			case 1:
				o, err = tx.Put(ctx, records, &storage.Object{ID: id + "x", Data: map[string]any{}})
			case 2:
				o, err = tx.Delete(ctx, records, id, 0)
				if kerr.Is(err, kerr.NotFound) {
					return nil
				}
			}
			if err != nil {
				return err
			}
			if o.LastModified <= last {
				return fmt.Errorf("timestamp %d after %d", o.LastModified, last)
			}
			last = o.LastModified
			return nil
		})
	}
	view(t, s, func(tx storage.Tx) error {
		ts, err := tx.Timestamp(ctx, records)
		if err != nil {
			return err
		}
		if ts != last {
			t.Errorf("resource timestamp %d, want %d", ts, last)
		}
		return nil
	})
}

func testScopesIndependent(t *testing.T, s storage.Storage) {
	other := storage.Scope{Parent: "/buckets/b/collections/d", Resource: "record"}
	update(t, s, func(tx storage.Tx) error {
		if _, err := tx.Put(ctx, records, &storage.Object{ID: "a"}); err != nil {
			return err
		}
		_, err := tx.Put(ctx, other, &storage.Object{ID: "a", Data: data(t, `{"other":true}`)})
		return err
	})
	view(t, s, func(tx storage.Tx) error {
		a, err := tx.Get(ctx, records, "a")
		if err != nil {
			return err
		}
		b, err := tx.Get(ctx, other, "a")
		if err != nil {
			return err
		}
		if a.Data["other"] != nil || b.Data["other"] != true {
			t.Errorf("scopes mixed: %v %v", a, b)
		}
		return nil
	})
}

func testSuppliedTimestamp(t *testing.T, s storage.Storage) {
	var first *storage.Object
	update(t, s, func(tx storage.Tx) (err error) {
		first, err = tx.Put(ctx, records, &storage.Object{ID: "a"})
		return err
	})
	update(t, s, func(tx storage.Tx) error {
		// Equal to the current resource timestamp: bumped.
		o, err := tx.Put(ctx, records, &storage.Object{ID: "b", LastModified: first.LastModified})
		if err != nil {
			return err
		}
		if o.LastModified <= first.LastModified {
			t.Errorf("colliding supplied timestamp kept: %d", o.LastModified)
		}
		// In the past: kept, and the resource timestamp does not move back.
		past, err := tx.Put(ctx, records, &storage.Object{ID: "c", LastModified: 1000})
		if err != nil {
			return err
		}
		if past.LastModified != 1000 {
			t.Errorf("past timestamp not kept: %d", past.LastModified)
		}
		ts, err := tx.Timestamp(ctx, records)
		if err != nil {
			return err
		}
		if ts != o.LastModified {
			t.Errorf("resource timestamp %d, want %d", ts, o.LastModified)
		}
		return nil
	})
}

func testInitTimestamp(t *testing.T, s storage.Storage) {
	scope := storage.Scope{Parent: "/buckets/x", Resource: "collection"}
	view(t, s, func(tx storage.Tx) error {
		ts, err := tx.Timestamp(ctx, scope)
		if err != nil {
			return err
		}
		if ts != 0 {
			t.Errorf("empty scope timestamp %d, want 0", ts)
		}
		return nil
	})
	var floor int64
	update(t, s, func(tx storage.Tx) (err error) {
		floor, err = tx.InitTimestamp(ctx, scope)
		return err
	})
	if floor == 0 {
		t.Fatal("no floor")
	}
	update(t, s, func(tx storage.Tx) error {
		again, err := tx.InitTimestamp(ctx, scope)
		if err != nil {
			return err
		}
		if again != floor {
			t.Errorf("floor moved: %d -> %d", floor, again)
		}
		o, err := tx.Put(ctx, scope, &storage.Object{ID: "c"})
		if err == nil && o.LastModified <= floor {
			t.Errorf("object timestamp %d not after floor %d", o.LastModified, floor)
		}
		return err
	})
}

func ids(objs []*storage.Object) []string {
	out := []string{}
	for _, o := range objs {
		out = append(out, o.ID)
	}
	return out
}

func testList(t *testing.T, s storage.Storage) {
	rows := []string{
		`{"title":"apple","n":3,"tags":["x"]}`,
		`{"title":"banana","n":10,"tags":["x","y"]}`,
		`{"title":"cherry","n":7,"tags":[]}`,
		`{"title":"date","n":1,"meta":{"kg":4}}`,
	}
	update(t, s, func(tx storage.Tx) error {
		for i, r := range rows {
			if _, err := tx.Put(ctx, records, &storage.Object{ID: fmt.Sprintf("r%d", i), Data: data(t, r)}); err != nil {
				return err
			}
		}
		_, err := tx.Delete(ctx, records, "r2", 0)
		return err
	})
	n := func(s string) json.Number { return json.Number(s) }
	cases := []struct {
		name string
		opts storage.ListOptions
		want []string
	}{
		{"default order newest first", storage.ListOptions{Sort: []query.Sort{{Field: "last_modified", Desc: true}}}, []string{"r3", "r1", "r0"}},
		{"with tombstones", storage.ListOptions{IncludeDeleted: true, Sort: []query.Sort{{Field: "id"}}}, []string{"r0", "r1", "r2", "r3"}},
		{"min", storage.ListOptions{Filters: []query.Filter{{Field: "n", Op: query.MIN, Value: n("3")}}, Sort: []query.Sort{{Field: "id"}}}, []string{"r0", "r1"}},
		{"gt missing field matches", storage.ListOptions{Filters: []query.Filter{{Field: "meta.kg", Op: query.GT, Value: n("1")}}, Sort: []query.Sort{{Field: "id"}}}, []string{"r0", "r1", "r3"}},
		{"lt missing field does not", storage.ListOptions{Filters: []query.Filter{{Field: "meta.kg", Op: query.LT, Value: n("5")}}}, []string{"r3"}},
		{"contains", storage.ListOptions{Filters: []query.Filter{{Field: "tags", Op: query.CONTAINS, Value: []any{"x"}}}, Sort: []query.Sort{{Field: "id"}}}, []string{"r0", "r1"}},
		{"like", storage.ListOptions{Filters: []query.Filter{{Field: "title", Op: query.LIKE, Value: "*AN*"}}}, []string{"r1"}},
		{"sort desc with limit", storage.ListOptions{Sort: []query.Sort{{Field: "n", Desc: true}}, Limit: 2}, []string{"r1", "r0"}},
		{"missing sorts last ascending", storage.ListOptions{Sort: []query.Sort{{Field: "meta.kg"}, {Field: "id"}}}, []string{"r3", "r0", "r1"}},
		{"keyset after", storage.ListOptions{Sort: []query.Sort{{Field: "id"}}, After: map[string]any{"id": "r0"}}, []string{"r1", "r3"}},
		{"since includes tombstone", storage.ListOptions{IncludeDeleted: true, Filters: []query.Filter{{Field: "last_modified", Op: query.GT, Value: int64(0)}}, Sort: []query.Sort{{Field: "id"}}}, []string{"r0", "r1", "r2", "r3"}},
		{"id equality", storage.ListOptions{Filters: []query.Filter{{Field: "id", Op: query.EQ, Value: "r1"}}}, []string{"r1"}},
		{"in", storage.ListOptions{Filters: []query.Filter{{Field: "title", Op: query.IN, Value: []any{"apple", "date", "zz"}}}, Sort: []query.Sort{{Field: "id"}}}, []string{"r0", "r3"}},
		{"exclude matches missing", storage.ListOptions{Filters: []query.Filter{{Field: "meta.kg", Op: query.EXCLUDE, Value: []any{n("4")}}}, Sort: []query.Sort{{Field: "id"}}}, []string{"r0", "r1"}},
		{"not matches missing", storage.ListOptions{Filters: []query.Filter{{Field: "tags", Op: query.NEQ, Value: []any{"x"}}}, Sort: []query.Sort{{Field: "id"}}}, []string{"r1", "r3"}},
		{"has false", storage.ListOptions{Filters: []query.Filter{{Field: "tags", Op: query.HAS, Value: false}}}, []string{"r3"}},
		{"contains any", storage.ListOptions{Filters: []query.Filter{{Field: "tags", Op: query.CONTAINSANY, Value: []any{"y", "q"}}}}, []string{"r1"}},
		{"max on last_modified", storage.ListOptions{Filters: []query.Filter{{Field: "last_modified", Op: query.MAX, Value: int64(1)}}}, []string{}},
		{"two keys, keyset after", storage.ListOptions{Sort: []query.Sort{{Field: "tags", Desc: true}, {Field: "id"}}, After: map[string]any{"tags": []any{"x", "y"}, "id": "r1"}, Limit: 1}, []string{"r0"}}, // missing sorts first descending: r3, r1, r0
		{"filters, sort and limit together", storage.ListOptions{Filters: []query.Filter{{Field: "n", Op: query.LT, Value: n("10")}}, Sort: []query.Sort{{Field: "n", Desc: true}}, Limit: 1}, []string{"r0"}},
	}
	view(t, s, func(tx storage.Tx) error {
		for _, c := range cases {
			got, err := tx.List(ctx, records, c.opts)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			if diff := cmp.Diff(c.want, ids(got)); diff != "" {
				t.Errorf("%s (-want +got):\n%s", c.name, diff)
			}
		}
		count, err := tx.Count(ctx, records, []query.Filter{{Field: "n", Op: query.GT, Value: n("2")}}, nil)
		if err != nil || count != 2 {
			t.Errorf("count = %d, %v; want 2", count, err)
		}
		return nil
	})
}

func testListIDs(t *testing.T, s storage.Storage) {
	update(t, s, func(tx storage.Tx) error {
		for _, id := range []string{"a", "b", "c"} {
			if _, err := tx.Put(ctx, records, &storage.Object{ID: id}); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, s, func(tx storage.Tx) error {
		got, err := tx.List(ctx, records, storage.ListOptions{IDs: []string{"c", "a", "zz"}, Sort: []query.Sort{{Field: "id"}}})
		if err != nil {
			return err
		}
		if diff := cmp.Diff([]string{"a", "c"}, ids(got)); diff != "" {
			t.Errorf("ids restriction (-want +got):\n%s", diff)
		}
		none, err := tx.List(ctx, records, storage.ListOptions{IDs: []string{}})
		if err != nil {
			return err
		}
		if len(none) != 0 {
			t.Errorf("empty ids restriction listed %v", ids(none))
		}
		return nil
	})
}

func testPurgeTree(t *testing.T, s storage.Storage) {
	buckets := storage.Scope{Parent: "", Resource: "bucket"}
	cols := storage.Scope{Parent: "/buckets/b", Resource: "collection"}
	sibling := storage.Scope{Parent: "/buckets/bb", Resource: "collection"}
	update(t, s, func(tx storage.Tx) error {
		for _, w := range []struct {
			s  storage.Scope
			id string
		}{{buckets, "b"}, {buckets, "bb"}, {cols, "c"}, {records, "r"}, {sibling, "c"}} {
			if _, err := tx.Put(ctx, w.s, &storage.Object{ID: w.id}); err != nil {
				return err
			}
		}
		return tx.PurgeTree(ctx, "/buckets/b")
	})
	view(t, s, func(tx storage.Tx) error {
		if _, err := tx.Get(ctx, buckets, "b"); err != nil {
			t.Errorf("bucket itself purged: %v", err)
		}
		if _, err := tx.Get(ctx, cols, "c"); !kerr.Is(err, kerr.NotFound) {
			t.Errorf("collection survived purge: %v", err)
		}
		all, err := tx.List(ctx, records, storage.ListOptions{IncludeDeleted: true})
		if err != nil {
			return err
		}
		if len(all) != 0 {
			t.Errorf("records survived purge")
		}
		ts, err := tx.Timestamp(ctx, records)
		if err != nil {
			return err
		}
		if ts != 0 {
			t.Errorf("records timestamp survived purge: %d", ts)
		}
		if _, err := tx.Get(ctx, sibling, "c"); err != nil {
			t.Errorf("sibling bucket's collection purged (prefix collision): %v", err)
		}
		return nil
	})
	// Counts start again from nothing in a purged scope.
	update(t, s, func(tx storage.Tx) error {
		_, err := tx.Put(ctx, records, &storage.Object{ID: "again"})
		return err
	})
	view(t, s, func(tx storage.Tx) error {
		for _, c := range []struct {
			s    storage.Scope
			want int
		}{{records, 1}, {cols, 0}, {sibling, 1}, {buckets, 2}} {
			if n, err := tx.Count(ctx, c.s, nil, nil); err != nil || n != c.want {
				t.Errorf("count of %v after purge: %d, %v; want %d", c.s, n, err, c.want)
			}
		}
		return nil
	})
}

// testPurgeTombstones: only tombstones of the kind go, by age and beyond
// the newest kept per parent; live objects, other kinds and timestamps stay.
func testPurgeTombstones(t *testing.T, s storage.Storage) {
	other := storage.Scope{Parent: "/buckets/b/collections/d", Resource: "record"}
	cols := storage.Scope{Parent: "/buckets/b", Resource: "collection"}
	var stamps []int64 // of the tombstones of records, oldest first
	update(t, s, func(tx storage.Tx) error {
		for _, sc := range []storage.Scope{records, other, cols} {
			for _, id := range []string{"t1", "t2", "t3", "live"} {
				if _, err := tx.Put(ctx, sc, &storage.Object{ID: id}); err != nil {
					return err
				}
			}
			for i, id := range []string{"t1", "t2", "t3"} {
				// The other scopes' tombstones are all newer than
				// those of records.
				var supplied int64
				if sc != records {
					supplied = stamps[2] + 1000 + int64(i)
				}
				tomb, err := tx.Delete(ctx, sc, id, supplied)
				if err != nil {
					return err
				}
				if sc == records {
					stamps = append(stamps, tomb.LastModified)
				}
			}
		}
		return nil
	})
	var before int64
	view(t, s, func(tx storage.Tx) (err error) { before, err = tx.Timestamp(ctx, records); return err })
	left := func(sc storage.Scope) []string {
		var out []string
		view(t, s, func(tx storage.Tx) error {
			all, err := tx.List(ctx, sc, storage.ListOptions{IncludeDeleted: true, Sort: []query.Sort{{Field: "id"}}})
			out = ids(all)
			return err
		})
		return out
	}
	purge := func(before int64, keep int) int {
		var n int
		update(t, s, func(tx storage.Tx) (err error) { n, err = tx.PurgeTombstones(ctx, "record", before, keep); return err })
		return n
	}
	// Older than the newest tombstone of records: t1 and t2 there; in
	// the other collection, whose tombstones are all newer, none.
	if n := purge(stamps[2], 0); n != 2 {
		t.Errorf("purged %d tombstones older than %d, want 2", n, stamps[2])
	}
	if got := strings.Join(left(records), ","); got != "live,t3" {
		t.Errorf("records after purge by age: %s", got)
	}
	// Keep the newest of each parent: t3 stays in both.
	if n := purge(0, 1); n != 2 {
		t.Errorf("purged %d tombstones beyond the newest, want 2", n)
	}
	if got := strings.Join(left(other), ","); got != "live,t3" {
		t.Errorf("other collection after keeping 1: %s", got)
	}
	if n := purge(0, 0); n != 2 {
		t.Errorf("purged %d remaining tombstones, want 2", n)
	}
	if got := strings.Join(left(records), ","); got != "live" {
		t.Errorf("records after purging all: %s", got)
	}
	if got := strings.Join(left(cols), ","); got != "live,t1,t2,t3" {
		t.Errorf("another kind's tombstones were purged: %s", got)
	}
	view(t, s, func(tx storage.Tx) error {
		if ts, err := tx.Timestamp(ctx, records); err != nil || ts != before {
			t.Errorf("timestamp after purge: %d, %v; want %d", ts, err, before)
		}
		if n, err := tx.Count(ctx, records, nil, nil); err != nil || n != 1 {
			t.Errorf("live count after purge: %d, %v", n, err)
		}
		return nil
	})
}

func testTimestampsByPrefix(t *testing.T, s storage.Storage) {
	want := map[string]int64{}
	update(t, s, func(tx storage.Tx) error {
		for _, parent := range []string{"/buckets/main/collections/a", "/buckets/main/collections/b", "/buckets/main-preview/collections/a", "/buckets/other/collections/a"} {
			o, err := tx.Put(ctx, storage.Scope{Parent: parent, Resource: "record"}, &storage.Object{ID: "x"})
			if err != nil {
				return err
			}
			if parent != "/buckets/main-preview/collections/a" && parent != "/buckets/other/collections/a" {
				want[parent] = o.LastModified
			}
		}
		floor, err := tx.InitTimestamp(ctx, storage.Scope{Parent: "/buckets/main/collections/empty", Resource: "record"})
		want["/buckets/main/collections/empty"] = floor
		return err
	})
	view(t, s, func(tx storage.Tx) error {
		got, err := tx.Timestamps(ctx, "record", []string{"/buckets/main/"})
		if err != nil {
			return err
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("timestamps (-want +got):\n%s", diff)
		}
		return nil
	})
}

func testPermissions(t *testing.T, s storage.Storage) {
	update(t, s, func(tx storage.Tx) error {
		if err := tx.SetPermissions(ctx, "/buckets/b", map[string][]string{"write": {"alice"}, "read": {"bob", "carol"}}); err != nil {
			return err
		}
		if err := tx.SetPermissions(ctx, "/buckets/b/collections/c", map[string][]string{"read": {"bob"}, "record:create": {"dave"}}); err != nil {
			return err
		}
		if err := tx.SetPermissions(ctx, "/buckets/b/collections/c/records/r", map[string][]string{"write": {"erin"}}); err != nil {
			return err
		}
		// Replace only read; write stays.
		return tx.SetPermissions(ctx, "/buckets/b", map[string][]string{"read": {"carol"}})
	})
	view(t, s, func(tx storage.Tx) error {
		perms, err := tx.Permissions(ctx, "/buckets/b")
		if err != nil {
			return err
		}
		for k := range perms {
			sort.Strings(perms[k])
		}
		if diff := cmp.Diff(map[string][]string{"write": {"alice"}, "read": {"carol"}}, perms); diff != "" {
			t.Errorf("permissions (-want +got):\n%s", diff)
		}
		ok, err := tx.HasAny(ctx, []storage.ACE{{URI: "/buckets/b", Permission: "write"}, {URI: "/buckets/b/collections/c", Permission: "read"}}, []string{"x", "bob"})
		if err != nil {
			return err
		}
		if !ok {
			t.Error("HasAny: bob reads c")
		}
		ok, err = tx.HasAny(ctx, []storage.ACE{{URI: "/buckets/b", Permission: "write"}}, []string{"bob"})
		if err != nil {
			return err
		}
		if ok {
			t.Error("HasAny: bob does not write b")
		}
		acc, err := tx.Accessible(ctx, "/buckets/b/collections/", 1, []string{"read", "write", "record:create"}, []string{"dave", "bob"})
		if err != nil {
			return err
		}
		for k := range acc {
			sort.Strings(acc[k])
		}
		if diff := cmp.Diff(map[string][]string{"/buckets/b/collections/c": {"read", "record:create"}}, acc); diff != "" {
			t.Errorf("accessible (-want +got):\n%s", diff)
		}
		return nil
	})
	update(t, s, func(tx storage.Tx) error {
		if err := tx.SetPermissions(ctx, "/buckets/b", map[string][]string{"read": {}}); err != nil {
			return err
		}
		return tx.DeletePermissions(ctx, "/buckets/b/collections/c/*")
	})
	view(t, s, func(tx storage.Tx) error {
		perms, err := tx.Permissions(ctx, "/buckets/b")
		if err != nil {
			return err
		}
		if _, has := perms["read"]; has {
			t.Error("empty list did not remove the permission")
		}
		p, err := tx.Permissions(ctx, "/buckets/b/collections/c/records/r")
		if err != nil {
			return err
		}
		if len(p) != 0 {
			t.Errorf("wildcard delete left %v", p)
		}
		if p, err = tx.Permissions(ctx, "/buckets/b/collections/c"); err != nil {
			return err
		}
		if len(p) != 2 {
			t.Errorf("wildcard delete removed the collection's own ACEs: %v", p)
		}
		return nil
	})
}

func testUserPrincipals(t *testing.T, s storage.Storage) {
	update(t, s, func(tx storage.Tx) error {
		for _, op := range []func() error{
			func() error { return tx.AddUserPrincipal(ctx, "alice", "/buckets/b/groups/g1") },
			func() error { return tx.AddUserPrincipal(ctx, "alice", "/buckets/b/groups/g2") },
			func() error { return tx.AddUserPrincipal(ctx, "system.Authenticated", "/buckets/b/groups/all") },
			func() error { return tx.RemoveUserPrincipal(ctx, "alice", "/buckets/b/groups/g2") },
		} {
			if err := op(); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, s, func(tx storage.Tx) error {
		got, err := tx.UserPrincipals(ctx, "alice", true)
		if err != nil {
			return err
		}
		if diff := cmp.Diff([]string{"/buckets/b/groups/all", "/buckets/b/groups/g1"}, got); diff != "" {
			t.Errorf("principals (-want +got):\n%s", diff)
		}
		if got, err = tx.UserPrincipals(ctx, "alice", false); err != nil {
			return err
		}
		if diff := cmp.Diff([]string{"/buckets/b/groups/g1"}, got); diff != "" {
			t.Errorf("principals unauthenticated (-want +got):\n%s", diff)
		}
		return nil
	})
	update(t, s, func(tx storage.Tx) error { return tx.RemovePrincipal(ctx, "/buckets/b/groups/g1") })
	view(t, s, func(tx storage.Tx) error {
		got, err := tx.UserPrincipals(ctx, "alice", false)
		if err != nil {
			return err
		}
		if len(got) != 0 {
			t.Errorf("RemovePrincipal left %v", got)
		}
		return nil
	})
}

// written returns an error unless tx sees the writes of testRollback and
// testFlush (the record "new", an ACE on uri, a membership of user): what
// a rollback or a flush leaves behind means something only after writes
// that took effect.
func written(tx storage.Tx, uri, user string) error {
	if _, err := tx.Get(ctx, records, "new"); err != nil {
		return fmt.Errorf("written object not visible in its transaction: %w", err)
	}
	if p, err := tx.Permissions(ctx, uri); err != nil || len(p) == 0 {
		return fmt.Errorf("written ACE not visible in its transaction: %v, %v", p, err)
	}
	if u, err := tx.UserPrincipals(ctx, user, false); err != nil || len(u) == 0 {
		return fmt.Errorf("written membership not visible in its transaction: %v, %v", u, err)
	}
	return nil
}

func testRollback(t *testing.T, s storage.Storage) {
	update(t, s, func(tx storage.Tx) error {
		_, err := tx.Put(ctx, records, &storage.Object{ID: "keep", Data: data(t, `{"v":1}`)})
		return err
	})
	var before int64
	view(t, s, func(tx storage.Tx) (err error) { before, err = tx.Timestamp(ctx, records); return err })
	boom := errors.New("boom")
	// Every write must succeed: only then does the absence of its effects
	// afterwards show a rollback. A failed one is returned instead of
	// boom, failing the test.
	err := s.Update(ctx, func(tx storage.Tx) error {
		if _, err := tx.Put(ctx, records, &storage.Object{ID: "keep", Data: data(t, `{"v":2}`)}); err != nil {
			return fmt.Errorf("put keep: %w", err)
		}
		if _, err := tx.Put(ctx, records, &storage.Object{ID: "new"}); err != nil {
			return fmt.Errorf("put new: %w", err)
		}
		if err := tx.SetPermissions(ctx, "/x", map[string][]string{"read": {"a"}}); err != nil {
			return fmt.Errorf("set permissions: %w", err)
		}
		if err := tx.AddUserPrincipal(ctx, "u", "p"); err != nil {
			return fmt.Errorf("add user principal: %w", err)
		}
		if err := written(tx, "/x", "u"); err != nil {
			return err
		}
		if err := tx.PurgeTree(ctx, "/buckets/b"); err != nil {
			return fmt.Errorf("purge: %w", err)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update returned %v, want the callback's error", err)
	}
	view(t, s, func(tx storage.Tx) error {
		o, err := tx.Get(ctx, records, "keep")
		if err != nil {
			return err
		}
		if fmt.Sprint(o.Data["v"]) != "1" {
			t.Errorf("rolled-back write visible: %v", o)
		}
		if _, err := tx.Get(ctx, records, "new"); !kerr.Is(err, kerr.NotFound) {
			t.Errorf("rolled-back create visible: %v", err)
		}
		ts, err := tx.Timestamp(ctx, records)
		if err != nil {
			return err
		}
		if ts != before {
			t.Errorf("timestamp moved on rollback: %d -> %d", before, ts)
		}
		p, err := tx.Permissions(ctx, "/x")
		if err != nil {
			return err
		}
		if len(p) != 0 {
			t.Error("rolled-back ACE visible")
		}
		u, err := tx.UserPrincipals(ctx, "u", false)
		if err != nil {
			return err
		}
		if len(u) != 0 {
			t.Error("rolled-back membership visible")
		}
		return nil
	})
}

func testFlush(t *testing.T, s storage.Storage) {
	update(t, s, func(tx storage.Tx) error {
		if _, err := tx.Put(ctx, records, &storage.Object{ID: "new"}); err != nil {
			return err
		}
		if err := tx.SetPermissions(ctx, "/buckets/b", map[string][]string{"write": {"a"}}); err != nil {
			return err
		}
		if err := tx.AddUserPrincipal(ctx, "u", "p"); err != nil {
			return err
		}
		if err := written(tx, "/buckets/b", "u"); err != nil {
			return err
		}
		return tx.Flush(ctx)
	})
	view(t, s, func(tx storage.Tx) error {
		all, err := tx.List(ctx, records, storage.ListOptions{IncludeDeleted: true})
		if err != nil {
			return err
		}
		ts, err := tx.Timestamp(ctx, records)
		if err != nil {
			return err
		}
		p, err := tx.Permissions(ctx, "/buckets/b")
		if err != nil {
			return err
		}
		u, err := tx.UserPrincipals(ctx, "u", false)
		if err != nil {
			return err
		}
		if len(all)+len(p)+len(u) != 0 || ts != 0 {
			t.Errorf("flush left objects %d, ts %d, acl %v, users %v", len(all), ts, p, u)
		}
		return nil
	})
}

func testReadOnly(t *testing.T, s storage.Storage) {
	err := s.View(ctx, func(tx storage.Tx) error {
		_, err := tx.Put(ctx, records, &storage.Object{ID: "a"})
		return err
	})
	if err == nil {
		t.Error("a write in View succeeded")
	}
}

func testSavepoint(t *testing.T, s storage.Storage) {
	boom := errors.New("boom")
	update(t, s, func(tx storage.Tx) error {
		if _, err := tx.Put(ctx, records, &storage.Object{ID: "before"}); err != nil {
			return err
		}
		// As in testRollback, a failed write is returned instead of boom.
		err := tx.Savepoint(ctx, func(tx storage.Tx) error {
			if _, err := tx.Put(ctx, records, &storage.Object{ID: "inside"}); err != nil {
				return fmt.Errorf("put inside: %w", err)
			}
			if err := tx.SetPermissions(ctx, "/x", map[string][]string{"read": {"a"}}); err != nil {
				return fmt.Errorf("set permissions: %w", err)
			}
			if _, err := tx.Get(ctx, records, "inside"); err != nil {
				return fmt.Errorf("written object not visible in its savepoint: %w", err)
			}
			return boom
		})
		if !errors.Is(err, boom) {
			return fmt.Errorf("savepoint returned %v, want the callback's error", err)
		}
		err = tx.Savepoint(ctx, func(tx storage.Tx) error {
			_, err := tx.Put(ctx, records, &storage.Object{ID: "kept"})
			return err
		})
		if err != nil {
			return err
		}
		_, err = tx.Put(ctx, records, &storage.Object{ID: "after"})
		return err
	})
	view(t, s, func(tx storage.Tx) error {
		all, err := tx.List(ctx, records, storage.ListOptions{Sort: []query.Sort{{Field: "id"}}})
		if err != nil {
			return err
		}
		if diff := cmp.Diff([]string{"after", "before", "kept"}, ids(all)); diff != "" {
			t.Errorf("after savepoints (-want +got):\n%s", diff)
		}
		p, err := tx.Permissions(ctx, "/x")
		if err != nil {
			return err
		}
		if len(p) != 0 {
			t.Errorf("rolled-back savepoint left ACEs: %v", p)
		}
		return nil
	})
}

// A deleted group's principal leaves no ACE behind: whoever re-creates the
// group must not inherit what was granted to the old one.
func testRemovePrincipalACEs(t *testing.T, s storage.Storage) {
	g := "/buckets/b/groups/g1"
	update(t, s, func(tx storage.Tx) error {
		if err := tx.SetPermissions(ctx, "/buckets/b/collections/c", map[string][]string{"read": {g, "alice"}, "write": {g}}); err != nil {
			return err
		}
		return tx.SetPermissions(ctx, "/buckets/other", map[string][]string{"write": {g}})
	})
	update(t, s, func(tx storage.Tx) error { return tx.RemovePrincipal(ctx, g) })
	view(t, s, func(tx storage.Tx) error {
		got, err := tx.Permissions(ctx, "/buckets/b/collections/c")
		if err != nil {
			return err
		}
		if diff := cmp.Diff(map[string][]string{"read": {"alice"}}, got); diff != "" {
			t.Errorf("ACL after RemovePrincipal (-want +got):\n%s", diff)
		}
		if got, err = tx.Permissions(ctx, "/buckets/other"); err != nil {
			return err
		}
		if len(got) != 0 {
			t.Errorf("ACL after RemovePrincipal: %v", got)
		}
		return nil
	})
}

// A list whose client went away stops with an Unavailable error instead
// of evaluating the rest of the collection.
func testListCanceled(t *testing.T, s storage.Storage) {
	update(t, s, func(tx storage.Tx) error {
		for i := 0; i < 600; i++ {
			if _, err := tx.Create(ctx, records, &storage.Object{ID: fmt.Sprintf("r%03d", i), Data: data(t, `{"n": 1}`)}); err != nil {
				return err
			}
		}
		return nil
	})
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	err := s.View(ctx, func(tx storage.Tx) error {
		_, err := tx.List(canceled, records, storage.ListOptions{Filters: []query.Filter{{Field: "n", Op: query.EQ, Value: json.Number("1")}}})
		return err
	})
	if !kerr.Is(err, kerr.Unavailable) {
		t.Fatalf("List with a canceled context: %v, want Unavailable", err)
	}
}

// A writer that waits for another to finish gives up when its context
// ends, with an Unavailable error, instead of waiting forever.
func testWriterGivesUp(t *testing.T, s storage.Storage) {
	hold := make(chan struct{})
	held := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.Update(ctx, func(tx storage.Tx) error {
			// Hold the write lock of the scope the second writer needs.
			if _, err := tx.Put(ctx, records, &storage.Object{ID: "held", Data: map[string]any{}}); err != nil {
				return err
			}
			close(held)
			<-hold
			return nil
		})
	}()
	<-held
	waiting, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Update(waiting, func(tx storage.Tx) error {
		_, err := tx.Put(waiting, records, &storage.Object{ID: "held", Data: map[string]any{}})
		return err
	})
	close(hold)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !kerr.Is(err, kerr.Unavailable) {
		t.Fatalf("blocked writer: %v, want Unavailable", err)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Fatalf("blocked writer waited %v", waited)
	}
}

// Locking a scope that has no timestamp gives it none: it stays 0, is not
// listed by Timestamps, and InitTimestamp still sets its floor (a backend
// may keep a placeholder where it locks).
func testLockScope(t *testing.T, s storage.Storage) {
	scope := storage.Scope{Parent: "/buckets/locked", Resource: "collection"}
	update(t, s, func(tx storage.Tx) error {
		if err := tx.LockScope(ctx, scope); err != nil {
			return err
		}
		ts, err := tx.Timestamp(ctx, scope)
		if err != nil {
			return err
		}
		if ts != 0 {
			t.Errorf("locked scope's timestamp %d in its transaction, want 0", ts)
		}
		return nil
	})
	view(t, s, func(tx storage.Tx) error {
		ts, err := tx.Timestamp(ctx, scope)
		if err != nil {
			return err
		}
		stamps, err := tx.Timestamps(ctx, "collection", []string{"/buckets/"})
		if err != nil {
			return err
		}
		if ts != 0 || len(stamps) != 0 {
			t.Errorf("after a lock: timestamp %d, timestamps %v; want none", ts, stamps)
		}
		return nil
	})
	var floor int64
	update(t, s, func(tx storage.Tx) (err error) {
		if err := tx.LockScope(ctx, scope); err != nil {
			return err
		}
		floor, err = tx.InitTimestamp(ctx, scope)
		return err
	})
	if floor == 0 {
		t.Fatal("InitTimestamp after a lock set no floor")
	}
	var o *storage.Object
	update(t, s, func(tx storage.Tx) (err error) {
		if err := tx.LockScope(ctx, scope); err != nil {
			return err
		}
		o, err = tx.Put(ctx, scope, &storage.Object{ID: "c"})
		return err
	})
	if o.LastModified <= floor {
		t.Errorf("write after lock: timestamp %d not after floor %d", o.LastModified, floor)
	}
}

// testUnstorable: a value the database cannot store (PostgreSQL's jsonb
// has no \u0000, nor numbers beyond numeric's range) is refused as
// invalid input, and the transaction goes on; a backend that stores it
// reads it back unchanged.
func testUnstorable(t *testing.T, s storage.Storage) {
	for i, js := range []string{`{"s": "a\u0000b"}`, `{"n": 1e999999}`} {
		id := "u" + strconv.Itoa(i)
		var stored bool
		update(t, s, func(tx storage.Tx) error {
			err := tx.Savepoint(ctx, func(tx storage.Tx) error {
				_, err := tx.Put(ctx, records, &storage.Object{ID: id, Data: data(t, js)})
				return err
			})
			switch {
			case err == nil:
				stored = true
			case !kerr.Is(err, kerr.Invalid):
				t.Errorf("%s: %v, want a kerr.Invalid error", js, err)
			}
			_, err = tx.Put(ctx, records, &storage.Object{ID: id + "-after"})
			return err
		})
		view(t, s, func(tx storage.Tx) error {
			if _, err := tx.Get(ctx, records, id+"-after"); err != nil {
				t.Errorf("%s: the transaction did not go on: %v", js, err)
			}
			if !stored {
				return nil
			}
			o, err := tx.Get(ctx, records, id)
			if err != nil {
				return err
			}
			if !query.Equal(o.Data, data(t, js)) {
				t.Errorf("%s read back as %v", js, o.Data)
			}
			return nil
		})
	}
}
