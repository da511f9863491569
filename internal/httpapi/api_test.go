package httpapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"kintogo/internal/auth"
	"kintogo/internal/plugins/defaultbucket"
)

func TestHello(t *testing.T) {
	eachBackend(t, nil, func(t *testing.T, c *client) {
		r := c.get("/v1/", "").must(t, 200)
		if r.str("http_api_version") != "1.23" || r.str("url") != "http://127.0.0.1:8888/v1/" {
			t.Errorf("hello: %s", r.raw)
		}
		if r.at("user") != nil {
			t.Error("anonymous hello shows a user")
		}
		if r.str("settings.batch_max_requests") != "25" || r.str("settings.readonly") != "false" || r.str("settings.explicit_permissions") != "true" {
			t.Errorf("public settings: %s", r.str("settings"))
		}
		for _, capability := range []string{"changes", "flush_endpoint", "basicauth"} {
			if r.at("capabilities."+capability) == nil {
				t.Errorf("capability %s missing", capability)
			}
		}
		if got := r.str("capabilities.changes.collections"); got != `["/buckets/main","/buckets/blocklists/collections/certs"]` {
			t.Errorf("changes collections %s", got)
		}
		r = c.get("/v1/", "alice:alicepw").must(t, 200)
		if r.str("user.id") != alice || !strings.Contains(r.str("user.principals"), "system.Authenticated") {
			t.Errorf("user: %s", r.str("user"))
		}
		c.do(req{method: "POST", path: "/v1/", body: map[string]any{}}).wantError(t, 405, 115)
	})
}

func TestUtilityEndpoints(t *testing.T) {
	eachBackend(t, nil, func(t *testing.T, c *client) {
		r := c.get("/v1/__heartbeat__", "").must(t, 200)
		if r.str("storage") != "true" || r.str("permission") != "true" {
			t.Errorf("heartbeat %s", r.raw)
		}
		if r := c.get("/v1/__lbheartbeat__", "").must(t, 200); string(r.raw) != "{}\n" {
			t.Errorf("lbheartbeat %q", r.raw)
		}
		if r := c.get("/v1/__version__", "").must(t, 200); r.str("version") != "test" || r.str("name") != "kintogo" {
			t.Errorf("version %s", r.raw)
		}
		c.do(req{method: "DELETE", path: "/v1/__heartbeat__"}).wantError(t, 405, 115)
		c.get("/v1/nothing/here", "").wantError(t, 404, 111)
		c.get("/v2/buckets", "").wantError(t, 404, 116)
	})
}

func TestRedirects(t *testing.T) {
	eachBackend(t, nil, func(t *testing.T, c *client) {
		tests := []struct {
			method, path, location, cache string
		}{
			{"GET", "/", "http://127.0.0.1:8888/v1/", ""},
			{"GET", "/buckets?_limit=1", "http://127.0.0.1:8888/v1/buckets?_limit=1", ""},
			{"POST", "/__flush__", "http://127.0.0.1:8888/v1/__flush__", ""},
			{"GET", "/v1", "http://127.0.0.1:8888/v1/", ""},
			{"GET", "/v1/buckets/", "http://127.0.0.1:8888/v1/buckets", "max-age=3600"},
			{"GET", "/v1/buckets/b/collections//?x=1", "http://127.0.0.1:8888/v1/buckets/b/collections?x=1", "max-age=3600"},
		}
		for _, tt := range tests {
			r := c.do(req{method: tt.method, path: tt.path})
			if r.status != 307 || r.header.Get("Location") != tt.location || r.header.Get("Cache-Control") != tt.cache {
				t.Errorf("%s %s: %d %q %q", tt.method, tt.path, r.status, r.header.Get("Location"), r.header.Get("Cache-Control"))
			}
		}
	})
}

func TestFlush(t *testing.T) {
	eachBackend(t, nil, func(t *testing.T, c *client) {
		c.put("/v1/buckets/b", "alice:alicepw", nil).must(t, 201)
		c.do(req{method: "POST", path: "/v1/__flush__"}).must(t, 202)
		c.get("/v1/buckets/b", "alice:alicepw").wantError(t, 403, 121)
		if r := c.get("/v1/buckets", "alice:alicepw").must(t, 200); len(r.list("data")) != 0 {
			t.Errorf("buckets after flush: %s", r.raw)
		}
	})
	// Without the plugin there is no flush endpoint.
	c := newClient(t, backends()["memory"](t), map[string]string{"includes": ""})
	c.do(req{method: "POST", path: "/v1/__flush__"}).wantError(t, 404, 111)
}

