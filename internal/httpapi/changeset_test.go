package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"kintogo/internal/storage"
	"kintogo/internal/storage/sqlite"
)

const monitorChangeset = "/v1/buckets/monitor/collections/changes/changeset"

func TestCollectionChangeset(t *testing.T) {
	eachBackend(t, nil, func(t *testing.T, c *client) {
		c.put("/v1/buckets/main", "alice:alicepw", nil).must(t, 201)
		meta := c.put("/v1/buckets/main/collections/c1", "alice:alicepw", map[string]any{"data": map[string]any{"signature": "s"}}).must(t, 201)
		ra := c.put("/v1/buckets/main/collections/c1/records/a", "alice:alicepw", map[string]any{"data": map[string]any{"v": 1}}).must(t, 201)
		c.put("/v1/buckets/main/collections/c1/records/b", "alice:alicepw", map[string]any{"data": map[string]any{"v": 2}}).must(t, 201)
		url := "/v1/buckets/main/collections/c1/changeset"

		c.get(url, "alice:alicepw").wantError(t, 400, 107)
		r := c.get(url+"?_expected=0", "alice:alicepw").must(t, 200)
		if ids := r.str("changes"); !strings.HasPrefix(ids, `[{"id":"b"`) || len(r.list("changes")) != 2 {
			t.Errorf("changes newest first: %s", r.raw)
		}
		if r.str("metadata.bucket") != "main" || r.str("metadata.signature") != "s" || r.header.Get("ETag") != "" {
			t.Errorf("metadata/ETag: %s %v", r.raw, r.header)
		}
		records := c.get("/v1/buckets/main/collections/c1/records", "alice:alicepw")
		if r.str("timestamp") != records.etag() {
			t.Errorf("timestamp %s, records ETag %s", r.str("timestamp"), records.etag())
		}
		metaTS, _ := strconv.ParseInt(meta.str("data.last_modified"), 10, 64)
		if r.header.Get("Last-Modified") != time.UnixMilli(metaTS).UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT") {
			t.Errorf("Last-Modified %s is not the metadata's", r.header.Get("Last-Modified"))
		}
		if r.header.Get("Cache-Control") != "" {
			t.Errorf("Cache-Control without settings: %q", r.header.Get("Cache-Control"))
		}
		c.do(req{method: "DELETE", path: "/v1/buckets/main/collections/c1/records/a", auth: "alice:alicepw"}).must(t, 200)
		for _, since := range []string{ra.etag(), `%22` + ra.etag() + `%22`} {
			r = c.get(url+"?_expected=0&_since="+since, "alice:alicepw").must(t, 200)
			if got := r.str("changes"); !strings.Contains(got, `"deleted":true`) || len(r.list("changes")) != 2 {
				t.Errorf("_since=%s: %s", since, got)
			}
		}
		if r = c.get(url+"?_expected=0", "alice:alicepw"); strings.Contains(r.str("changes"), "deleted") {
			t.Errorf("tombstone without _since: %s", r.raw)
		}
		if r = c.get(url+"?_expected=0&_limit=1&_sort=id&foo=1", "alice:alicepw").must(t, 200); len(r.list("changes")) != 1 {
			t.Errorf("_limit: %s", r.raw)
		}
		for _, bad := range []string{"abc", "42%22", "%22%22", "-1", "4102444800001", "%2242%22%0A", "_limit=-1"} {
			q := "?_expected=0&_since=" + bad
			if strings.HasPrefix(bad, "_") {
				q = "?_expected=0&" + bad
			}
			c.get(url+q, "alice:alicepw").wantError(t, 400, 107)
		}
		c.get(url+"?_expected=0&_since=4102444800000", "alice:alicepw").must(t, 200)
		// No redirect of an old _since on a single collection.
		c.get(url+"?_expected=0&_since=1000", "alice:alicepw").must(t, 200)
		c.get(url+"?_expected=0", "").wantError(t, 401, 104)
		c.get(url+"?_expected=0", "bob:bobpw").wantError(t, 403, 121)
		c.get("/v1/buckets/main/collections/nope/changeset?_expected=0", "alice:alicepw").wantError(t, 404, 111)
		c.get("/v1/buckets/nope/collections/x/changeset?_expected=0", "alice:alicepw").wantError(t, 403, 121)
		c.do(req{method: "POST", path: url + "?_expected=0", auth: "alice:alicepw", body: map[string]any{}}).wantError(t, 405, 115)
		c.do(req{method: "PATCH", path: "/v1/buckets/main/collections/c1", auth: "alice:alicepw", body: map[string]any{"permissions": map[string]any{"read": []string{"system.Everyone"}}}}).must(t, 200)
		c.get(url+"?_expected=0", "").must(t, 200)
	})
}

