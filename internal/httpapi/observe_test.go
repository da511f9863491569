package httpapi_test

import (
	"bufio"
	"bytes"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"kintogo/internal/app"
	"kintogo/internal/app/apptest"
	"kintogo/internal/config"
	"kintogo/internal/httpapi"
	"kintogo/internal/storage/memory"
)

// observedServer is a server over HTTP whose requests' summaries arrive
// on the returned channel (copies, in the order they were answered).
func observedServer(t *testing.T, extra map[string]string) (*client, *httpapi.Server, <-chan httpapi.RequestSummary) {
	t.Helper()
	srv := apptest.Server(t, memory.New(), httpapi.Options{Version: "test"}, testSettings, extra)
	ch := make(chan httpapi.RequestSummary, 100)
	srv.ObserveRequests(func(rs *httpapi.RequestSummary) { ch <- *rs })
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return &client{t: t, base: ts.URL}, srv, ch
}

// next is the summary of the next answered request.
func next(t *testing.T, ch <-chan httpapi.RequestSummary) httpapi.RequestSummary {
	t.Helper()
	select {
	case rs := <-ch:
		return rs
	case <-time.After(10 * time.Second):
		t.Fatal("no request summary")
	}
	return httpapi.RequestSummary{}
}

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// Every top-level request is summarized once it is answered: what it
// asked, the route that answered (Kinto's name and matchdict), the
// status, errno, bytes and who called.
func TestRequestSummaries(t *testing.T) {
	c, _, ch := observedServer(t, nil)
	rec := "/v1/buckets/b/collections/c/records/r"
	c.put("/v1/buckets/b", "alice:alicepw", nil).must(t, 201)
	rs := next(t, ch)
	if rs.Method != "PUT" || rs.Path != "/v1/buckets/b" || rs.Endpoint != "bucket-object" || rs.Status != 201 ||
		rs.Errno != 0 || rs.UserID != alice || rs.AuthnType != "basicauth" || rs.Match("bucket_id") != "b" {
		t.Errorf("bucket PUT: %+v", rs)
	}
	if !uuidPattern.MatchString(rs.RequestID) {
		t.Errorf("generated request id %q", rs.RequestID)
	}
	c.put("/v1/buckets/b/collections/c", "alice:alicepw", nil).must(t, 201)
	next(t, ch)
	resp := c.do(req{method: "PUT", path: rec + "?_fields=a&x=1", auth: "alice:alicepw", body: map[string]any{"data": map[string]any{"a": 1}},
		header: map[string]string{"X-Request-Id": "req-42", "Accept-Language": "fr", "User-Agent": "tester/1"}})
	resp.must(t, 201)
	rs = next(t, ch)
	want := httpapi.RequestSummary{Method: "PUT", Path: rec, Query: "_fields=a&x=1", Endpoint: "record-object", Status: 201,
		Bytes: int64(len(resp.raw)), UserID: alice, AuthnType: "basicauth", Lang: "fr", Agent: "tester/1", RequestID: "req-42"}
	if rs.Method != want.Method || rs.Path != want.Path || rs.Query != want.Query || rs.Endpoint != want.Endpoint ||
		rs.Status != want.Status || rs.Bytes != want.Bytes || rs.UserID != want.UserID || rs.AuthnType != want.AuthnType ||
		rs.Lang != want.Lang || rs.Agent != want.Agent || rs.RequestID != want.RequestID {
		t.Errorf("record PUT:\n got %+v\nwant %+v", rs, want)
	}
	for field, v := range map[string]string{"bucket_id": "b", "collection_id": "c", "record_id": "r", "id": "r", "group_id": ""} {
		if got := rs.Match(field); got != v {
			t.Errorf("Match(%s) = %q, want %q", field, got, v)
		}
	}
	if rs.Duration <= 0 || rs.Start.IsZero() {
		t.Errorf("timing: %v from %v", rs.Duration, rs.Start)
	}

	// Errors carry their errno; anonymous callers no user.
	c.get(rec, "").wantError(t, 401, 104)
	if rs = next(t, ch); rs.Status != 401 || rs.Errno != 104 || rs.UserID != "" || rs.Endpoint != "record-object" {
		t.Errorf("401: %+v", rs)
	}
	c.get("/v1/buckets/b/collections/c/records/missing", "alice:alicepw").wantError(t, 404, 110)
	if rs = next(t, ch); rs.Errno != 110 || rs.UserID != alice {
		t.Errorf("404: %+v", rs)
	}
	// Outside any route: Kinto's names.
	c.get("/v1/nowhere", "").wantError(t, 404, 111)
	if rs = next(t, ch); rs.Endpoint != "unknown" || rs.Errno != 111 {
		t.Errorf("unknown path: %+v", rs)
	}
	c.get("/buckets", "").must(t, 307)
	if rs = next(t, ch); rs.Endpoint != "redirect_to_version" {
		t.Errorf("version redirect: %+v", rs)
	}
	c.get("/v1/buckets/", "").must(t, 307)
	if rs = next(t, ch); rs.Endpoint != "unnamed" {
		t.Errorf("trailing slash redirect: %+v", rs)
	}
	// Public endpoints never authenticate: no user.
	c.get("/v1/__heartbeat__", "alice:alicepw").must(t, 200)
	if rs = next(t, ch); rs.Endpoint != "heartbeat" || rs.UserID != "" {
		t.Errorf("heartbeat: %+v", rs)
	}
	c.get("/v1/buckets/monitor/collections/changes/changeset?_expected=1", "").must(t, 200)
	if rs = next(t, ch); rs.Endpoint != "collection-changeset" || rs.Match("bucket_id") != "monitor" || rs.Match("collection_id") != "changes" {
		t.Errorf("monitor changeset: %+v", rs)
	}
}