func TestObjectLifecycle(t *testing.T) {
	paths := []struct{ plural, object string }{
		{"/v1/buckets", "/v1/buckets/b1"},
		{"/v1/buckets/b/collections", "/v1/buckets/b/collections/c1"},
		{"/v1/buckets/b/groups", "/v1/buckets/b/groups/g1"},
		{"/v1/buckets/b/collections/c/records", "/v1/buckets/b/collections/c/records/r1"},
	}
	eachBackend(t, nil, func(t *testing.T, c *client) {
		c.put("/v1/buckets/b", "alice:alicepw", nil).must(t, 201)
		c.put("/v1/buckets/b/collections/c", "alice:alicepw", nil).must(t, 201)
		for _, p := range paths {
			created := c.put(p.object, "alice:alicepw", map[string]any{"data": map[string]any{"title": "one", "n": 1}}).must(t, 201)
			if created.str("data.id") != p.object[strings.LastIndex(p.object, "/")+1:] || created.str("permissions.write") != `["`+alice+`"]` {
				t.Errorf("PUT %s: %s", p.object, created.raw)
			}
			if created.etag() != created.str("data.last_modified") {
				t.Errorf("PUT %s: ETag %s, last_modified %s", p.object, created.etag(), created.str("data.last_modified"))
			}
			got := c.get(p.object, "alice:alicepw").must(t, 200)
			if got.str("data.title") != "one" || got.header.Get("Cache-Control") != "no-cache, no-store" {
				t.Errorf("GET %s: %s", p.object, got.raw)
			}
			// HEAD answers like GET without a body.
			head := c.do(req{method: "HEAD", path: p.object, auth: "alice:alicepw"}).must(t, 200)
			if len(head.raw) != 0 || head.etag() != got.etag() {
				t.Errorf("HEAD %s: %q etag %s", p.object, head.raw, head.etag())
			}
			patched := c.do(req{method: "PATCH", path: p.object, auth: "alice:alicepw", body: map[string]any{"data": map[string]any{"n": 2, "extra": nil}}}).must(t, 200)
			if patched.str("data.title") != "one" || patched.str("data.n") != "2" || patched.at("data.extra") != nil || !strings.Contains(string(patched.raw), `"extra":null`) {
				t.Errorf("PATCH %s: %s", p.object, patched.raw)
			}
			if patched.etag() <= got.etag() {
				t.Errorf("PATCH did not bump the timestamp: %s -> %s", got.etag(), patched.etag())
			}
			replaced := c.put(p.object, "alice:alicepw", map[string]any{"data": map[string]any{"only": true}}).must(t, 200)
			if replaced.at("data.title") != nil || replaced.str("data.only") != "true" {
				t.Errorf("PUT replace %s: %s", p.object, replaced.raw)
			}
			posted := c.do(req{method: "POST", path: p.plural, auth: "alice:alicepw", body: map[string]any{"data": map[string]any{"title": "two"}}}).must(t, 201)
			if posted.str("data.id") == "" {
				t.Errorf("POST %s: no id: %s", p.plural, posted.raw)
			}
			again := c.do(req{method: "POST", path: p.plural, auth: "alice:alicepw", body: map[string]any{"data": map[string]any{"id": posted.str("data.id"), "title": "ignored"}}}).must(t, 200)
			if again.str("data.title") != "two" {
				t.Errorf("POST existing id: %s", again.raw)
			}
			list := c.get(p.plural+"?_sort=id", "alice:alicepw").must(t, 200)
			if n := len(list.list("data")); n < 2 {
				t.Errorf("list %s: %s", p.plural, list.raw)
			}
			count := c.do(req{method: "HEAD", path: p.plural, auth: "alice:alicepw"}).must(t, 200)
			if count.header.Get("Total-Objects") != strconv.Itoa(len(list.list("data"))) || count.header.Get("Total-Records") != count.header.Get("Total-Objects") {
				t.Errorf("HEAD %s: Total-Objects %q", p.plural, count.header.Get("Total-Objects"))
			}
			deleted := c.do(req{method: "DELETE", path: p.object, auth: "alice:alicepw"}).must(t, 200)
			if deleted.str("data.deleted") != "true" || deleted.at("permissions") != nil || deleted.etag() != deleted.str("data.last_modified") {
				t.Errorf("DELETE %s: %s", p.object, deleted.raw)
			}
			// (A bucket list is scoped to buckets alice has rights on, and a
			// deleted bucket's rights are gone: no tombstone to show there.)
			since := c.get(p.plural+"?_since="+replaced.etag(), "alice:alicepw").must(t, 200)
			if p.plural != "/v1/buckets" && !strings.Contains(string(since.raw), `"deleted":true`) {
				t.Errorf("_since does not show the tombstone: %s", since.raw)
			}
			if p.plural != "/v1/buckets" {
				c.get(p.object, "alice:alicepw").wantError(t, 404, 110)
			}
		}
	})
}

func TestCascades(t *testing.T) {
	eachBackend(t, nil, func(t *testing.T, c *client) {
		c.put("/v1/buckets/b", "alice:alicepw", nil).must(t, 201)
		c.put("/v1/buckets/b/collections/c", "alice:alicepw", nil).must(t, 201)
		c.put("/v1/buckets/b/collections/c/records/r", "alice:alicepw", nil).must(t, 201)
		c.put("/v1/buckets/b/groups/g", "alice:alicepw", map[string]any{"data": map[string]any{"members": []string{"basicauth:x"}}}).must(t, 201)
		c.do(req{method: "DELETE", path: "/v1/buckets/b/collections/c", auth: "alice:alicepw"}).must(t, 200)
		c.get("/v1/buckets/b/collections/c/records", "alice:alicepw").wantError(t, 404, 111)
		// Recreated, the collection starts empty: no old record, no tombstone.
		c.put("/v1/buckets/b/collections/c", "alice:alicepw", nil).must(t, 201)
		if r := c.get("/v1/buckets/b/collections/c/records?_since=0", "alice:alicepw").must(t, 200); len(r.list("data")) != 0 {
			t.Errorf("records survived their collection: %s", r.raw)
		}
		c.do(req{method: "DELETE", path: "/v1/buckets/b", auth: "alice:alicepw"}).must(t, 200)
		c.put("/v1/buckets/b", "alice:alicepw", nil).must(t, 201)
		if r := c.get("/v1/buckets/b/collections?_since=0", "alice:alicepw").must(t, 200); len(r.list("data")) != 0 {
			t.Errorf("collections survived their bucket: %s", r.raw)
		}
		c.get("/v1/buckets/b/groups/g", "alice:alicepw").wantError(t, 404, 110)
	})
}

func TestTimestampsStrictlyIncrease(t *testing.T) {
	eachBackend(t, nil, func(t *testing.T, c *client) {
		c.put("/v1/buckets/b", "alice:alicepw", nil).must(t, 201)
		c.put("/v1/buckets/b/collections/c", "alice:alicepw", nil).must(t, 201)
		last := int64(0)
		for i := 0; i < 30; i++ {
			var r *response
			if i%5 == 4 {
				r = c.do(req{method: "DELETE", path: "/v1/buckets/b/collections/c/records/r" + strconv.Itoa(i-1), auth: "alice:alicepw"}).must(t, 200)
			} else {
				r = c.put("/v1/buckets/b/collections/c/records/r"+strconv.Itoa(i), "alice:alicepw", nil).must(t, 201)
			}
			ts, _ := strconv.ParseInt(r.str("data.last_modified"), 10, 64)
			if ts <= last {
				t.Fatalf("write %d: timestamp %d after %d", i, ts, last)
			}
			last = ts
			if list := c.get("/v1/buckets/b/collections/c/records", "alice:alicepw"); list.etag() != strconv.FormatInt(ts, 10) {
				t.Fatalf("list ETag %s, want the last write's %d", list.etag(), ts)
			}
		}
	})
}