func TestMonitorChangeset(t *testing.T) {
	eachBackend(t, nil, func(t *testing.T, c *client) {
		setupMonitored(t, c)
		r := c.get(monitorChangeset+"?_expected=0", "").must(t, 200)
		if got := strings.Join(entriesOf(r.list("changes")), " "); got != "blocklists/certs main/c2 main/c1" || r.str("metadata") != `{"bucket":"monitor"}` {
			t.Errorf("monitor changeset: %s", r.raw)
		}
		if r.str("timestamp") != r.str("changes.0.last_modified") || r.header.Get("Last-Modified") == "" {
			t.Errorf("timestamp %s: %s", r.str("timestamp"), r.raw)
		}
		oldest := r.str("changes.2.last_modified")
		if got := c.get(monitorChangeset+"?_expected=0&_since="+oldest, ""); len(got.list("changes")) != 2 {
			t.Errorf("_since: %s", got.raw)
		}
		if got := c.get(monitorChangeset+"?_expected=0&bucket=main&collection=c1", ""); strings.Join(entriesOf(got.list("changes")), " ") != "main/c1" {
			t.Errorf("filters: %s", got.raw)
		}
		if got := c.get(monitorChangeset+"?_expected=0&_limit=1", ""); strings.Join(entriesOf(got.list("changes")), " ") != "blocklists/certs" {
			t.Errorf("_limit: %s", got.raw)
		}
		c.get(monitorChangeset, "").wantError(t, 400, 107)
	})
}

func entriesOf(list []any) []string {
	var out []string
	for _, e := range list {
		m := e.(map[string]any)
		out = append(out, m["bucket"].(string)+"/"+m["collection"].(string))
	}
	return out
}

func TestMonitorRedirectsAndStaleExpected(t *testing.T) {
	extra := map[string]string{"changes.http_host": "cdn-host", "http_scheme": ""}
	eachBackend(t, extra, func(t *testing.T, c *client) {
		setupMonitored(t, c)
		old := strconv.FormatInt(time.Now().Add(-22*24*time.Hour).UnixMilli(), 10)
		recent := strconv.FormatInt(time.Now().Add(-time.Hour).UnixMilli(), 10)
		tests := []struct {
			path, location string
		}{
			{monitor + "?_since=42", "https://cdn-host/v1/buckets/monitor/collections/changes/records"},
			{monitor + "?_since=" + old + "&_foo=%22123%22", "https://cdn-host/v1/buckets/monitor/collections/changes/records?_foo=%22123%22"},
			{monitorChangeset + "?_expected=42&_since=%2242%22", "https://cdn-host/v1/buckets/monitor/collections/changes/changeset?_expected=42"},
			{monitorChangeset + "?_expected=%2242%22", "https://cdn-host/v1/buckets/monitor/collections/changes/changeset?_expected=42"},
			{monitorChangeset + "?_expected=42%22", "https://cdn-host/v1/buckets/monitor/collections/changes/changeset?_expected=42"},
		}
		for _, tt := range tests {
			r := c.get(tt.path, "")
			if r.status != 307 || r.header.Get("Location") != tt.location {
				t.Errorf("%s: %d %q", tt.path, r.status, r.header.Get("Location"))
			}
			quoted := strings.Contains(tt.path, "_expected=%22") || strings.Contains(tt.path, "42%22")
			if want := "max-age=86400"; !quoted && r.header.Get("Cache-Control") != want {
				t.Errorf("%s: Cache-Control %q", tt.path, r.header.Get("Cache-Control"))
			}
		}
		c.get(monitor+"?_since="+recent, "").must(t, 200)
		// A client going back in time: a cacheable 204.
		for _, path := range []string{monitor + "?_since=" + recent + "&_expected=1", monitorChangeset + "?_expected=42&_since=%2243%22"} {
			r := c.get(path, "")
			if r.status != 204 || len(r.raw) != 0 || r.header.Get("Cache-Control") != "max-age=86400" {
				t.Errorf("%s: %d %v", path, r.status, r.header)
			}
		}
	})
	// A negative maximum age never redirects.
	eachBackend(t, map[string]string{"changes.since_max_age_days": "-1"}, func(t *testing.T, c *client) {
		c.get(monitor+"?_since=42", "").must(t, 200)
	})
}

