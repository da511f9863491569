package httpapi_test

import (
	"kintogo/internal/plugins/changes"
	"strconv"
	"strings"
	"testing"
	"time"
)

const monitor = "/v1/buckets/monitor/collections/changes/records"

// setupMonitored creates main/c1, main/c2 (monitored through their bucket),
// blocklists/certs (monitored by URI), blocklists/other and elsewhere/x
// (not monitored), each with one record.
func setupMonitored(t *testing.T, c *client) {
	for _, b := range []string{"main", "blocklists", "elsewhere"} {
		c.put("/v1/buckets/"+b, "alice:alicepw", nil).must(t, 201)
	}
	for _, coll := range []string{"main/collections/c1", "main/collections/c2", "blocklists/collections/certs", "blocklists/collections/other", "elsewhere/collections/x"} {
		c.put("/v1/buckets/"+coll, "alice:alicepw", nil).must(t, 201)
		c.do(req{method: "POST", path: "/v1/buckets/" + coll + "/records", auth: "alice:alicepw", body: map[string]any{"data": map[string]any{"v": 1}}}).must(t, 201)
		// Timestamps are unique within a collection, not across them: let
		// the clock move so that the entries have a known order.
		time.Sleep(2 * time.Millisecond)
	}
}

func entries(r *response) []string {
	var out []string
	for _, e := range r.list("data") {
		m := e.(map[string]any)
		out = append(out, m["bucket"].(string)+"/"+m["collection"].(string))
	}
	return out
}

func TestMonitorEntries(t *testing.T) {
	eachBackend(t, nil, func(t *testing.T, c *client) {
		empty := c.get(monitor, "").must(t, 200)
		if len(empty.list("data")) != 0 || empty.etag() == "" {
			t.Fatalf("empty monitor: %s %v", empty.raw, empty.header)
		}
		setupMonitored(t, c)
		r := c.get(monitor, "").must(t, 200)
		if got := strings.Join(entries(r), " "); got != "blocklists/certs main/c2 main/c1" {
			t.Errorf("entries (newest first): %s", got)
		}
		for _, e := range r.list("data") {
			m := e.(map[string]any)
			if m["host"] != "127.0.0.1:8888" || m["id"] != changes.EntryID("127.0.0.1:8888", m["bucket"].(string), m["collection"].(string)) || len(m) != 5 {
				t.Errorf("entry %v", m)
			}
			// last_modified is exactly the collection's records ETag.
			records := c.get("/v1/buckets/"+m["bucket"].(string)+"/collections/"+m["collection"].(string)+"/records", "alice:alicepw")
			if records.etag() != string(m["last_modified"].(interface{ String() string }).String()) {
				t.Errorf("entry %v: records ETag %s", m, records.etag())
			}
		}
		if r.etag() != r.str("data.0.last_modified") {
			t.Errorf("monitor ETag %s, newest entry %s", r.etag(), r.str("data.0.last_modified"))
		}
		if r.header.Get("Cache-Control") != "no-cache, no-store" || r.header.Get("Last-Modified") == "" {
			t.Errorf("headers %v", r.header)
		}
		// Public: credentials change nothing.
		if got := c.get(monitor, "bob:bobpw").must(t, 200); strings.Join(entries(got), " ") != strings.Join(entries(r), " ") {
			t.Errorf("authenticated monitor differs: %s", got.raw)
		}
	})
}