func TestPreconditions(t *testing.T) {
	eachBackend(t, nil, func(t *testing.T, c *client) {
		c.put("/v1/buckets/b", "alice:alicepw", nil).must(t, 201)
		c.put("/v1/buckets/b/collections/c", "alice:alicepw", nil).must(t, 201)
		rec := "/v1/buckets/b/collections/c/records/r"
		r := c.put(rec, "alice:alicepw", map[string]any{"data": map[string]any{"v": 1}}).must(t, 201)
		etag := `"` + r.etag() + `"`
		auth := "alice:alicepw"
		tests := []struct {
			name   string
			method string
			path   string
			header map[string]string
			body   any
			status int
		}{
			{"get not modified", "GET", rec, map[string]string{"If-None-Match": etag}, nil, 304},
			{"get modified", "GET", rec, map[string]string{"If-None-Match": `"1"`}, nil, 200},
			{"get if-match wrong", "GET", rec, map[string]string{"If-Match": `"1"`}, nil, 412},
			{"get if-none-match star", "GET", rec, map[string]string{"If-None-Match": "*"}, nil, 412},
			{"put create-only on existing", "PUT", rec, map[string]string{"If-None-Match": "*"}, map[string]any{}, 412},
			{"put create-only on new", "PUT", rec + "2", map[string]string{"If-None-Match": "*"}, map[string]any{}, 201},
			{"put if-match on missing", "PUT", rec + "3", map[string]string{"If-Match": etag}, map[string]any{}, 412},
			{"patch if-match wrong", "PATCH", rec, map[string]string{"If-Match": `"1"`}, map[string]any{"data": map[string]any{}}, 412},
			{"delete if-match wrong", "DELETE", rec, map[string]string{"If-Match": `"1"`}, nil, 412},
			{"list if-none-match star", "GET", "/v1/buckets/b/collections/c/records", map[string]string{"If-None-Match": "*"}, nil, 412},
			{"malformed", "GET", rec, map[string]string{"If-Match": "abc"}, nil, 400},
			{"quoted star", "GET", rec, map[string]string{"If-None-Match": `"*"`}, nil, 400},
			{"patch if-match right", "PATCH", rec, map[string]string{"If-Match": etag}, map[string]any{"data": map[string]any{"v": 2}}, 200},
		}
		for _, tt := range tests {
			got := c.do(req{method: tt.method, path: tt.path, auth: auth, header: tt.header, body: tt.body})
			if got.status != tt.status {
				t.Errorf("%s: status %d, want %d: %s", tt.name, got.status, tt.status, got.raw)
			}
			if tt.status == 412 && tt.path == rec && got.str("details.existing.id") != "r" {
				t.Errorf("%s: 412 without details.existing: %s", tt.name, got.raw)
			}
			if tt.status == 412 && got.header.Get("ETag") == "" {
				t.Errorf("%s: 412 without ETag", tt.name)
			}
		}
		list := c.get("/v1/buckets/b/collections/c/records", auth)
		c.do(req{method: "GET", path: "/v1/buckets/b/collections/c/records", auth: auth, header: map[string]string{"If-None-Match": `"` + list.etag() + `"`}}).must(t, 304)
	})
}

func TestPermissionsAndErrors(t *testing.T) {
	eachBackend(t, nil, func(t *testing.T, c *client) {
		c.put("/v1/buckets/b", "", nil).wantError(t, 401, 104)
		c.put("/v1/buckets/b", "alice:alicepw", nil).must(t, 201)
		c.put("/v1/buckets/b/collections/c", "alice:alicepw", nil).must(t, 201)
		r := c.get("/v1/buckets/b", "")
		r.wantError(t, 401, 104)
		if r.header.Get("WWW-Authenticate") != `Basic realm="Realm"` {
			t.Errorf("401 without challenge: %v", r.header)
		}
		c.get("/v1/buckets/b", "bob:bobpw").wantError(t, 403, 121)
		c.get("/v1/buckets/nothing", "bob:bobpw").wantError(t, 403, 121)
		c.get("/v1/buckets/b/collections/missing", "alice:alicepw").wantError(t, 404, 110)
		c.get("/v1/buckets/b/collections/missing", "bob:bobpw").wantError(t, 403, 121)
		c.put("/v1/buckets/b/collections/nope/records/x", "bob:bobpw", nil).wantError(t, 404, 111)
		c.put("/v1/buckets/b/collections/a.b", "alice:alicepw", nil).wantError(t, 400, 107)
		c.do(req{method: "PUT", path: "/v1/buckets/b/collections/c", auth: "alice:alicepw", body: "{not json"}).wantError(t, 400, 107)
		c.do(req{method: "PUT", path: "/v1/buckets/b/collections/c", auth: "alice:alicepw", body: map[string]any{"data": "text"}}).wantError(t, 400, 107)
		c.do(req{method: "PUT", path: "/v1/buckets/b/collections/c", auth: "alice:alicepw", body: map[string]any{"permissions": map[string]any{"fly": []string{}}}}).wantError(t, 400, 107)
		c.do(req{method: "PUT", path: "/v1/buckets/b/collections/c", auth: "alice:alicepw", body: map[string]any{"data": map[string]any{"id": "other"}}}).wantError(t, 400, 107)
		c.do(req{method: "POST", path: "/v1/buckets/b/collections", auth: "alice:alicepw", body: "{}", header: map[string]string{"Content-Type": "text/plain"}}).wantError(t, 415, 107)
		c.do(req{method: "GET", path: "/v1/buckets/b", auth: "alice:alicepw", header: map[string]string{"Accept": "text/html"}}).wantError(t, 406, 107)
		c.do(req{method: "PUT", path: "/v1/buckets", auth: "alice:alicepw"}).wantError(t, 405, 115)
		c.get("/v1/buckets/b/collections/c/records?_limit=abc", "alice:alicepw").wantError(t, 400, 107)
		c.get("/v1/buckets/b/collections/c/records?_since=-3", "alice:alicepw").wantError(t, 400, 107)
		c.get("/v1/buckets/b/collections/c/records?_token=garbage", "alice:alicepw").wantError(t, 400, 107)

		// Read access given to everyone: the ACL stays hidden from readers.
		c.do(req{method: "PATCH", path: "/v1/buckets/b/collections/c", auth: "alice:alicepw", body: map[string]any{"permissions": map[string]any{"read": []string{"system.Everyone"}}}}).must(t, 200)
		r = c.get("/v1/buckets/b/collections/c", "").must(t, 200)
		if r.str("permissions") != "{}" {
			t.Errorf("permissions shown to a reader: %s", r.raw)
		}
		c.get("/v1/buckets/b/collections/c/records", "").must(t, 200)
		c.put("/v1/buckets/b/collections/c/records/x", "bob:bobpw", nil).wantError(t, 403, 121)
		// record:create lets bob create, and then write his own record only.
		c.do(req{method: "PATCH", path: "/v1/buckets/b/collections/c", auth: "alice:alicepw", body: map[string]any{"permissions": map[string]any{"record:create": []string{"system.Authenticated"}}}}).must(t, 200)
		c.put("/v1/buckets/b/collections/c/records/bobs", "bob:bobpw", nil).must(t, 201)
		c.put("/v1/buckets/b/collections/c/records/alices", "alice:alicepw", nil).must(t, 201)
		c.do(req{method: "DELETE", path: "/v1/buckets/b/collections/c/records/alices", auth: "bob:bobpw"}).wantError(t, 403, 121)
		// A group gives its members the group's rights.
		c.put("/v1/buckets/b/groups/editors", "alice:alicepw", map[string]any{"data": map[string]any{"members": []string{"basicauth:47160de6b09ac5ba15ca8b7a2fb6fe8d5ab6d3b6f8db7cba68d64f0a9b5e9e3a"}}}).must(t, 201)
		c.put("/v1/buckets/b/groups/bad", "alice:alicepw", map[string]any{"data": map[string]any{"members": []string{"system.Everyone"}}}).wantError(t, 400, 107)
	})
}

