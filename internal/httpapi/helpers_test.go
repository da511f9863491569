package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"kintogo/internal/app/apptest"
	"kintogo/internal/httpapi"
	"kintogo/internal/storage"
	"kintogo/internal/storage/storetest"
)

// testSettings are the conformance recording's settings, with the
// changes plugin and the flush endpoint on.
var testSettings = map[string]string{
	"includes":           "kinto.plugins.flush kinto_changes",
	"multiauth.policies": "basicauth",
	"userid_hmac_secret": "b1d9a3a1bc6c4ad1f5e4b9bb3e1c3a1e0e1f3c6a2d8b7c4e5f6a7b8c9d0e1f2a",
	"changes.resources":  "/buckets/main /buckets/blocklists/collections/certs",
	"http_host":          "127.0.0.1:8888",
	"http_scheme":        "http",
}

const alice = "basicauth:c03dcc913440cf9900b94711abcbfa1e3c4a1c8bb61b22e5e3dc4453f472d558"

// backends returns constructors of every storage backend (storetest):
// memory, memory-retried, SQLite, and PostgreSQL when KINTOGO_TEST_POSTGRES
// names a test database (CI sets it).
func backends() map[string]storetest.Open { return storetest.Backends() }

// eachBackend runs fn against a real server (the whole handler stack over
// HTTP) on every backend, with extra settings over testSettings.
func eachBackend(t *testing.T, extra map[string]string, fn func(t *testing.T, c *client)) {
	for name, open := range backends() {
		t.Run(name, func(t *testing.T) {
			fn(t, newClient(t, open(t), extra))
		})
	}
}

// eachStore is eachBackend, also giving the test the server's storage.
func eachStore(t *testing.T, extra map[string]string, fn func(t *testing.T, c *client, store storage.Storage)) {
	for name, open := range backends() {
		t.Run(name, func(t *testing.T) {
			store := open(t)
			fn(t, newClient(t, store, extra), store)
		})
	}
}

func newClient(t *testing.T, store storage.Storage, extra map[string]string) *client {
	t.Helper()
	return newClientWith(t, store, extra, httpapi.Options{Version: "test"})
}

func newClientWith(t *testing.T, store storage.Storage, extra map[string]string, opts httpapi.Options) *client {
	t.Helper()
	srv := apptest.Server(t, store, opts, testSettings, extra)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return &client{t: t, base: ts.URL}
}

type client struct {
	t    *testing.T
	base string
}

// httpClient is the tests' HTTP client: it never follows redirects, and
// gives up on a server that does not answer (a request that hangs is a
// failure, not a stuck test).
var httpClient = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       20 * time.Second,
}

type response struct {
	status int
	header http.Header
	raw    []byte
	json   map[string]any
}

// req describes one request. Body may be a string (sent as is) or any
// value (sent as JSON).
type req struct {
	method, path, auth string
	body               any
	header             map[string]string
}

func (c *client) do(r req) *response {
	c.t.Helper()
	var body io.Reader
	switch b := r.body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	default:
		raw, _ := json.Marshal(b)
		body = bytes.NewReader(raw)
	}
	url := r.path
	if !strings.HasPrefix(url, "http") {
		url = c.base + r.path
	}
	hr, err := http.NewRequest(r.method, url, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.auth != "" {
		user, pass, _ := strings.Cut(r.auth, ":")
		hr.SetBasicAuth(user, pass)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	resp, err := httpClient.Do(hr)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	out := &response{status: resp.StatusCode, header: resp.Header}
	out.raw, _ = io.ReadAll(resp.Body)
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && len(out.raw) > 0 {
		dec := json.NewDecoder(bytes.NewReader(out.raw))
		dec.UseNumber()
		dec.Decode(&out.json)
	}
	return out
}

func (c *client) get(path, auth string) *response {
	c.t.Helper()
	return c.do(req{method: "GET", path: path, auth: auth})
}

func (c *client) put(path, auth string, body any) *response {
	c.t.Helper()
	return c.do(req{method: "PUT", path: path, auth: auth, body: body})
}

// must fails the test unless the response has the status.
func (r *response) must(t *testing.T, status int) *response {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	return r
}

// at returns the value at a dotted path of the JSON body ("data.0.id").
func (r *response) at(path string) any {
	var cur any = r.json
	for _, part := range strings.Split(path, ".") {
		switch x := cur.(type) {
		case map[string]any:
			cur = x[part]
		case []any:
			i := 0
			for _, ch := range part {
				i = i*10 + int(ch-'0')
			}
			if i >= len(x) {
				return nil
			}
			cur = x[i]
		default:
			return nil
		}
	}
	return cur
}

func (r *response) str(path string) string {
	v := r.at(path)
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case nil:
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func (r *response) list(path string) []any {
	l, _ := r.at(path).([]any)
	return l
}

// etag is the ETag header without its quotes.
func (r *response) etag() string { return strings.Trim(r.header.Get("ETag"), `"`) }

// wantError checks a Kinto error body.
func (r *response) wantError(t *testing.T, status, errno int) {
	t.Helper()
	if r.status != status || r.str("code") != itoa(status) || r.str("errno") != itoa(errno) {
		t.Fatalf("want error %d/%d, got %d: %s", status, errno, r.status, r.raw)
	}
	if r.header.Get("Content-Type") != "application/json" {
		t.Errorf("error Content-Type %q", r.header.Get("Content-Type"))
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