// A batch is one request: its sub-requests are not summarized.
func TestBatchIsOneSummary(t *testing.T) {
	c, _, ch := observedServer(t, nil)
	c.put("/v1/buckets/b", "alice:alicepw", nil).must(t, 201)
	next(t, ch)
	c.do(req{method: "POST", path: "/v1/batch", auth: "alice:alicepw", body: map[string]any{"requests": []any{
		map[string]any{"method": "GET", "path": "/buckets/b"},
		map[string]any{"method": "PUT", "path": "/buckets/b/collections/c"},
		map[string]any{"method": "GET", "path": "/buckets/nope"},
	}}}).must(t, 200)
	rs := next(t, ch)
	if rs.Endpoint != "batch" || rs.BatchSize != 3 || rs.Status != 200 || rs.Errno != 0 {
		t.Errorf("batch: %+v", rs)
	}
	select {
	case rs := <-ch:
		t.Errorf("a sub-request was summarized: %+v", rs)
	case <-time.After(50 * time.Millisecond):
	}
}

// Streams work through the observed writer (flushed as they go), and are
// summarized when they end; long-polls and streams are counted while
// open.
func TestObservedStreams(t *testing.T) {
	c, srv, ch := observedServer(t, nil)
	c.put("/v1/buckets/b", "alice:alicepw", map[string]any{"permissions": map[string]any{"read": []string{"system.Everyone"}}}).must(t, 201)
	c.put("/v1/buckets/b/collections/c", "alice:alicepw", nil).must(t, 201)
	next(t, ch)
	next(t, ch)
	r, _ := http.NewRequest("GET", c.base+"/v1/buckets/b/collections/c/records", nil)
	r.Header.Set("Accept", "text/event-stream")
	resp, err := httpClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if streams, _ := srv.PushStats(); streams != 1 {
		t.Errorf("%d streams open", streams)
	}
	c.put("/v1/buckets/b/collections/c/records/r1", "alice:alicepw", nil).must(t, 201)
	next(t, ch)
	lines := bufio.NewScanner(resp.Body)
	got := ""
	for lines.Scan() {
		if strings.HasPrefix(lines.Text(), "data:") {
			got = lines.Text()
			break
		}
	}
	if !strings.Contains(got, `"r1"`) {
		t.Fatalf("stream event %q (%v)", got, lines.Err())
	}
	resp.Body.Close()
	rs := next(t, ch)
	if rs.Endpoint != "record-plural" || rs.Status != 200 || rs.Bytes == 0 {
		t.Errorf("stream summary: %+v", rs)
	}

	// A long-poll is counted while it waits.
	since := c.get("/v1/buckets/b/collections/c/records", "").etag()
	next(t, ch)
	done := make(chan *response)
	go func() { done <- c.get("/v1/buckets/b/collections/c/records?_since="+since+"&_wait=10", "") }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, polls := srv.PushStats(); polls == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the long-poll is not counted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.put("/v1/buckets/b/collections/c/records/r2", "alice:alicepw", nil).must(t, 201)
	(<-done).must(t, 200)
	if _, polls := srv.PushStats(); polls != 0 {
		t.Errorf("%d long-polls after the answer", polls)
	}
}

