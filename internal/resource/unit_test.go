package resource_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"kintogo/internal/config"
	"kintogo/internal/events"
	"kintogo/internal/kerr"
	"kintogo/internal/model"
	"kintogo/internal/permission"
	"kintogo/internal/query"
	"kintogo/internal/resource"
	"kintogo/internal/storage"
	"kintogo/internal/storage/storetest"
)

// backend is one storage under test; retried is true when every Update
// runs its function twice.
type backend struct {
	store   storage.Storage
	retried bool
	runs    *atomic.Int64 // Update runs of a retried store
}

// backends are every storage backend, each also run twice per write
// transaction (retried): PostgreSQL too when KINTOGO_TEST_POSTGRES names a
// test database.
func backends() map[string]func(t *testing.T) backend {
	retry := func(open storetest.Open) func(t *testing.T) backend {
		return func(t *testing.T) backend {
			runs := &atomic.Int64{}
			return backend{store: storetest.Retried(open(t), runs), retried: true, runs: runs}
		}
	}
	plain := func(open storetest.Open) func(t *testing.T) backend {
		return func(t *testing.T) backend { return backend{store: open(t)} }
	}
	all := map[string]func(t *testing.T) backend{
		"memory":         plain(storetest.Memory),
		"memory-retried": retry(storetest.Memory),
		"sqlite":         plain(storetest.SQLite),
		"sqlite-retried": retry(storetest.SQLite),
	}
	if pg := storetest.PostgreSQL(); pg != nil {
		all["postgresql"] = plain(pg)
	}
	return all
}

// recorder collects what the Feed delivers of this node's commits: one
// batch per commit, without the first timestamps of scopes (ID "").
type recorder struct {
	mu      sync.Mutex
	batches [][]events.Event
}

func (r *recorder) hook(b events.Batch) {
	if !b.Local {
		return
	}
	var evs []events.Event
	for _, ev := range b.Events {
		if ev.ID != "" {
			evs = append(evs, ev)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, evs)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.batches)
}

// since returns the batches delivered after the first n.
func (r *recorder) since(n int) [][]events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]events.Event(nil), r.batches[n:]...)
}

// fixture is an engine over one backend, with a recorder of its Feed.
type fixture struct {
	t     *testing.T
	ctx   context.Context
	b     backend
	e     *resource.Engine
	rec   *recorder
	alice *resource.Caller
}

func newFixture(t *testing.T, b backend, hooks ...resource.Hooks) *fixture {
	t.Helper()
	settings, err := config.FromMap(map[string]string{"bucket_create_principals": "system.Everyone"})
	if err != nil {
		t.Fatal(err)
	}
	e := resource.New(b.store, permission.New(settings), resource.Config{ExplicitPermissions: true})
	rec := &recorder{}
	for _, h := range hooks {
		e.Hook(h)
	}
	e.Feed().Subscribe(rec.hook)
	return &fixture{t: t, ctx: context.Background(), b: b, e: e, rec: rec, alice: resource.NewCaller("basicauth:alice")}
}

// eachBackend runs fn on every backend.
func eachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	for name, open := range backends() {
		t.Run(name, func(t *testing.T) { fn(t, open(t)) })
	}
}

var (
	bucketB    = model.Path{Kind: model.Bucket, ID: "b"}
	collC      = model.Path{Kind: model.Collection, BucketID: "b", ID: "c"}
	recordsOfC = model.Path{Kind: model.Record, BucketID: "b", CollectionID: "c"}
)

func recordPath(id string) model.Path { return recordsOfC.WithID(id) }

func (f *fixture) write(ctx context.Context, p model.Path, data map[string]any, pre resource.Preconditions) (resource.Written, error) {
	return f.e.Put(ctx, resource.WriteRequest{Request: resource.Request{Path: p, Caller: f.alice, Pre: pre}, Body: &resource.Body{Data: data}})
}

func (f *fixture) mustPut(p model.Path, data map[string]any) resource.Written {
	f.t.Helper()
	w, err := f.write(f.ctx, p, data, resource.Preconditions{})
	if err != nil {
		f.t.Fatalf("PUT %s: %v", p.URI(), err)
	}
	return w
}

// setup creates bucket b and collection c.
func (f *fixture) setup() {
	f.t.Helper()
	f.mustPut(bucketB, nil)
	f.mustPut(collC, nil)
}