func TestListScopedToReadableObjects(t *testing.T) {
	eachBackend(t, nil, func(t *testing.T, c *client) {
		c.put("/v1/buckets/b", "alice:alicepw", nil).must(t, 201)
		c.put("/v1/buckets/b/collections/c", "alice:alicepw", map[string]any{"permissions": map[string]any{"record:create": []string{"system.Authenticated"}}}).must(t, 201)
		c.put("/v1/buckets/b/collections/c/records/a", "alice:alicepw", nil).must(t, 201)
		c.put("/v1/buckets/b/collections/c/records/b", "bob:bobpw", nil).must(t, 201)
		r := c.get("/v1/buckets/b/collections/c/records", "bob:bobpw").must(t, 200)
		if ids := r.str("data"); !strings.Contains(ids, `"id":"b"`) || strings.Contains(ids, `"id":"a"`) {
			t.Errorf("bob's list: %s", r.raw)
		}
		// Only allowed to create: an empty list rather than a 403.
		// record:create on c lets carol see c in the list of collections.
		if r := c.get("/v1/buckets/b/collections", "carol:pw").must(t, 200); r.str("data.0.id") != "c" || len(r.list("data")) != 1 {
			t.Errorf("collections seen by a record creator: %s", r.raw)
		}
		// Only allowed to create: an empty list rather than a 403.
		c.put("/v1/buckets/b2", "alice:alicepw", map[string]any{"permissions": map[string]any{"collection:create": []string{"system.Authenticated"}}}).must(t, 201)
		c.put("/v1/buckets/b2/collections/private", "alice:alicepw", nil).must(t, 201)
		if r := c.get("/v1/buckets/b2/collections", "carol:pw").must(t, 200); len(r.list("data")) != 0 {
			t.Errorf("creator-only list: %s", r.raw)
		}
		c.get("/v1/buckets/b2/groups", "carol:pw").wantError(t, 403, 121)
	})
}

func TestPagination(t *testing.T) {
	eachBackend(t, nil, func(t *testing.T, c *client) {
		c.put("/v1/buckets/b", "alice:alicepw", nil).must(t, 201)
		c.put("/v1/buckets/b/collections/c", "alice:alicepw", nil).must(t, 201)
		for i := 0; i < 7; i++ {
			c.put("/v1/buckets/b/collections/c/records/r"+strconv.Itoa(i), "alice:alicepw", map[string]any{"data": map[string]any{"n": i % 3}}).must(t, 201)
		}
		var seen []string
		next := "/v1/buckets/b/collections/c/records?_sort=n,id&_limit=3&_fields=id"
		for pages := 0; next != ""; pages++ {
			if pages > 5 {
				t.Fatal("pagination does not end")
			}
			r := c.get(next, "alice:alicepw").must(t, 200)
			for _, o := range r.list("data") {
				seen = append(seen, o.(map[string]any)["id"].(string))
			}
			next = r.header.Get("Next-Page")
			if next != "" {
				if !strings.HasPrefix(next, "http://127.0.0.1:8888/v1/buckets/b/collections/c/records?_sort=n%2Cid&_limit=3&_fields=id&_token=") {
					t.Fatalf("Next-Page %s", next)
				}
				next = c.base + strings.TrimPrefix(next, "http://127.0.0.1:8888")
			}
		}
		want := "r0 r3 r6 r1 r4 r2 r5"
		if got := strings.Join(seen, " "); got != want {
			t.Errorf("pages: %s, want %s", got, want)
		}
	})
}

