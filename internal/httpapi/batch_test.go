package httpapi_test

import (
	"context"
	"strings"
	"testing"

	"kintogo/internal/kerr"
	"kintogo/internal/storage"
	"kintogo/internal/storage/memory"
)

func TestBatch(t *testing.T) {
	eachBackend(t, nil, func(t *testing.T, c *client) {
		r := c.do(req{method: "POST", path: "/v1/batch", auth: "alice:alicepw", body: map[string]any{
			"defaults": map[string]any{"method": "PUT", "body": map[string]any{"data": map[string]any{"shared": true}}},
			"requests": []any{
				map[string]any{"path": "/buckets/bb"},
				map[string]any{"path": "/buckets/bb/collections/cc/"}, // redirect followed
				map[string]any{"path": "/v1/buckets/bb/collections/cc/records/r1", "body": map[string]any{"data": map[string]any{"a": 1}}},
				map[string]any{"method": "GET", "path": "/buckets/missing/collections/x/records/y"},
				map[string]any{"method": "GET", "path": "/buckets/bb/collections/cc/records"},
				map[string]any{"method": "PUT", "path": "/buckets/bb/collections/cc/records/r1", "headers": map[string]any{"If-None-Match": "*"}},
			},
		}}).must(t, 200)
		statuses := []string{}
		for i := range r.list("responses") {
			statuses = append(statuses, r.str("responses."+itoa(i)+".status"))
		}
		if got := strings.Join(statuses, " "); got != "201 201 201 403 200 412" {
			t.Fatalf("statuses %s: %s", got, r.raw)
		}
		if r.str("responses.2.body.data.shared") != "true" || r.str("responses.2.body.data.a") != "1" || r.str("responses.1.path") != "/v1/buckets/bb/collections/cc" {
			t.Errorf("defaults merge / paths: %s", r.raw)
		}
		if r.str("responses.4.body.data.0.id") != "r1" || r.str("responses.2.headers.ETag") == "" {
			t.Errorf("later sub-requests see earlier writes: %s", r.raw)
		}
		// Anonymous batch, Authorization given per sub-request.
		r = c.do(req{method: "POST", path: "/v1/batch", body: map[string]any{"requests": []any{
			map[string]any{"path": "/buckets/bb"},
			map[string]any{"path": "/buckets/bb", "headers": map[string]any{"Authorization": "Basic YWxpY2U6YWxpY2Vwdw=="}},
		}}}).must(t, 200)
		if r.str("responses.0.status") != "401" || r.str("responses.1.status") != "200" {
			t.Errorf("per sub-request auth: %s", r.raw)
		}
		c.do(req{method: "POST", path: "/v1/batch", body: map[string]any{"requests": "nope"}}).wantError(t, 400, 107)
		c.do(req{method: "POST", path: "/v1/batch", body: map[string]any{"requests": []any{map[string]any{"path": "/", "foo": 1}}}}).wantError(t, 400, 107)
		c.do(req{method: "POST", path: "/v1/batch", body: map[string]any{"requests": []any{map[string]any{"path": "/batch"}}}}).wantError(t, 400, 107)
		c.do(req{method: "POST", path: "/v1/batch", body: map[string]any{"requests": []any{map[string]any{"path": "/", "method": "get"}}}}).wantError(t, 400, 107)
		c.do(req{method: "POST", path: "/v1/batch", body: map[string]any{"requests": []any{}, "other": 1}}).wantError(t, 400, 107)
		many := []any{}
		for i := 0; i < 26; i++ {
			many = append(many, map[string]any{"path": "/"})
		}
		r = c.do(req{method: "POST", path: "/v1/batch", body: map[string]any{"requests": many}})
		r.wantError(t, 400, 107)
		if r.str("message") != "Number of requests is limited to 25" {
			t.Errorf("limit message %s", r.str("message"))
		}
		if r := c.do(req{method: "POST", path: "/v1/batch", body: map[string]any{"requests": []any{}}}).must(t, 200); r.str("responses") != "[]" {
			t.Errorf("empty batch: %s", r.raw)
		}
		c.get("/v1/batch", "alice:alicepw").wantError(t, 405, 115)
	})
}

// The changes feed sees a batch's writes once it is committed, and polls
// inside the batch see what the batch wrote so far.
func TestBatchAndChangesFeed(t *testing.T) {
	eachBackend(t, nil, func(t *testing.T, c *client) {
		setupMonitored(t, c)
		before := c.get(monitor+"?collection=c1", "").str("data.0.last_modified")
		r := c.do(req{method: "POST", path: "/v1/batch", auth: "alice:alicepw", body: map[string]any{"requests": []any{
			map[string]any{"method": "POST", "path": "/buckets/main/collections/c1/records", "body": map[string]any{"data": map[string]any{}}},
			map[string]any{"path": "/buckets/monitor/collections/changes/records?collection=c1"},
		}}}).must(t, 200)
		written := r.str("responses.0.body.data.last_modified")
		if r.str("responses.1.body.data.0.last_modified") != written {
			t.Errorf("monitor inside the batch: %s, write %s", r.raw, written)
		}
		after := c.get(monitor+"?collection=c1", "").str("data.0.last_modified")
		if after != written || after == before {
			t.Errorf("monitor after the batch %s, write %s (before %s)", after, written, before)
		}
	})
}

// failingStore fails writes of objects named "fail" as a backend outage.
type failingStore struct{ storage.Storage }

type failingTx struct{ storage.Tx }

func (s failingStore) Update(ctx context.Context, fn func(storage.Tx) error) error {
	return s.Storage.Update(ctx, func(tx storage.Tx) error { return fn(failingTx{tx}) })
}

func (t failingTx) Put(ctx context.Context, sc storage.Scope, o *storage.Object) (*storage.Object, error) {
	if o.ID == "fail" {
		return nil, kerr.E(kerr.Unavailable, "")
	}
	return t.Tx.Put(ctx, sc, o)
}

func (t failingTx) Savepoint(ctx context.Context, fn func(storage.Tx) error) error {
	return t.Tx.Savepoint(ctx, func(tx storage.Tx) error { return fn(failingTx{tx}) })
}

// A 5xx in a sub-request fails the whole batch, and nothing of it stays.
func TestBatchServerErrorRollsBackEverything(t *testing.T) {
	c := newClient(t, failingStore{memory.New()}, nil)
	r := c.do(req{method: "POST", path: "/v1/batch", auth: "alice:alicepw", body: map[string]any{"defaults": map[string]any{"method": "PUT"}, "requests": []any{
		map[string]any{"path": "/buckets/kept"},
		map[string]any{"path": "/buckets/fail"},
	}}})
	r.wantError(t, 503, 201)
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	c.get("/v1/buckets/kept", "alice:alicepw").wantError(t, 403, 121)
}