func TestChangesCacheSettings(t *testing.T) {
	extra := map[string]string{
		"main.c1.record_cache_expires_seconds":         "60",
		"main.c1.record_cache_maximum_expires_seconds": "3600",
		"main.c1.record_cache_minimum_expires_seconds": "42",
		"main.record_cache_expires_seconds":            "360",
		"record_cache_expires_seconds":                 "180",
		"monitor.changes.record_cache_expires_seconds": "30",
	}
	eachBackend(t, extra, func(t *testing.T, c *client) {
		setupMonitored(t, c)
		c.do(req{method: "PATCH", path: "/v1/buckets/main", auth: "alice:alicepw", body: map[string]any{"permissions": map[string]any{"read": []string{"system.Everyone"}}}}).must(t, 200)
		c.put("/v1/buckets/other", "alice:alicepw", map[string]any{"permissions": map[string]any{"read": []string{"system.Everyone"}}}).must(t, 201)
		c.put("/v1/buckets/other/collections/o", "alice:alicepw", nil).must(t, 201)
		tests := []struct{ path, want string }{
			{"/v1/buckets/main/collections/c1/changeset?_expected=1773913097658", "max-age=3600"},
			{"/v1/buckets/main/collections/c1/changeset?_expected=0", "max-age=42"},
			{"/v1/buckets/main/collections/c1/changeset?_expected=99999996565", "max-age=42"},
			{"/v1/buckets/main/collections/c2/changeset?_expected=5", "max-age=360"},
			{"/v1/buckets/other/collections/o/changeset?_expected=5", "max-age=180"},
			{monitor, "max-age=30"},
			{monitorChangeset + "?_expected=5", "max-age=30"},
			// Kinto's own rule on records lists, for anonymous readers.
			{"/v1/buckets/main/collections/c1/records", "max-age=60"},
		}
		for _, tt := range tests {
			r := c.get(tt.path, "").must(t, 200)
			if got := r.header.Get("Cache-Control"); got != tt.want || r.header.Get("Expires") == "" {
				t.Errorf("%s: Cache-Control %q, want %q", tt.path, got, tt.want)
			}
		}
	})
}

func TestBroadcasts(t *testing.T) {
	eachBackend(t, map[string]string{"push_broadcast_min_debounce_interval_seconds": "0"}, func(t *testing.T, c *client) {
		setupMonitored(t, c)
		c.put("/v1/buckets/main-preview", "alice:alicepw", nil).must(t, 201)
		r := c.get("/v1/__broadcasts__", "").must(t, 200)
		newest := c.get(monitor, "").str("data.0.last_modified")
		if r.str("broadcasts.remote-settings/monitor_changes") != `"`+newest+`"` || r.str("code") != "200" {
			t.Errorf("broadcasts %s, newest %s", r.raw, newest)
		}
		time.Sleep(2 * time.Millisecond)
		c.do(req{method: "POST", path: "/v1/buckets/main/collections/c1/records", auth: "alice:alicepw", body: map[string]any{"data": map[string]any{}}}).must(t, 201)
		newest = c.get(monitor, "").str("data.0.last_modified")
		time.Sleep(2 * time.Millisecond)
		if r := c.get("/v1/__broadcasts__", ""); r.str("broadcasts.remote-settings/monitor_changes") != `"`+newest+`"` {
			t.Errorf("without debounce the new version is published: %s, want %s", r.raw, newest)
		}
	})
	// With the default debounce, a change right after the first publication
	// is not published yet.
	eachBackend(t, nil, func(t *testing.T, c *client) {
		setupMonitored(t, c)
		first := c.get("/v1/__broadcasts__", "").str("broadcasts.remote-settings/monitor_changes")
		c.do(req{method: "POST", path: "/v1/buckets/main/collections/c1/records", auth: "alice:alicepw", body: map[string]any{"data": map[string]any{}}}).must(t, 201)
		if again := c.get("/v1/__broadcasts__", "").str("broadcasts.remote-settings/monitor_changes"); again != first {
			t.Errorf("debounced version moved: %s -> %s", first, again)
		}
	})
}