// Without observers, a request allocates exactly what it did before the
// observation point existed (measured then: the server's allocations
// beyond a bare handler writing the same bytes); with one, a bounded few
// more.
func TestUnobservedRequestsAllocateNothingMore(t *testing.T) {
	settings, err := config.FromMap(map[string]string{
		"includes": "kinto_changes", "multiauth.policies": "basicauth",
		"changes.resources": "/buckets/main", "http_host": "bench.example.com",
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := app.NewServer(settings, memory.New(), httpapi.Options{Version: "bench"})
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, path, body string) {
		r := httptest.NewRequest(method, path, bytes.NewBufferString(body))
		r.SetBasicAuth("bench", "pw")
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		if w.Code >= 300 {
			t.Fatalf("%s %s: %d %s", method, path, w.Code, w.Body)
		}
	}
	do("PUT", "/v1/buckets/main", `{"permissions": {"read": ["system.Everyone"]}}`)
	for i := 0; i < 10; i++ {
		c := "/v1/buckets/main/collections/c" + strconv.Itoa(i)
		do("PUT", c, "")
		do("POST", c+"/records", `{"data": {"n": 1}}`)
	}
	since := strconv.FormatInt(time.Now().Add(-time.Hour).UnixMilli(), 10)
	allocs := func(h http.Handler, path string) float64 {
		return testing.AllocsPerRun(200, func() {
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", path, nil))
		})
	}
	cases := []struct {
		path   string
		before float64 // beyond the bare handler, before observation existed
	}{
		{monitor, 5},
		{monitor + "?_since=" + since + "&_expected=0", 6},
		{"/v1/buckets/main/collections/c1/changeset?_expected=0", 6},
	}
	for _, tc := range cases {
		extra := allocs(srv, tc.path) - allocs(bareHandler(srv, tc.path), "/")
		if extra != tc.before {
			t.Errorf("%s: %v allocations beyond a bare handler, %v before observation", tc.path, extra, tc.before)
		}
	}
	srv.ObserveRequests(func(*httpapi.RequestSummary) {})
	for _, tc := range cases {
		// The observed writer, the request id and its context.
		if extra := allocs(srv, tc.path) - allocs(bareHandler(srv, tc.path), "/"); extra > tc.before+6 {
			t.Errorf("%s observed: %v allocations beyond a bare handler", tc.path, extra)
		}
	}
}

// GET /v1/contribute.json tells kintogo's open-source facts, as Kinto
// tells its own.
func TestContributeJSON(t *testing.T) {
	c := newClient(t, memory.New(), nil)
	r := c.get("/v1/contribute.json", "").must(t, 200)
	if r.str("name") != "kintogo" || r.str("repository.url") != "https://github.com/kintogo/kintogo" ||
		r.str("bugs.list") != "https://github.com/kintogo/kintogo/issues" || len(r.list("keywords")) == 0 || r.str("description") == "" {
		t.Errorf("contribute.json: %s", r.raw)
	}
	if r.header.Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type %q", r.header.Get("Content-Type"))
	}
	// Public: credentials are not even checked.
	c.get("/v1/contribute.json", "alice:wrong").must(t, 200)
}
