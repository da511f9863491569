package httpapi_test

import (
	"slices"
	"testing"
)

// userID is the principal the server gives a caller's credentials.
func userID(t *testing.T, c *client, auth string) string {
	t.Helper()
	id := c.get("/v1/", auth).must(t, 200).str("user.id")
	if id == "" {
		t.Fatalf("no user id for %s", auth)
	}
	return id
}

// principals returns the principals of one permission of an answer,
// sorted.
func principals(r *response, perm string) []string {
	var out []string
	for _, p := range r.list("permissions." + perm) {
		out = append(out, p.(string))
	}
	slices.Sort(out)
	return out
}

// A PATCH changes only the permissions it lists, as Kinto's: the other
// writers stay (the caller is added to them), on every kind of object and
// inside batches; an empty mapping changes nothing, for PUT too; a
// merge-patch that leaves no permission changes nothing either.
func TestPermissionsChangeOnlyAsTheRequestSays(t *testing.T) {
	eachBackend(t, nil, func(t *testing.T, c *client) {
		const a, b = "alice:alicepw", "bob:bobpw"
		aliceID, bobID := userID(t, c, a), userID(t, c, b)
		writers := []string{"/buckets/s/groups/editors", bobID, "system.Authenticated"}
		want := append(slices.Clone(writers), aliceID)
		slices.Sort(want)
		objects := []string{
			"/v1/buckets/s",
			"/v1/buckets/s/collections/c",
			"/v1/buckets/s/groups/editors",
			"/v1/buckets/s/collections/c/records/r",
		}
		for _, path := range objects {
			c.put(path, a, map[string]any{"permissions": map[string]any{"write": writers}}).must(t, 201)
		}
		check := func(step, path string) {
			t.Helper()
			got := principals(c.get(path, a).must(t, 200), "write")
			if !slices.Equal(got, want) {
				t.Errorf("%s %s: write is %v, want %v", step, path, got, want)
			}
		}
		for _, path := range objects {
			c.do(req{method: "PATCH", path: path, auth: a, body: map[string]any{
				"permissions": map[string]any{"read": []string{"system.Everyone"}}}}).must(t, 200)
			check("PATCH read", path)
			if got := principals(c.get(path, a), "read"); !slices.Equal(got, []string{"system.Everyone"}) {
				t.Errorf("PATCH read %s: read is %v", path, got)
			}
			// Bob is still a writer.
			c.do(req{method: "PATCH", path: path, auth: b, body: map[string]any{"data": map[string]any{"touched": true}}}).must(t, 200)
			c.put(path, a, map[string]any{"permissions": map[string]any{}}).must(t, 200)
			check("PUT {}", path)
			if got := principals(c.get(path, a), "read"); !slices.Equal(got, []string{"system.Everyone"}) {
				t.Errorf("PUT {} %s: read is %v", path, got)
			}
			c.do(req{method: "PATCH", path: path, auth: a, body: map[string]any{"permissions": map[string]any{}}}).must(t, 200)
			check("PATCH {}", path)
		}
		// The same in a batch.
		c.do(req{method: "POST", path: "/v1/batch", auth: a, body: map[string]any{"requests": []any{
			map[string]any{"method": "PATCH", "path": "/buckets/s", "body": map[string]any{"permissions": map[string]any{"read": []string{}}}},
			map[string]any{"method": "PATCH", "path": "/buckets/s/collections/c/records/r", "body": map[string]any{"permissions": map[string]any{"read": []string{}}}},
		}}}).must(t, 200)
		check("batch PATCH", "/v1/buckets/s")
		check("batch PATCH", "/v1/buckets/s/collections/c/records/r")

		// A merge-patch by a writer who sees no permission of the object
		// (bob writes the record through its bucket only) that removes
		// one: nothing is left to merge, so nothing changes.
		rec := "/v1/buckets/s/collections/c/records/mine"
		c.put(rec, a, map[string]any{"permissions": map[string]any{"read": []string{"system.Everyone"}}}).must(t, 201)
		c.do(req{method: "PATCH", path: rec, auth: b, body: `{"permissions": {"read": null}}`,
			header: map[string]string{"Content-Type": "application/merge-patch+json"}}).must(t, 200)
		if got := principals(c.get(rec, a), "read"); !slices.Equal(got, []string{"system.Everyone"}) {
			t.Errorf("empty merge-patch: read is %v", got)
		}
	})
}