// The monitor never shows a timestamp other than the collection's own
// ETag, right after every acknowledged write: creation, update, delete,
// plural delete, collection deletion.
func TestMonitorNeverStale(t *testing.T) {
	eachBackend(t, nil, func(t *testing.T, c *client) {
		setupMonitored(t, c)
		records := "/v1/buckets/main/collections/c1/records"
		check := func(step string) {
			t.Helper()
			etag := c.get(records, "alice:alicepw").etag()
			m := c.get(monitor+"?bucket=main&collection=c1", "").must(t, 200)
			if m.str("data.0.last_modified") != etag || m.etag() != etag {
				t.Fatalf("%s: monitor entry %s (ETag %s), collection ETag %s", step, m.str("data.0.last_modified"), m.etag(), etag)
			}
		}
		for i := 0; i < 5; i++ {
			c.put(records+"/r"+strconv.Itoa(i), "alice:alicepw", map[string]any{"data": map[string]any{"i": i}}).must(t, 201)
			check("create")
			c.do(req{method: "PATCH", path: records + "/r" + strconv.Itoa(i), auth: "alice:alicepw", body: map[string]any{"data": map[string]any{"j": i}}}).must(t, 200)
			check("patch")
		}
		c.do(req{method: "DELETE", path: records + "/r0", auth: "alice:alicepw"}).must(t, 200)
		check("delete")
		c.do(req{method: "DELETE", path: records + "?i=1", auth: "alice:alicepw"}).must(t, 200)
		check("plural delete")
		// Metadata changes of the collection do not move its entry.
		before := c.get(monitor+"?collection=c1", "").str("data.0.last_modified")
		c.do(req{method: "PATCH", path: "/v1/buckets/main/collections/c1", auth: "alice:alicepw", body: map[string]any{"data": map[string]any{"title": "x"}}}).must(t, 200)
		if after := c.get(monitor+"?collection=c1", "").str("data.0.last_modified"); after != before {
			t.Errorf("collection metadata moved the entry: %s -> %s", before, after)
		}
		c.do(req{method: "DELETE", path: "/v1/buckets/main/collections/c1", auth: "alice:alicepw"}).must(t, 200)
		if got := c.get(monitor+"?collection=c1", "").must(t, 200); len(got.list("data")) != 0 {
			t.Errorf("deleted collection still monitored: %s", got.raw)
		}
		// A new monitored collection shows at once, with its records timestamp.
		created := c.put("/v1/buckets/main/collections/fresh", "alice:alicepw", nil).must(t, 201)
		fresh := c.get(monitor+"?collection=fresh", "").must(t, 200)
		if fresh.str("data.0.last_modified") != c.get("/v1/buckets/main/collections/fresh/records", "alice:alicepw").etag() || created.status != 201 {
			t.Errorf("new collection: %s", fresh.raw)
		}
		c.do(req{method: "DELETE", path: "/v1/buckets/main", auth: "alice:alicepw"}).must(t, 200)
		if got := c.get(monitor, "").must(t, 200); strings.Join(entries(got), " ") != "blocklists/certs" {
			t.Errorf("after bucket deletion: %s", got.raw)
		}
	})
}

func TestMonitorQueries(t *testing.T) {
	eachBackend(t, nil, func(t *testing.T, c *client) {
		setupMonitored(t, c)
		all := c.get(monitor, "").must(t, 200)
		oldest := all.str("data.2.last_modified")
		newest := all.str("data.0.last_modified")
		tests := []struct {
			query string
			want  string
		}{
			{"?_since=" + oldest, "blocklists/certs main/c2"},
			{"?_since=%22" + oldest + "%22", "blocklists/certs main/c2"},
			{"?_since=" + newest, ""},
			{"?_before=" + newest, "main/c2 main/c1"},
			{"?bucket=main", "main/c2 main/c1"},
			{"?collection=certs", "blocklists/certs"},
			{"?in_collection=c1,certs", "blocklists/certs main/c1"},
			{"?_sort=collection", "main/c1 main/c2 blocklists/certs"},
			{"?_expected=123&_=42", "blocklists/certs main/c2 main/c1"},
			{"?like_collection=c*", "blocklists/certs main/c2 main/c1"},
		}
		for _, tt := range tests {
			r := c.get(monitor+tt.query, "").must(t, 200)
			if got := strings.Join(entries(r), " "); got != tt.want {
				t.Errorf("%s: %q, want %q", tt.query, got, tt.want)
			}
			if r.etag() != newest {
				t.Errorf("%s: ETag %s, want the unfiltered %s", tt.query, r.etag(), newest)
			}
		}
		fields := c.get(monitor+"?_fields=bucket", "").must(t, 200)
		if fields.str("data.0") != `{"bucket":"blocklists","id":"`+all.str("data.0.id")+`","last_modified":`+newest+`}` {
			t.Errorf("_fields: %s", fields.raw)
		}
		for _, bad := range []string{"?nope=1", "?_since=abc", "?_sort=nope", "?_limit=-1", "?_fields=nope"} {
			c.get(monitor+bad, "").wantError(t, 400, 107)
		}
		// Pagination through Next-Page.
		var seen []string
		next := monitor + "?_limit=2"
		for next != "" {
			r := c.get(next, "").must(t, 200)
			seen = append(seen, entries(r)...)
			next = r.header.Get("Next-Page")
			if next != "" {
				next = c.base + strings.TrimPrefix(next, "http://127.0.0.1:8888")
			}
		}
		if got := strings.Join(seen, " "); got != "blocklists/certs main/c2 main/c1" {
			t.Errorf("paginated: %s", got)
		}
		head := c.do(req{method: "HEAD", path: monitor}).must(t, 200)
		if len(head.raw) != 0 || head.etag() != newest || head.header.Get("Total-Records") != "" {
			t.Errorf("HEAD: %v %q", head.header, head.raw)
		}
	})
}