// stored reads an object from storage directly (nil when missing).
func (f *fixture) stored(p model.Path) *storage.Object {
	f.t.Helper()
	var out *storage.Object
	err := f.b.store.View(f.ctx, func(tx storage.Tx) error {
		o, err := tx.Get(f.ctx, p.Scope(), p.ID)
		if kerr.Is(err, kerr.NotFound) {
			return nil
		}
		out = o
		return err
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

func (f *fixture) storedPerms(uri string) map[string][]string {
	f.t.Helper()
	var out map[string][]string
	if err := f.b.store.View(f.ctx, func(tx storage.Tx) error {
		var err error
		out, err = tx.Permissions(f.ctx, uri)
		return err
	}); err != nil {
		f.t.Fatal(err)
	}
	return out
}

// wantAbsent checks that the record is neither readable through the engine
// nor in storage, and has no ACEs left.
func (f *fixture) wantAbsent(id string) {
	f.t.Helper()
	p := recordPath(id)
	if _, err := f.e.Get(f.ctx, resource.Request{Path: p, Caller: f.alice}); !kerr.Is(err, kerr.NotFound) {
		f.t.Errorf("engine Get %s after a failed write: %v, want NotFound", id, err)
	}
	if o := f.stored(p); o != nil {
		f.t.Errorf("record %s stored after a failed write: %+v", id, o)
	}
	if perms := f.storedPerms(p.URI()); len(perms) != 0 {
		f.t.Errorf("ACEs of %s left after a failed write: %v", id, perms)
	}
}

func (f *fixture) wantPresent(id string) *storage.Object {
	f.t.Helper()
	got, err := f.e.Get(f.ctx, resource.Request{Path: recordPath(id), Caller: f.alice})
	if err != nil {
		f.t.Fatalf("engine Get %s: %v", id, err)
	}
	if f.stored(recordPath(id)) == nil {
		f.t.Fatalf("record %s missing from storage", id)
	}
	return got.Object
}

// wantBatches checks that the Feed delivered exactly one batch per
// committed unit since the first n: want lists, per batch, its events as
// "write|delete resource id".
func (f *fixture) wantBatches(n int, want ...[]string) {
	f.t.Helper()
	got := f.rec.since(n)
	var gotS [][]string
	for _, b := range got {
		var s []string
		for _, ev := range b {
			action := "write"
			if ev.Deleted {
				action = "delete"
			}
			s = append(s, action+" "+ev.ResourceName+" "+ev.ID)
		}
		gotS = append(gotS, s)
	}
	if fmt.Sprint(gotS) != fmt.Sprint(want) {
		f.t.Errorf("delivered %q, want %q", gotS, want)
	}
}

var errHook = errors.New("hook refuses")

// failOn is an InTransaction hook failing the changes of records whose data
// has "fail": true, with err.
func failOn(err error) func(ctx context.Context, u *resource.Unit, ch resource.Change) error {
	return func(ctx context.Context, u *resource.Unit, ch resource.Change) error {
		if ch.Path.Kind == model.Record && ch.Object != nil && ch.Object.Data["fail"] == true {
			return err
		}
		return nil
	}
}

// markers is where the hooks of these tests write, in the unit's
// transaction.
var markers = storage.Scope{Parent: "/markers", Resource: "marker"}

// A failing InTransaction hook fails the write: the engine returns its
// error and nothing of the write is stored (object, ACEs, what other hooks
// wrote in the transaction), and no event goes out. The hooks see the
// change fully written, in the unit's transaction.
func TestInTransactionHookFailureFailsTheWrite(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		var seen []string
		var mu sync.Mutex
		observe := func(ctx context.Context, u *resource.Unit, ch resource.Change) error {
			if ch.Path.Kind != model.Record {
				return nil
			}
			// The object and its permissions are written, in u.Tx.
			o, err := u.Tx.Get(ctx, ch.Path.Scope(), ch.Path.ID)
			if err != nil {
				return fmt.Errorf("hook cannot see the record in its transaction: %w", err)
			}
			perms, err := u.Tx.Permissions(ctx, ch.Path.URI())
			if err != nil {
				return err
			}
			mu.Lock()
			seen = append(seen, fmt.Sprintf("%s ts=%v same=%v writers=%v caller=%s", ch.Path.ID, o.LastModified == ch.Object.LastModified,
				o.Data["fail"] == ch.Object.Data["fail"], perms["write"], ch.Caller.UserID))
			mu.Unlock()
			// Whatever a hook writes is part of the unit.
			_, err = u.Tx.Put(ctx, markers, &storage.Object{ID: ch.Path.ID, Data: map[string]any{}})
			return err
		}
		f := newFixture(t, b, resource.Hooks{InTransaction: []func(context.Context, *resource.Unit, resource.Change) error{observe, failOn(errHook)}})
		f.setup()
		n := f.rec.count()

		// PUT that fails.
		_, err := f.write(f.ctx, recordPath("r1"), map[string]any{"fail": true}, resource.Preconditions{})
		if !errors.Is(err, errHook) {
			t.Fatalf("PUT with a failing hook: %v, want the hook's error", err)
		}
		f.wantAbsent("r1")
		// POST that fails.
		_, err = f.e.Create(f.ctx, resource.WriteRequest{Request: resource.Request{Path: recordsOfC, Caller: f.alice},
			Body: &resource.Body{Data: map[string]any{"id": "r2", "fail": true}}})
		if !errors.Is(err, errHook) {
			t.Fatalf("POST with a failing hook: %v, want the hook's error", err)
		}
		f.wantAbsent("r2")
		// A failing update leaves the previous version.
		f.mustPut(recordPath("r3"), map[string]any{"v": json.Number("1")})
		n3 := f.rec.count()
		_, err = f.write(f.ctx, recordPath("r3"), map[string]any{"v": json.Number("2"), "fail": true}, resource.Preconditions{})
		if !errors.Is(err, errHook) {
			t.Fatalf("update with a failing hook: %v", err)
		}
		if got := f.wantPresent("r3"); got.Data["v"] != json.Number("1") || got.Data["fail"] != nil {
			t.Errorf("a failed update changed the record: %v", got.Data)
		}
		f.wantBatches(n3) // no event for the failed update

		var markersLeft []string
		f.b.store.View(f.ctx, func(tx storage.Tx) error {
			objs, err := tx.List(f.ctx, markers, storage.ListOptions{})
			for _, o := range objs {
				markersLeft = append(markersLeft, o.ID)
			}
			return err
		})
		if strings.Join(markersLeft, ",") != "r3" {
			t.Errorf("hook writes kept: %v, want only r3's (the failed units' are rolled back)", markersLeft)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, s := range seen {
			if !strings.Contains(s, "ts=true same=true writers=[basicauth:alice] caller=basicauth:alice") {
				t.Errorf("hook saw %s: want the written object and its permissions", s)
			}
		}
		if len(seen) == 0 {
			t.Error("the InTransaction hook never ran")
		}
		// One event only: r3's creation.
		f.wantBatches(n, []string{"write record r3"})
	})
}

// BeforeWrite runs in the unit before the object is written (a creation
// does not exist yet, an update still has its old data), before the
// InTransaction hooks of the same unit; its failure fails the write.
func TestBeforeWriteRunsBeforeTheWrite(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		var mu sync.Mutex
		before := map[*resource.Unit][]string{}
		var problems []string
		bw := func(ctx context.Context, u *resource.Unit, p model.Path) error {
			if p.Kind != model.Record {
				return nil
			}
			o, err := u.Tx.Get(ctx, p.Scope(), p.ID)
			state := "missing"
			if err == nil {
				state = fmt.Sprint(o.Data["v"])
			} else if !kerr.Is(err, kerr.NotFound) {
				return err
			}
			mu.Lock()
			before[u] = append(before[u], p.ID+"="+state)
			mu.Unlock()
			if p.ID == "refused" {
				return errHook
			}
			return nil
		}
		it := func(ctx context.Context, u *resource.Unit, ch resource.Change) error {
			if ch.Path.Kind != model.Record {
				return nil
			}
			mu.Lock()
			defer mu.Unlock()
			if len(before[u]) == 0 || !strings.HasPrefix(before[u][len(before[u])-1], ch.Path.ID+"=") {
				problems = append(problems, "InTransaction of "+ch.Path.ID+" without BeforeWrite in its unit first")
			}
			return nil
		}
		f := newFixture(t, b, resource.Hooks{
			BeforeWrite:   []func(context.Context, *resource.Unit, model.Path) error{bw},
			InTransaction: []func(context.Context, *resource.Unit, resource.Change) error{it},
		})
		f.setup()
		f.mustPut(recordPath("r1"), map[string]any{"v": json.Number("1")})
		f.mustPut(recordPath("r1"), map[string]any{"v": json.Number("2")})
		if _, err := f.e.Patch(f.ctx, resource.WriteRequest{Request: resource.Request{Path: recordPath("r1"), Caller: f.alice},
			Body: &resource.Body{Data: map[string]any{"v": json.Number("3")}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.e.Delete(f.ctx, resource.Request{Path: recordPath("r1"), Caller: f.alice}, ""); err != nil {
			t.Fatal(err)
		}
		n := f.rec.count()
		if _, err := f.write(f.ctx, recordPath("refused"), map[string]any{}, resource.Preconditions{}); !errors.Is(err, errHook) {
			t.Fatalf("PUT refused by BeforeWrite: %v", err)
		}
		f.wantAbsent("refused")
		f.wantBatches(n)

		mu.Lock()
		defer mu.Unlock()
		// Each unit saw the state before its own write (a retried run sees
		// the same, its first run being rolled back).
		var got []string
		for _, seen := range before {
			got = append(got, strings.Join(seen, ";"))
		}
		sort.Strings(got)
		want := []string{"r1=1", "r1=2", "r1=3", "r1=missing", "refused=missing"}
		if b.retried {
			want = []string{"r1=1", "r1=1", "r1=2", "r1=2", "r1=3", "r1=3", "r1=missing", "r1=missing", "refused=missing"}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("BeforeWrite saw %v, want %v", got, want)
		}
		for _, p := range problems {
			t.Error(p)
		}
	})
}

// The Feed delivers exactly one batch per committed unit, with one event
// per change the transaction recorded, and nothing for units that did not
// commit (refused by a precondition, a permission, a hook), even when the
// storage ran the unit's function twice.
func TestCommittedEvents(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b, resource.Hooks{InTransaction: []func(context.Context, *resource.Unit, resource.Change) error{failOn(errHook)}})
		if b.retried {
			b.runs.Store(0)
		}
		w := f.mustPut(bucketB, nil)
		if b.retried && b.runs.Load() != 2 {
			t.Fatalf("the retried store ran the unit %d times", b.runs.Load())
		}
		f.wantBatches(0, []string{"write bucket b"})
		if ev := f.rec.since(0)[0][0]; ev.BucketID != "b" || ev.Timestamp != w.Object.LastModified {
			t.Errorf("bucket event %+v, want bucket b at %d", ev, w.Object.LastModified)
		}
		f.mustPut(collC, nil)
		f.wantBatches(1, []string{"write collection c"})
		n := f.rec.count()
		created := f.mustPut(recordPath("r1"), map[string]any{"v": json.Number("1")})
		updated := f.mustPut(recordPath("r1"), map[string]any{"v": json.Number("2")})
		patched, err := f.e.Patch(f.ctx, resource.WriteRequest{Request: resource.Request{Path: recordPath("r1"), Caller: f.alice},
			Body: &resource.Body{Data: map[string]any{"v": json.Number("3")}}})
		if err != nil {
			t.Fatal(err)
		}
		tomb, err := f.e.Delete(f.ctx, resource.Request{Path: recordPath("r1"), Caller: f.alice}, "")
		if err != nil {
			t.Fatal(err)
		}
		f.wantBatches(n, []string{"write record r1"}, []string{"write record r1"}, []string{"write record r1"}, []string{"delete record r1"})
		batches := f.rec.since(n)
		for i, ts := range []int64{created.Object.LastModified, updated.Object.LastModified, patched.Object.LastModified, tomb.LastModified} {
			if len(batches) > i && len(batches[i]) == 1 {
				ev := batches[i][0]
				if ev.Timestamp != ts || ev.BucketID != "b" || ev.CollectionID != "c" {
					t.Errorf("event %d: %+v, want b/c at %d", i, ev, ts)
				}
			}
		}

		// Rolled back: no event.
		f.mustPut(recordPath("r2"), map[string]any{"v": json.Number("1")})
		r2 := f.wantPresent("r2")
		n = f.rec.count()
		anyMatch := resource.Preconditions{IfNoneMatch: resource.Precondition{Set: true, Any: true}}
		if _, err := f.write(f.ctx, recordPath("r2"), map[string]any{"v": json.Number("9")}, anyMatch); !kerr.Is(err, kerr.PreconditionFailed) {
			t.Errorf("If-None-Match: * on an existing record: %v", err)
		}
		stale := resource.Preconditions{IfMatch: resource.Precondition{Set: true, Timestamp: r2.LastModified - 1}}
		if _, err := f.write(f.ctx, recordPath("r2"), map[string]any{"v": json.Number("9")}, stale); !kerr.Is(err, kerr.PreconditionFailed) {
			t.Errorf("stale If-Match: %v", err)
		}
		if _, err := f.e.Delete(f.ctx, resource.Request{Path: recordPath("r2"), Caller: f.alice, Pre: stale}, ""); !kerr.Is(err, kerr.PreconditionFailed) {
			t.Errorf("DELETE with a stale If-Match: %v", err)
		}
		if _, err := f.e.Delete(f.ctx, resource.Request{Path: recordPath("r2"), Caller: resource.NewCaller("basicauth:bob")}, ""); !kerr.Is(err, kerr.Forbidden) {
			t.Errorf("DELETE by someone else: %v", err)
		}
		if _, err := f.write(f.ctx, recordPath("r3"), map[string]any{"fail": true}, resource.Preconditions{}); !errors.Is(err, errHook) {
			t.Errorf("write failed by a hook: %v", err)
		}
		f.wantBatches(n)
		if got := f.wantPresent("r2"); got.Data["v"] != json.Number("1") {
			t.Errorf("refused writes changed r2: %v", got.Data)
		}

		// A plural DELETE of N records: one call, N events.
		for i := 0; i < 4; i++ {
			f.mustPut(recordPath(fmt.Sprint("p", i)), nil)
		}
		n = f.rec.count()
		q, err := query.Parse(nil, query.Schema{}, f.e.NowMS())
		if err != nil {
			t.Fatal(err)
		}
		del, err := f.e.DeleteList(f.ctx, resource.ListRequest{Request: resource.Request{Path: recordsOfC, Caller: f.alice}, Query: q})
		if err != nil {
			t.Fatal(err)
		}
		batches = f.rec.since(n)
		if len(batches) != 1 {
			t.Fatalf("plural DELETE: %d batches, want 1", len(batches))
		}
		var ids []string
		for _, ev := range batches[0] {
			if !ev.Deleted || ev.ResourceName != "record" {
				t.Errorf("plural DELETE event %+v", ev)
			}
			ids = append(ids, ev.ID)
		}
		sort.Strings(ids)
		if strings.Join(ids, ",") != "p0,p1,p2,p3,r2" {
			t.Errorf("plural DELETE events for %v, want p0..p3 and r2 once each", ids)
		}
		if len(del.Tombstones) != 5 {
			t.Errorf("plural DELETE answered %d tombstones, want 5", len(del.Tombstones))
		}

		// Ensure of two objects: one call, two events; of existing ones:
		// no call.
		n = f.rec.count()
		other := model.Path{Kind: model.Bucket, ID: "other"}
		otherColl := model.Path{Kind: model.Collection, BucketID: "other", ID: "oc"}
		made, err := f.e.Ensure(f.ctx, f.alice, other, otherColl)
		if err != nil {
			t.Fatal(err)
		}
		if len(made) != 2 {
			t.Errorf("Ensure made %d objects, want 2", len(made))
		}
		f.wantBatches(n, []string{"write bucket other", "write collection oc"})
		n = f.rec.count()
		if made, err := f.e.Ensure(f.ctx, f.alice, other, otherColl); err != nil || len(made) != 0 {
			t.Errorf("Ensure of existing objects: %v, %v", made, err)
		}
		f.wantBatches(n)
	})
}