func TestPluralDelete(t *testing.T) {
	eachBackend(t, nil, func(t *testing.T, c *client) {
		c.put("/v1/buckets/b", "alice:alicepw", nil).must(t, 201)
		c.put("/v1/buckets/b/collections/c", "alice:alicepw", nil).must(t, 201)
		for i, done := range []bool{true, false, true} {
			c.put("/v1/buckets/b/collections/c/records/r"+strconv.Itoa(i), "alice:alicepw", map[string]any{"data": map[string]any{"done": done}}).must(t, 201)
		}
		r := c.do(req{method: "DELETE", path: "/v1/buckets/b/collections/c/records?done=true", auth: "alice:alicepw"}).must(t, 200)
		if n := len(r.list("data")); n != 2 || r.str("data.0.deleted") != "true" {
			t.Errorf("plural delete: %s", r.raw)
		}
		if r.etag() != r.str("data.0.last_modified") {
			t.Errorf("plural delete ETag %s, newest tombstone %s", r.etag(), r.str("data.0.last_modified"))
		}
		if left := c.get("/v1/buckets/b/collections/c/records", "alice:alicepw"); len(left.list("data")) != 1 {
			t.Errorf("left: %s", left.raw)
		}
		c.do(req{method: "DELETE", path: "/v1/buckets/b/collections/c/records", auth: "alice:alicepw", header: map[string]string{"If-None-Match": "*"}}).wantError(t, 412, 114)
		c.do(req{method: "DELETE", path: "/v1/buckets/b/collections/c/records", auth: "bob:bobpw"}).wantError(t, 403, 121)
	})
}

func TestPatchFormats(t *testing.T) {
	eachBackend(t, nil, func(t *testing.T, c *client) {
		c.put("/v1/buckets/b", "alice:alicepw", nil).must(t, 201)
		c.put("/v1/buckets/b/collections/c", "alice:alicepw", nil).must(t, 201)
		rec := "/v1/buckets/b/collections/c/records/m"
		c.put(rec, "alice:alicepw", map[string]any{"data": map[string]any{"a": 1, "b": map[string]any{"c": 2, "d": 3}, "tags": []string{"x"}}}).must(t, 201)
		r := c.do(req{method: "PATCH", path: rec, auth: "alice:alicepw", header: map[string]string{"Content-Type": "application/merge-patch+json"},
			body: `{"data": {"a": null, "b": {"c": null, "e": 4}}}`}).must(t, 200)
		if r.str("data.b") != `{"d":3,"e":4}` || r.at("data.a") != nil {
			t.Errorf("merge-patch: %s", r.raw)
		}
		r = c.do(req{method: "PATCH", path: rec, auth: "alice:alicepw", header: map[string]string{"Content-Type": "application/json-patch+json"},
			body: `[{"op": "add", "path": "/data/tags/-", "value": "y"}, {"op": "add", "path": "/permissions/read/system.Everyone"}]`}).must(t, 200)
		if r.str("data.tags") != `["x","y"]` || r.str("permissions.read") != `["system.Everyone"]` {
			t.Errorf("json-patch: %s", r.raw)
		}
		c.do(req{method: "PATCH", path: rec, auth: "alice:alicepw", header: map[string]string{"Content-Type": "application/json-patch+json"},
			body: `[{"op": "test", "path": "/data/a", "value": 99}]`}).wantError(t, 400, 107)
		c.do(req{method: "PATCH", path: rec, auth: "alice:alicepw", body: "{}"}).wantError(t, 400, 107)
		c.do(req{method: "PATCH", path: rec + "x", auth: "alice:alicepw", body: map[string]any{"data": map[string]any{}}}).wantError(t, 404, 110)
		light := c.do(req{method: "PATCH", path: rec, auth: "alice:alicepw", body: map[string]any{"data": map[string]any{"z": 1}}, header: map[string]string{"Response-Behavior": "light"}}).must(t, 200)
		if light.str("data") != `{"z":1}` || light.at("permissions") != nil {
			t.Errorf("light: %s", light.raw)
		}
	})
}

func TestBodyTooLarge(t *testing.T) {
	c := newClient(t, backends()["memory"](t), map[string]string{"max_body_bytes": "100"})
	c.put("/v1/buckets/b", "alice:alicepw", nil).must(t, 201)
	big := `{"data": {"x": "` + strings.Repeat("a", 200) + `"}}`
	c.do(req{method: "PUT", path: "/v1/buckets/b/collections/c", auth: "alice:alicepw", body: big}).wantError(t, 413, 113)
}

func TestCORS(t *testing.T) {
	c := newClient(t, backends()["memory"](t), nil)
	r := c.do(req{method: "GET", path: "/v1/", header: map[string]string{"Origin": "http://example.com"}}).must(t, 200)
	if r.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("no Allow-Origin: %v", r.header)
	}
	r = c.do(req{method: "OPTIONS", path: "/v1/buckets", header: map[string]string{"Origin": "http://example.com", "Access-Control-Request-Method": "POST"}}).must(t, 200)
	if !strings.Contains(r.header.Get("Access-Control-Allow-Methods"), "POST") {
		t.Errorf("preflight: %v", r.header)
	}
	c.do(req{method: "OPTIONS", path: "/v1/buckets"}).wantError(t, 400, 107)
	if got := c.get("/v1/buckets/x", "alice:alicepw").header.Get("Content-Security-Policy"); got == "" {
		t.Error("no Content-Security-Policy")
	}
}

func TestReadOnly(t *testing.T) {
	c := newClient(t, backends()["memory"](t), map[string]string{"readonly": "true"})
	c.put("/v1/buckets/b", "alice:alicepw", nil).wantError(t, 405, 115)
	c.get("/v1/buckets", "alice:alicepw").must(t, 200)
	if r := c.get("/v1/", ""); r.header.Get("Cache-Control") != "max-age=86400" {
		t.Errorf("read-only root cache: %q", r.header.Get("Cache-Control"))
	}
	_ = http.MethodGet
}