// The cached answers of the changes feed are never stale: after every
// acknowledged write, the next poll shows it, even while other pollers keep
// the caches busy.
func TestChangesNeverStaleUnderConcurrentPolls(t *testing.T) {
	eachBackend(t, nil, func(t *testing.T, c *client) {
		setupMonitored(t, c)
		c.do(req{method: "PATCH", path: "/v1/buckets/main", auth: "alice:alicepw", body: map[string]any{"permissions": map[string]any{"read": []string{"system.Everyone"}}}}).must(t, 200)
		stop := make(chan struct{})
		done := make(chan struct{})
		paths := []string{monitor, monitor + "?bucket=main", monitorChangeset + "?_expected=0", "/v1/buckets/main/collections/c1/changeset?_expected=0"}
		for i := 0; i < 4; i++ {
			go func(i int) {
				defer func() { done <- struct{}{} }()
				for {
					select {
					case <-stop:
						return
					default:
						c.get(paths[i%len(paths)], "")
					}
				}
			}(i)
		}
		defer func() {
			close(stop)
			for i := 0; i < 4; i++ {
				<-done
			}
		}()
		records := "/v1/buckets/main/collections/c1/records"
		for i := 0; i < 25; i++ {
			w := c.do(req{method: "POST", path: records, auth: "alice:alicepw", body: map[string]any{"data": map[string]any{"i": i}}}).must(t, 201)
			ts := w.str("data.last_modified")
			if got := c.get(monitor+"?bucket=main&collection=c1", "").str("data.0.last_modified"); got != ts {
				t.Fatalf("write %d: monitor shows %s, write was %s", i, got, ts)
			}
			if got := c.get(monitorChangeset+"?_expected=0", "").str("timestamp"); got != ts {
				t.Fatalf("write %d: monitor changeset timestamp %s, write was %s", i, got, ts)
			}
			cs := c.get("/v1/buckets/main/collections/c1/changeset?_expected=0", "")
			if cs.str("timestamp") != ts || cs.str("changes.0.id") != w.str("data.id") {
				t.Fatalf("write %d: changeset %s, write was %s", i, cs.str("timestamp"), ts)
			}
		}
		// Permission changes apply at once too.
		c.do(req{method: "PATCH", path: "/v1/buckets/main", auth: "alice:alicepw", body: map[string]any{"permissions": map[string]any{"read": []string{}}}}).must(t, 200)
		c.get("/v1/buckets/main/collections/c1/changeset?_expected=0", "").wantError(t, 401, 104)
	})
}

func TestChangesGzip(t *testing.T) {
	c := newClient(t, backends()["memory"](t), nil)
	setupMonitored(t, c)
	for i := 0; i < 10; i++ { // enough entries to be worth compressing
		c.put("/v1/buckets/main/collections/more"+strconv.Itoa(i), "alice:alicepw", nil).must(t, 201)
	}
	plain := c.get(monitor, "").must(t, 200)
	for i := 0; i < 2; i++ { // computed, then replayed from the cache
		r := c.do(req{method: "GET", path: monitor, header: map[string]string{"Accept-Encoding": "gzip"}}).must(t, 200)
		if r.header.Get("Content-Encoding") != "gzip" || r.header.Get("Vary") != "Accept-Encoding" {
			t.Fatalf("not gzipped: %v", r.header)
		}
		zr, err := gzip.NewReader(bytes.NewReader(r.raw))
		if err != nil {
			t.Fatal(err)
		}
		unzipped, _ := io.ReadAll(zr)
		if !bytes.Equal(unzipped, plain.raw) {
			t.Fatalf("gzipped body differs:\n%s\n%s", unzipped, plain.raw)
		}
	}
}

// The debounce state lives in the database, not in a process: a node
// started on the same database (here, after a restart) publishes the same
// version within the debounce interval.
func TestBroadcastsAgreeAcrossNodes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	open := func() storage.Storage {
		s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	storeA := open()
	a := newClient(t, storeA, nil)
	setupMonitored(t, a)
	first := a.get("/v1/__broadcasts__", "").must(t, 200).str("broadcasts.remote-settings/monitor_changes")
	a.do(req{method: "POST", path: "/v1/buckets/main/collections/c1/records", auth: "alice:alicepw", body: map[string]any{"data": map[string]any{}}}).must(t, 201)
	storeA.Close()
	storeB := open()
	t.Cleanup(func() { storeB.Close() })
	b := newClient(t, storeB, nil)
	if got := b.get("/v1/__broadcasts__", "").must(t, 200).str("broadcasts.remote-settings/monitor_changes"); got != first {
		t.Errorf("node b publishes %s, node a published %s", got, first)
	}
	if got := b.get(monitor, "").str("data.0.last_modified"); `"`+got+`"` == first {
		t.Errorf("the new write is not visible on node b")
	}
}
