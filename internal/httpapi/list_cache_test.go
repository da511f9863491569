package httpapi_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"kintogo/internal/httpapi"
	"kintogo/internal/storage"
	"kintogo/internal/storage/storetest"
)

// ids lists the ids of a list answer, sorted.
func listIDs(r *response) []string {
	var out []string
	for _, item := range r.list("data") {
		out = append(out, item.(map[string]any)["id"].(string))
	}
	sort.Strings(out)
	return out
}

func sameIDs(a []string, b ...string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Records lists are answered from the answer cache, which must never show
// one caller what another may read, nor an answer older than the data:
// each caller gets its own answer, and every write of the collection, of
// its permissions, of its bucket or of a group shows at once.
func TestRecordsListCacheFollowsCallersAndChanges(t *testing.T) {
	eachBackend(t, nil, func(t *testing.T, c *client) {
		const alice, bob = "alice:pw", "bob:pw"
		records := "/v1/buckets/b/collections/c/records"
		bobID := c.get("/v1/", bob).must(t, 200).str("user.id")
		c.put("/v1/buckets/b", alice, nil).must(t, 201)
		c.put("/v1/buckets/b/collections/c", alice, nil).must(t, 201)
		c.put(records+"/shared", alice, map[string]any{"data": map[string]any{"n": 1}, "permissions": map[string]any{"read": []string{bobID}}}).must(t, 201)
		c.put(records+"/private", alice, map[string]any{"data": map[string]any{"n": 2}}).must(t, 201)
		for i := 0; i < 3; i++ { // the first computes, the others are served
			if got := listIDs(c.get(records, alice).must(t, 200)); !sameIDs(got, "private", "shared") {
				t.Fatalf("alice sees %v", got)
			}
			if got := listIDs(c.get(records, bob).must(t, 200)); !sameIDs(got, "shared") {
				t.Fatalf("bob sees %v", got)
			}
			c.get(records, "").wantError(t, 401, 104)
		}
		// A new record.
		c.put(records+"/later", alice, map[string]any{"data": map[string]any{"n": 3}}).must(t, 201)
		if got := listIDs(c.get(records, alice).must(t, 200)); !sameIDs(got, "later", "private", "shared") {
			t.Fatalf("after a write alice sees %v", got)
		}
		// A group that gets bob the collection.
		c.put("/v1/buckets/b/groups/readers", alice, map[string]any{"data": map[string]any{"members": []string{bobID}}}).must(t, 201)
		if got := listIDs(c.get(records, bob).must(t, 200)); !sameIDs(got, "shared") {
			t.Fatalf("bob sees %v before the grant", got)
		}
		c.do(req{method: "PATCH", path: "/v1/buckets/b/collections/c", auth: alice, body: map[string]any{"permissions": map[string]any{"read": []string{"/buckets/b/groups/readers"}}}}).must(t, 200)
		if got := listIDs(c.get(records, bob).must(t, 200)); !sameIDs(got, "later", "private", "shared") {
			t.Fatalf("bob sees %v after the grant", got)
		}
		// Out of the group again.
		c.put("/v1/buckets/b/groups/readers", alice, map[string]any{"data": map[string]any{"members": []string{}}}).must(t, 200)
		if got := listIDs(c.get(records, bob).must(t, 200)); !sameIDs(got, "shared") {
			t.Fatalf("bob sees %v out of the group", got)
		}
		// Preconditions are answered for the current timestamp.
		r := c.get(records, alice).must(t, 200)
		c.do(req{method: "GET", path: records, auth: alice, header: map[string]string{"If-None-Match": r.header.Get("ETag")}}).must(t, 304)
		c.put(records+"/newest", alice, nil).must(t, 201)
		c.do(req{method: "GET", path: records, auth: alice, header: map[string]string{"If-None-Match": r.header.Get("ETag")}}).must(t, 200)
		// The bucket's deletion.
		c.do(req{method: "DELETE", path: "/v1/buckets/b", auth: alice}).must(t, 200)
		c.get(records, alice).wantError(t, 403, 121)
	})
}

// A list whose scope has no timestamp (a collection written before
// collections got one at creation) answers the clock's: that answer is not
// kept, or its ETag would stop moving.
func TestUnwrittenListIsNotKept(t *testing.T) {
	eachStore(t, nil, func(t *testing.T, c *client, store storage.Storage) {
		ctx := context.Background()
		if err := store.Update(ctx, func(tx storage.Tx) error {
			if _, err := tx.Put(ctx, storage.Scope{Resource: "bucket"}, &storage.Object{ID: "b"}); err != nil {
				return err
			}
			if _, err := tx.Put(ctx, storage.Scope{Parent: "/buckets/b", Resource: "collection"}, &storage.Object{ID: "c"}); err != nil {
				return err
			}
			return tx.SetPermissions(ctx, "/buckets/b", map[string][]string{"read": {"system.Everyone"}})
		}); err != nil {
			t.Fatal(err)
		}
		records := "/v1/buckets/b/collections/c/records"
		first := c.get(records, "alice:pw").must(t, 200).etag()
		time.Sleep(5 * time.Millisecond)
		if again := c.get(records, "alice:pw").must(t, 200).etag(); again == first {
			t.Fatalf("the ETag of a list never written stays %s", first)
		}
	})
}

// Nodes sharing a PostgreSQL database see each other's record writes at
// once, even before (here: without) the announcement that tells their
// caches: the answer cache confirms the collection's timestamp.
func TestClusterNodesServeEachOthersRecords(t *testing.T) {
	open := storetest.PostgreSQL()
	if open == nil {
		t.Skip("KINTOGO_TEST_POSTGRES is not set")
	}
	store := open(t)
	a := newClientWith(t, store, nil, httpapi.Options{Version: "test"})
	b := newClientWith(t, store, nil, httpapi.Options{Version: "test"})
	records := "/v1/buckets/b/collections/c/records"
	a.put("/v1/buckets/b", "alice:pw", nil).must(t, 201)
	a.put("/v1/buckets/b/collections/c", "alice:pw", nil).must(t, 201)
	a.put(records+"/one", "alice:pw", nil).must(t, 201)
	for i := 0; i < 2; i++ {
		if got := listIDs(b.get(records, "alice:pw").must(t, 200)); !sameIDs(got, "one") {
			t.Fatalf("node b sees %v", got)
		}
	}
	a.put(records+"/two", "alice:pw", nil).must(t, 201)
	if got := listIDs(b.get(records, "alice:pw").must(t, 200)); !sameIDs(got, "one", "two") {
		t.Fatalf("node b sees %v after node a's write", got)
	}
}