func TestSchemaValidation(t *testing.T) {
	eachBackend(t, map[string]string{"experimental_collection_schema_validation": "true"}, func(t *testing.T, c *client) {
		if c.get("/v1/", "").at("capabilities.schema") == nil {
			t.Error("no schema capability")
		}
		c.put("/v1/buckets/b", "alice:alicepw", map[string]any{"data": map[string]any{
			"record:schema": map[string]any{"type": "object", "properties": map[string]any{"tag": map[string]any{"type": "string"}}},
		}}).must(t, 201)
		coll := c.put("/v1/buckets/b/collections/people", "alice:alicepw", map[string]any{"data": map[string]any{"schema": map[string]any{
			"type": "object", "properties": map[string]any{"name": map[string]any{"type": "string"}, "age": map[string]any{"type": "integer", "minimum": 0}},
			"required": []string{"name", "id", "last_modified"},
		}}}).must(t, 201)
		ok := c.put("/v1/buckets/b/collections/people/records/p1", "alice:alicepw", map[string]any{"data": map[string]any{"name": "Ann", "age": 3}}).must(t, 201)
		if ok.str("data.schema") != coll.str("data.last_modified") {
			t.Errorf("validated record's schema field %q, collection %s", ok.str("data.schema"), coll.str("data.last_modified"))
		}
		r := c.put("/v1/buckets/b/collections/people/records/p2", "alice:alicepw", map[string]any{"data": map[string]any{"age": 3}})
		r.wantError(t, 400, 107)
		if r.str("message") != "'name' is a required property" || r.str("details.0.name") != "name" {
			t.Errorf("required: %s", r.raw)
		}
		r = c.do(req{method: "POST", path: "/v1/buckets/b/collections/people/records", auth: "alice:alicepw", body: `{"data": {"name": "x", "age": -1}}`})
		if r.status != 400 || r.str("message") != "age in body: -1 is less than the minimum of 0" {
			t.Errorf("minimum: %s", r.raw)
		}
		c.do(req{method: "PATCH", path: "/v1/buckets/b/collections/people/records/p1", auth: "alice:alicepw", body: map[string]any{"data": map[string]any{"name": 5}}}).wantError(t, 400, 107)
		// The bucket's record:schema applies after the collection's.
		c.do(req{method: "PATCH", path: "/v1/buckets/b/collections/people/records/p1", auth: "alice:alicepw", body: map[string]any{"data": map[string]any{"tag": 5}}}).wantError(t, 400, 107)
		// Huge exponents are refused before any arithmetic.
		c.do(req{method: "PUT", path: "/v1/buckets/b/collections/people/records/p3", auth: "alice:alicepw", body: `{"data": {"name": "x", "age": 1e999999999}}`}).wantError(t, 400, 107)
		// An invalid schema is refused; {} removes every constraint.
		c.put("/v1/buckets/b/collections/bad", "alice:alicepw", map[string]any{"data": map[string]any{"schema": map[string]any{"type": "nope"}}}).wantError(t, 400, 107)
		c.do(req{method: "PATCH", path: "/v1/buckets/b/collections/people", auth: "alice:alicepw", body: map[string]any{"data": map[string]any{"schema": map[string]any{}}}}).must(t, 200)
		c.put("/v1/buckets/b/collections/people/records/p2", "alice:alicepw", map[string]any{"data": map[string]any{"age": 3}}).must(t, 201)
	})
	// Without the setting, records are stored as they come, but schemas
	// themselves are still checked.
	eachBackend(t, nil, func(t *testing.T, c *client) {
		c.put("/v1/buckets/b", "alice:alicepw", nil).must(t, 201)
		c.put("/v1/buckets/b/collections/people", "alice:alicepw", map[string]any{"data": map[string]any{"schema": map[string]any{"required": []string{"name"}}}}).must(t, 201)
		c.put("/v1/buckets/b/collections/people/records/p", "alice:alicepw", map[string]any{"data": map[string]any{"age": 3}}).must(t, 201)
		r := c.put("/v1/buckets/b/collections/bad", "alice:alicepw", map[string]any{"data": map[string]any{"schema": map[string]any{"type": "nope"}}})
		r.wantError(t, 400, 107)
		if r.str("message") != "data.schema in body: type'nope' is not valid under any of the given schemas" {
			t.Errorf("message %s", r.str("message"))
		}
		c.do(req{method: "PATCH", path: "/v1/buckets/b", auth: "alice:alicepw", body: map[string]any{"data": map[string]any{"record:schema": map[string]any{"type": 1}}}}).wantError(t, 400, 107)
	})
}

func TestListingLimitsAndReplication(t *testing.T) {
	eachBackend(t, map[string]string{"paginate_by": "2"}, func(t *testing.T, c *client) {
		c.put("/v1/buckets/b", "alice:alicepw", nil).must(t, 201)
		c.put("/v1/buckets/b/collections/c", "alice:alicepw", nil).must(t, 201)
		for i := 0; i < 5; i++ {
			c.put("/v1/buckets/b/collections/c/records/r"+strconv.Itoa(i), "alice:alicepw", nil).must(t, 201)
		}
		// paginate_by is the default page size and caps _limit.
		for _, q := range []string{"", "?_limit=4"} {
			r := c.get("/v1/buckets/b/collections/c/records"+q, "alice:alicepw").must(t, 200)
			if len(r.list("data")) != 2 || !strings.Contains(r.header.Get("Next-Page"), "_limit=2") {
				t.Errorf("%s: %d items, Next-Page %q", q, len(r.list("data")), r.header.Get("Next-Page"))
			}
		}
		// A plural DELETE's token works once.
		r := c.do(req{method: "DELETE", path: "/v1/buckets/b/collections/c/records", auth: "alice:alicepw"}).must(t, 200)
		next := r.header.Get("Next-Page")
		if len(r.list("data")) != 2 || next == "" {
			t.Fatalf("paginated delete: %s %q", r.raw, next)
		}
		next = c.base + strings.TrimPrefix(next, "http://127.0.0.1:8888")
		c.do(req{method: "DELETE", path: next, auth: "alice:alicepw"}).must(t, 200)
		again := c.do(req{method: "DELETE", path: next, auth: "alice:alicepw"})
		again.wantError(t, 400, 107)
		if again.str("message") != "_token was already used or has expired." {
			t.Errorf("reused token: %s", again.raw)
		}
		// _to is _before, with a deprecation Alert.
		to := c.get("/v1/buckets/b/collections/c/records?_to=1", "alice:alicepw").must(t, 200)
		if !strings.Contains(to.header.Get("Alert"), "soft-eol") {
			t.Errorf("_to without Alert: %v", to.header)
		}
		// Ids are bounded.
		c.put("/v1/buckets/b/collections/c/records/"+strings.Repeat("a", 256), "alice:alicepw", nil).wantError(t, 400, 107)
		c.put("/v1/buckets/b/collections/c/records/"+strings.Repeat("a", 255), "alice:alicepw", nil).must(t, 201)
	})
}