func TestMonitorPreconditionsAndMethods(t *testing.T) {
	eachBackend(t, nil, func(t *testing.T, c *client) {
		setupMonitored(t, c)
		etag := c.get(monitor, "").etag()
		r := c.do(req{method: "GET", path: monitor + "?_since=" + etag, header: map[string]string{"If-None-Match": `"` + etag + `"`}})
		if r.status != 304 || r.etag() != etag || len(r.raw) != 0 {
			t.Errorf("If-None-Match current: %d %q", r.status, r.raw)
		}
		c.do(req{method: "GET", path: monitor, header: map[string]string{"If-None-Match": `"1"`}}).must(t, 200)
		c.do(req{method: "GET", path: monitor, header: map[string]string{"If-None-Match": "*"}}).wantError(t, 412, 114)
		c.do(req{method: "GET", path: monitor, header: map[string]string{"If-Match": `"1"`}}).wantError(t, 412, 114)
		c.do(req{method: "GET", path: monitor, header: map[string]string{"If-Match": "1"}}).wantError(t, 400, 107)
		for _, m := range []string{"POST", "PUT", "PATCH", "DELETE"} {
			r := c.do(req{method: m, path: monitor, auth: "alice:alicepw", body: map[string]any{"data": map[string]any{}}})
			r.wantError(t, 405, 115)
			if r.header.Get("Access-Control-Expose-Headers") != "" {
				t.Errorf("%s: 405 with expose headers", m)
			}
		}
		// No individual entries: the URL is an ordinary record URL of a
		// bucket that does not exist.
		c.get(monitor+"/"+c.get(monitor, "").str("data.0.id"), "alice:alicepw").wantError(t, 403, 121)
		// The monitor bucket and collection may exist, and change nothing.
		c.put("/v1/buckets/monitor", "alice:alicepw", nil).must(t, 201)
		c.put("/v1/buckets/monitor/collections/changes", "alice:alicepw", nil).must(t, 201)
		if got := c.get(monitor, "").must(t, 200); len(got.list("data")) != 3 {
			t.Errorf("with a monitor bucket: %s", got.raw)
		}
	})
}

func TestMonitorEmpty200Setting(t *testing.T) {
	eachBackend(t, map[string]string{"changes.empty_200_on_not_modified": "true"}, func(t *testing.T, c *client) {
		setupMonitored(t, c)
		etag := c.get(monitor, "").etag()
		r := c.do(req{method: "GET", path: monitor, header: map[string]string{"If-None-Match": `"` + etag + `"`}}).must(t, 200)
		if r.str("data") != "[]" || r.etag() != etag || r.header.Get("Cache-Control") != "no-cache, no-store" {
			t.Errorf("empty 200: %s %v", r.raw, r.header)
		}
	})
}

func TestMonitorSettings(t *testing.T) {
	// changes.http_host sets the entries' host and ids (DESIGN.md difference 1).
	eachBackend(t, map[string]string{"changes.http_host": "cdn.example.com", "changes.resources": "/buckets/main/collections/c1"}, func(t *testing.T, c *client) {
		setupMonitored(t, c)
		c.put("/v1/buckets/main/collections/c1-foo", "alice:alicepw", nil).must(t, 201)
		r := c.get(monitor, "").must(t, 200)
		if got := strings.Join(entries(r), " "); got != "main/c1" {
			t.Errorf("collection URI must match exactly: %s", got)
		}
		if r.str("data.0.host") != "cdn.example.com" || r.str("data.0.id") != changes.EntryID("cdn.example.com", "main", "c1") {
			t.Errorf("host: %s", r.raw)
		}
	})
	eachBackend(t, map[string]string{"changes.excluded_collections": "/buckets/main/collections/c2 /buckets/blocklists"}, func(t *testing.T, c *client) {
		setupMonitored(t, c)
		if got := strings.Join(entries(c.get(monitor, "").must(t, 200)), " "); got != "main/c1" {
			t.Errorf("excluded collections listed: %s", got)
		}
	})
	// Without the plugin, the URL is an ordinary (missing) records list.
	c := newClient(t, backends()["memory"](t), map[string]string{"includes": ""})
	c.get(monitor, "").wantError(t, 401, 104)
	if c.get("/v1/", "").at("capabilities.changes") != nil {
		t.Error("changes capability without the plugin")
	}
	// Both plugin names enable it.
	c = newClient(t, backends()["memory"](t), map[string]string{"includes": "kinto_remote_settings.changes"})
	c.get(monitor, "").must(t, 200)
}