// A unit nested in another (a batch's sub-request) delivers its events
// with its parent's, once the parent commits; none when the parent fails
// after it. A nested unit that fails leaves the parent's other writes in
// place and undoes its own.
func TestNestedUnits(t *testing.T) {
	errInvalid := kerr.InvalidParam("body", kerr.Name("data"), "refused by a hook")
	eachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b, resource.Hooks{InTransaction: []func(context.Context, *resource.Unit, resource.Change) error{failOn(errInvalid)}})
		f.setup()

		// Events wait for the outer unit.
		n := f.rec.count()
		var early []int
		_, err := resource.Write(f.ctx, f.e, func(u *resource.Unit) (struct{}, error) {
			ctx := resource.WithUnit(f.ctx, u)
			early = early[:0]
			for _, id := range []string{"a1", "a2"} {
				if _, err := f.write(ctx, recordPath(id), nil, resource.Preconditions{}); err != nil {
					return struct{}{}, err
				}
				early = append(early, f.rec.count()-n)
			}
			// What the nested units wrote is visible in the outer one.
			got, err := f.e.Get(ctx, resource.Request{Path: recordPath("a1"), Caller: f.alice})
			if err != nil || got.Object.ID != "a1" {
				return struct{}{}, fmt.Errorf("nested write not visible in the unit: %v", err)
			}
			return struct{}{}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(early) != "[0 0]" {
			t.Errorf("events delivered before the outer unit committed: %v", early)
		}
		f.wantBatches(n, []string{"write record a1", "write record a2"})
		f.wantPresent("a1")
		f.wantPresent("a2")

		// The outer unit fails after its nested ones: nothing.
		n = f.rec.count()
		errOuter := errors.New("outer fails")
		_, err = resource.Write(f.ctx, f.e, func(u *resource.Unit) (struct{}, error) {
			ctx := resource.WithUnit(f.ctx, u)
			if _, err := f.write(ctx, recordPath("b1"), nil, resource.Preconditions{}); err != nil {
				return struct{}{}, err
			}
			if _, err := f.e.Delete(ctx, resource.Request{Path: recordPath("a1"), Caller: f.alice}, ""); err != nil {
				return struct{}{}, err
			}
			return struct{}{}, errOuter
		})
		if !errors.Is(err, errOuter) {
			t.Fatalf("outer unit: %v", err)
		}
		f.wantBatches(n)
		f.wantAbsent("b1")
		f.wantPresent("a1")

		// A nested unit fails with a 4xx: its own writes are undone, the
		// others stay, the outer unit commits with their events only.
		n = f.rec.count()
		var nestedErrs []error
		var retry error
		_, err = resource.Write(f.ctx, f.e, func(u *resource.Unit) (struct{}, error) {
			ctx := resource.WithUnit(f.ctx, u)
			nestedErrs = nestedErrs[:0]
			if _, err := f.write(ctx, recordPath("c1"), nil, resource.Preconditions{}); err != nil {
				return struct{}{}, err
			}
			// Written, then refused by the hook.
			_, err := f.write(ctx, recordPath("c2"), map[string]any{"fail": true}, resource.Preconditions{})
			nestedErrs = append(nestedErrs, err)
			// An update of an existing record, written, then refused.
			_, err = f.write(ctx, recordPath("a2"), map[string]any{"changed": true, "fail": true}, resource.Preconditions{})
			nestedErrs = append(nestedErrs, err)
			// A nested unit of nested units, failing after they succeeded.
			_, err = resource.Write(ctx, f.e, func(nu *resource.Unit) (int, error) {
				nctx := resource.WithUnit(ctx, nu)
				if _, err := f.write(nctx, recordPath("c3"), nil, resource.Preconditions{}); err != nil {
					return 0, err
				}
				if _, err := f.e.Delete(nctx, resource.Request{Path: recordPath("a1"), Caller: f.alice}, ""); err != nil {
					return 0, err
				}
				return 0, kerr.E(kerr.Invalid, "inner refused")
			})
			nestedErrs = append(nestedErrs, err)
			if _, err := f.write(ctx, recordPath("c4"), nil, resource.Preconditions{}); err != nil {
				return struct{}{}, err
			}
			retry = u.Retry()
			return struct{}{}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range nestedErrs {
			if !kerr.Is(e, kerr.Invalid) {
				t.Errorf("nested failure %d: %v, want a 400", i, e)
			}
		}
		if retry != nil {
			t.Errorf("a 4xx in a nested unit asks for a retry: %v", retry)
		}
		f.wantBatches(n, []string{"write record c1", "write record c4"})
		f.wantPresent("c1")
		f.wantPresent("c4")
		f.wantAbsent("c2")
		f.wantAbsent("c3")
		f.wantPresent("a1") // its deletion was undone
		if got := f.wantPresent("a2"); got.Data["changed"] != nil {
			t.Errorf("a failed nested update stayed: %v", got.Data)
		}
		if perms := f.storedPerms(recordPath("a1").URI()); len(perms["write"]) == 0 {
			t.Errorf("the undone deletion of a1 left it without ACEs: %v", perms)
		}
	})
}

// A unit the storage ran twice answers what the committed run computed.
func TestRetriedUnitsAnswerOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b)
		f.setup()
		if b.retried {
			b.runs.Store(0)
		}
		w := f.mustPut(recordPath("r1"), map[string]any{"v": json.Number("1")})
		if !w.Created {
			t.Errorf("PUT that creates: Created false (200), want true (201)")
		}
		if b.retried && b.runs.Load() != 2 {
			t.Fatalf("the store ran the unit %d times, want 2", b.runs.Load())
		}
		if got := f.wantPresent("r1"); got.LastModified != w.Object.LastModified || got.Data["v"] != json.Number("1") {
			t.Errorf("PUT answered %+v, stored %+v", w.Object, got)
		}
		w = f.mustPut(recordPath("r1"), map[string]any{"v": json.Number("2")})
		if w.Created {
			t.Errorf("second PUT: Created true (201), want false (200)")
		}
		if got := f.wantPresent("r1"); got.LastModified != w.Object.LastModified || got.Data["v"] != json.Number("2") {
			t.Errorf("PUT answered %+v, stored %+v", w.Object, got)
		}

		// POST without an id: one new object, the one answered.
		q, err := query.Parse(nil, query.Schema{}, f.e.NowMS())
		if err != nil {
			t.Fatal(err)
		}
		n := f.rec.count()
		cw, err := f.e.Create(f.ctx, resource.WriteRequest{Request: resource.Request{Path: recordsOfC, Caller: f.alice},
			Body: &resource.Body{Data: map[string]any{"title": "new"}}})
		if err != nil {
			t.Fatal(err)
		}
		if !cw.Created {
			t.Errorf("POST: Created false, want true")
		}
		l, err := f.e.List(f.ctx, resource.ListRequest{Request: resource.Request{Path: recordsOfC, Caller: f.alice}, Query: q})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, o := range l.Objects {
			ids = append(ids, o.ID)
		}
		sort.Strings(ids)
		want := []string{cw.Object.ID, "r1"}
		sort.Strings(want)
		if fmt.Sprint(ids) != fmt.Sprint(want) {
			t.Errorf("records after one POST: %v, want %v (the POST's answer and r1)", ids, want)
		}
		if got := f.wantPresent(cw.Object.ID); got.LastModified != cw.Object.LastModified || got.Data["title"] != "new" {
			t.Errorf("POST answered %+v, stored %+v", cw.Object, got)
		}
		f.wantBatches(n, []string{"write record " + cw.Object.ID})
		// A POST naming an existing object answers it, not created.
		again, err := f.e.Create(f.ctx, resource.WriteRequest{Request: resource.Request{Path: recordsOfC, Caller: f.alice},
			Body: &resource.Body{Data: map[string]any{"id": cw.Object.ID}}})
		if err != nil || again.Created || again.Object.LastModified != cw.Object.LastModified {
			t.Errorf("POST of an existing id: %+v, %v", again, err)
		}

		// A plural DELETE: each tombstone once.
		f.mustPut(recordPath("r2"), nil)
		del, err := f.e.DeleteList(f.ctx, resource.ListRequest{Request: resource.Request{Path: recordsOfC, Caller: f.alice}, Query: q})
		if err != nil {
			t.Fatal(err)
		}
		ids = ids[:0]
		var maxTS int64
		for _, tomb := range del.Tombstones {
			if !tomb.Deleted {
				t.Errorf("not a tombstone: %+v", tomb)
			}
			ids = append(ids, tomb.ID)
			maxTS = max(maxTS, tomb.LastModified)
		}
		sort.Strings(ids)
		want = []string{cw.Object.ID, "r1", "r2"}
		sort.Strings(want)
		if fmt.Sprint(ids) != fmt.Sprint(want) {
			t.Errorf("plural DELETE answered %v, want %v once each", ids, want)
		}
		if del.Timestamp != maxTS {
			t.Errorf("plural DELETE timestamp %d, want its newest tombstone's %d", del.Timestamp, maxTS)
		}
		l, err = f.e.List(f.ctx, resource.ListRequest{Request: resource.Request{Path: recordsOfC, Caller: f.alice}, Query: q})
		if err != nil || len(l.Objects) != 0 {
			t.Errorf("records left after the plural DELETE: %v, %v", l.Objects, err)
		}
		if l.Timestamp != del.Timestamp {
			t.Errorf("list timestamp %d after a plural DELETE answering %d", l.Timestamp, del.Timestamp)
		}
	})
}