// Replication: a client-supplied last_modified is kept on creation; in the
// past it does not move the list's timestamp; on update it is kept only
// when newer than the object's.
func TestClientSuppliedTimestamps(t *testing.T) {
	eachBackend(t, nil, func(t *testing.T, c *client) {
		c.put("/v1/buckets/b", "alice:alicepw", nil).must(t, 201)
		c.put("/v1/buckets/b/collections/c", "alice:alicepw", nil).must(t, 201)
		rec := "/v1/buckets/b/collections/c/records/r"
		first := c.put(rec, "alice:alicepw", nil).must(t, 201)
		listETag := c.get("/v1/buckets/b/collections/c/records", "alice:alicepw").etag()
		past := c.put(rec+"2", "alice:alicepw", map[string]any{"data": map[string]any{"last_modified": 1234}}).must(t, 201)
		if past.str("data.last_modified") != "1234" {
			t.Errorf("past timestamp not kept: %s", past.raw)
		}
		if got := c.get("/v1/buckets/b/collections/c/records", "alice:alicepw").etag(); got != listETag {
			t.Errorf("a past timestamp moved the list ETag: %s -> %s", listETag, got)
		}
		older := c.put(rec, "alice:alicepw", map[string]any{"data": map[string]any{"last_modified": 1000}}).must(t, 200)
		if older.str("data.last_modified") <= first.str("data.last_modified") {
			t.Errorf("an older supplied timestamp was kept on update: %s", older.raw)
		}
		future, _ := strconv.ParseInt(older.str("data.last_modified"), 10, 64)
		newer := c.put(rec, "alice:alicepw", map[string]any{"data": map[string]any{"last_modified": future + 1000}}).must(t, 200)
		if newer.str("data.last_modified") != strconv.FormatInt(future+1000, 10) {
			t.Errorf("a newer supplied timestamp was not kept: %s", newer.raw)
		}
		c.put(rec, "alice:alicepw", map[string]any{"data": map[string]any{"last_modified": "soon"}}).must(t, 200)
	})
}

// With default_bucket_hmac_secret unset, Kinto keys personal bucket ids
// with the empty string, not with userid_hmac_secret: the same
// credentials find the same bucket (the id Kinto 26.5 answered for
// mat:secret with userid_hmac_secret = s).
func TestDefaultBucketIDAsKinto(t *testing.T) {
	eachBackend(t, map[string]string{"includes": "kinto.plugins.default_bucket", "userid_hmac_secret": "s"}, func(t *testing.T, c *client) {
		hello := c.get("/v1/", "mat:secret").must(t, 200)
		if id, bucket := hello.str("user.id"), hello.str("user.bucket"); id != "basicauth:177e0f0a5beb991a574fae591384480c452ab29c6d885d3d09e43cbb3895eee8" || bucket != "2fffce30-89bf-b8af-e8b7-09618deb2423" {
			t.Errorf("user %s, bucket %s", id, bucket)
		}
		if got := c.get("/v1/buckets/default", "mat:secret").must(t, 200).str("data.id"); got != "2fffce30-89bf-b8af-e8b7-09618deb2423" {
			t.Errorf("/buckets/default: %s", got)
		}
	})
}

func TestDefaultBucket(t *testing.T) {
	// kinto-protocol.md §7.8: basicauth mat:secret with empty secrets.
	mat := "basicauth:" + auth.HMACDigest("", "mat:secret")
	if got := defaultbucket.DefaultBucketID("", mat); got != "ddaf8694-fa9e-2949-ed0e-77198a7907fb" {
		t.Fatalf("DefaultBucketID: %s", got)
	}
	eachBackend(t, map[string]string{"includes": "kinto.plugins.default_bucket", "userid_hmac_secret": "", "default_bucket_hmac_secret": "buckets"}, func(t *testing.T, c *client) {
		matBucket := defaultbucket.DefaultBucketID("buckets", mat)
		hello := c.get("/v1/", "mat:secret").must(t, 200)
		if hello.str("user.bucket") != matBucket || hello.at("capabilities.default_bucket") == nil {
			t.Fatalf("hello: %s", hello.raw)
		}
		c.get("/v1/buckets/default", "").wantError(t, 401, 104)
		// Implicit creation of the bucket and the collection.
		r := c.do(req{method: "POST", path: "/v1/buckets/default/collections/tasks/records", auth: "mat:secret", body: map[string]any{"data": map[string]any{"x": 1}}}).must(t, 201)
		if r.str("data.x") != "1" {
			t.Errorf("record: %s", r.raw)
		}
		b := c.get("/v1/buckets/"+matBucket, "mat:secret").must(t, 200)
		if b.str("data.id") != matBucket || !strings.Contains(b.str("permissions.write"), "basicauth:8a931a10") {
			t.Errorf("bucket: %s", b.raw)
		}
		list := c.get("/v1/buckets/default/collections/tasks/records", "mat:secret").must(t, 200)
		if len(list.list("data")) != 1 {
			t.Errorf("list through the alias: %s", list.raw)
		}
		if got := c.get("/v1/buckets/default", "mat:secret").must(t, 200).str("data.id"); got != matBucket {
			t.Errorf("GET /buckets/default: %s", got)
		}
		// Another user's default bucket is another bucket.
		if got := c.get("/v1/buckets/default", "alice:secret").must(t, 200).str("data.id"); got == matBucket {
			t.Error("users share a default bucket")
		}
		c.get("/v1/buckets/default/collections/a.b/records", "mat:secret").wantError(t, 400, 107)
	})
}

func TestPermissionsEndpointAndHistory(t *testing.T) {
	extra := map[string]string{"includes": "kinto.plugins.history", "experimental_permissions_endpoint": "true",
		"collection_read_principals": "system.Authenticated"}
	eachBackend(t, extra, func(t *testing.T, c *client) {
		c.put("/v1/buckets/b", "alice:alicepw", nil).must(t, 201)
		c.put("/v1/buckets/b/collections/c", "alice:alicepw", map[string]any{"permissions": map[string]any{"record:create": []string{"system.Authenticated"}}}).must(t, 201)
		c.put("/v1/buckets/b/collections/c/records/r", "bob:bobpw", map[string]any{"data": map[string]any{"v": 1}}).must(t, 201)
		c.do(req{method: "PATCH", path: "/v1/buckets/b/collections/c/records/r", auth: "bob:bobpw", body: map[string]any{"data": map[string]any{"v": 2}}}).must(t, 200)

		bob := c.get("/v1/permissions?_sort=uri", "bob:bobpw").must(t, 200)
		got := []string{}
		for _, e := range bob.list("data") {
			m := e.(map[string]any)
			got = append(got, fmt.Sprintf("%s=%v", m["uri"], m["permissions"]))
		}
		want := "/=[bucket:create] /buckets/b/collections/c=[read read:attributes record:create] /buckets/b/collections/c/records/r=[read write]"
		if strings.Join(got, " ") != want {
			t.Errorf("bob's permissions:\n%s\nwant\n%s", strings.Join(got, " "), want)
		}
		if r := c.get("/v1/permissions?resource_name=record", "bob:bobpw"); len(r.list("data")) != 1 || r.str("data.0.record_id") != "r" {
			t.Errorf("filtered: %s", r.raw)
		}
		c.get("/v1/permissions?unknown=1", "bob:bobpw").wantError(t, 400, 107)

		// Alice reads the whole history of her bucket; bob only what he may read.
		h := c.get("/v1/buckets/b/history?_sort=last_modified", "alice:alicepw").must(t, 200)
		actions := []string{}
		for _, e := range h.list("data") {
			m := e.(map[string]any)
			actions = append(actions, m["action"].(string)+":"+m["resource_name"].(string))
		}
		if strings.Join(actions, " ") != "create:bucket create:collection create:record update:record" {
			t.Errorf("history: %v", actions)
		}
		if h.str("data.3.target.data.v") != "2" || !strings.HasPrefix(h.str("data.3.user_id"), "basicauth:47160de6") {
			t.Errorf("history entry: %s", h.str("data.3"))
		}
		hb := c.get("/v1/buckets/b/history?_sort=last_modified", "bob:bobpw").must(t, 200)
		if n := len(hb.list("data")); n != 2 || hb.str("data.0.resource_name") != "record" {
			t.Errorf("bob's history: %s", hb.raw)
		}
		c.get("/v1/buckets/b/history", "carol:pw").wantError(t, 403, 121)
		c.get("/v1/buckets/b/history?nope=1", "alice:alicepw").wantError(t, 400, 107)
		purged := c.do(req{method: "DELETE", path: "/v1/buckets/b/history?resource_name=record", auth: "alice:alicepw"}).must(t, 200)
		if len(purged.list("data")) != 2 {
			t.Errorf("purge: %s", purged.raw)
		}
		if left := c.get("/v1/buckets/b/history", "alice:alicepw"); len(left.list("data")) != 2 {
			t.Errorf("after purge: %s", left.raw)
		}
		// Total-Objects counts the whole selection, on every page.
		for i := 0; i < 5; i++ {
			c.put("/v1/buckets/b/collections/c/records/r"+strconv.Itoa(i), "alice:alicepw", map[string]any{"data": map[string]any{"v": i}}).must(t, 201)
		}
		path := "/v1/buckets/b/history?resource_name=record&_limit=2"
		pages := 0
		for ; path != "" && pages < 10; pages++ {
			if got := c.do(req{method: "HEAD", path: path, auth: "alice:alicepw"}).must(t, 200).header.Get("Total-Objects"); got != "5" {
				t.Errorf("history page %d: Total-Objects %q, want 5", pages, got)
			}
			next := c.get(path, "alice:alicepw").must(t, 200).header.Get("Next-Page")
			path = ""
			if next != "" {
				u, err := url.Parse(next)
				if err != nil {
					t.Fatal(err)
				}
				path = u.RequestURI()
			}
		}
		if pages != 3 {
			t.Errorf("5 entries in pages of 2: %d pages", pages)
		}
		if got := c.do(req{method: "HEAD", path: "/v1/buckets/b/history?_limit=1", auth: "alice:alicepw"}).must(t, 200).header.Get("Total-Objects"); got != "7" {
			t.Errorf("HEAD history: Total-Objects %q, want 7", got)
		}
	})
}

// The permissions a creation answers, which are not read back from
// storage, are those the object then has: in every form a client may give
// them (duplicates, empty lists, any order).
func TestCreatedPermissionsAreStored(t *testing.T) {
	eachBackend(t, nil, func(t *testing.T, c *client) {
		c.put("/v1/buckets/b", "alice:alicepw", nil).must(t, 201)
		c.put("/v1/buckets/b/collections/c", "alice:alicepw", nil).must(t, 201)
		perms := map[string]any{"read": []string{"system.Everyone", "account:b", "account:B", "account:b", "basicauth:zz"},
			"write": []string{"account:z"}}
		created := c.do(req{method: "POST", path: "/v1/buckets/b/collections/c/records", auth: "alice:alicepw",
			body: map[string]any{"data": map[string]any{"v": 1}, "permissions": perms}}).must(t, 201)
		id := created.str("data.id")
		read := c.get("/v1/buckets/b/collections/c/records/"+id, "alice:alicepw").must(t, 200)
		if got, want := fmt.Sprint(created.at("permissions")), fmt.Sprint(read.at("permissions")); got != want {
			t.Errorf("created with permissions %s, read back %s", got, want)
		}
		if !strings.Contains(fmt.Sprint(read.at("permissions")), "account:B account:b basicauth:zz system.Everyone") {
			t.Errorf("read permissions: %v", read.at("permissions"))
		}
		// One who may not write the record sees no permissions.
		c.put("/v1/buckets/b/collections/c", "alice:alicepw", map[string]any{"permissions": map[string]any{"record:create": []string{"system.Authenticated"}}}).must(t, 200)
		bob := c.do(req{method: "POST", path: "/v1/buckets/b/collections/c/records", auth: "bob:bobpw", body: map[string]any{"data": map[string]any{"v": 2}}}).must(t, 201)
		back := c.get("/v1/buckets/b/collections/c/records/"+bob.str("data.id"), "bob:bobpw").must(t, 200)
		if got, want := fmt.Sprint(bob.at("permissions")), fmt.Sprint(back.at("permissions")); got != want {
			t.Errorf("bob created with permissions %s, read back %s", got, want)
		}
	})
}
