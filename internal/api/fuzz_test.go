package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"kintogo/internal/config"
	"kintogo/internal/kerr"
	"kintogo/internal/model"
	"kintogo/internal/resource"
	"kintogo/internal/storage"
	"kintogo/internal/storage/memory"
)

// FuzzBody feeds arbitrary bodies to the request-body parsers: they must
// never panic, and every refusal must be a validation error (a 400).
func FuzzBody(f *testing.F) {
	for _, seed := range []string{
		`{"data": {"title": "x", "n": 1e400}, "permissions": {"read": ["system.Everyone"]}}`,
		`{"data": [1, 2]}`, `[1, 2]`, `{"data": "x"}`, `{"permissions": {"fly": []}}`, `{"permissions": {"read": [1]}}`,
		`{"data": {"members": ["system.Everyone"]}}`, `{"foo": 1}`, `{"data":`, ``, `null`,
		`[{"op": "add", "path": "/data/x", "value": 1}, {"op": "add", "path": "/permissions/read/a"}]`,
		`[{"op": "jump", "path": "/a"}]`, `[{"op": "move", "from": "/data/a", "path": "/data/b"}]`,
	} {
		f.Add(seed)
	}
	existing := &storage.Object{ID: "r", LastModified: 1, Data: map[string]any{"a": "b"}}
	f.Fuzz(func(t *testing.T, body string) {
		check := func(err error) {
			if err != nil && !kerr.Is(err, kerr.Invalid) && !kerr.Is(err, kerr.TooLarge) {
				t.Fatalf("%q: %v is not a validation error", body, err)
			}
		}
		v, err := decodeJSON([]byte(body))
		check(err)
		if err != nil {
			return
		}
		for _, k := range []*model.Kind{model.Bucket, model.Collection, model.Group, model.Record} {
			env, err := parseEnvelope(v, k)
			check(err)
			if err == nil && env.Data != nil {
				check(resource.ValidateData(k, resource.CopyData(env.Data)))
				resource.MergePatch(existing.Data, env.Data)
			}
		}
		ops, err := resource.ValidatePatchOps(v)
		check(err)
		if err == nil {
			_, _, err = resource.ApplyJSONPatch(ops, existing, map[string][]string{"write": {"a"}}, 1<<20)
			check(err)
		}
	})
}

// FuzzBatchPath feeds arbitrary sub-request paths to a batch whose
// sub-request would itself be a batch: routesToBatch must refuse every
// path that the server routes to the batch endpoint (the endpoint's own
// guard counts those it lets through), and no path may make a batch fail
// with a 5xx or hang.
func FuzzBatchPath(f *testing.F) {
	for _, seed := range []string{
		"/batch", "/v1/batch", "/v1/%62atch", "/%62atch", "/v1/batc%68/", "//batch", "/v1//batch", "/v1/./batch",
		"/v1/buckets/../batch", "/%76%31/batch", "/v1/batch%2F", "/v1/batch?x=1", "/v1/batch#x", "/buckets/default/../../batch",
		"/v2/batch", "/V1/batch", "/v1/%2e%2e/v1/batch", "/buckets/b", "/", "/v1", "/v1/", "/%zz", "/v1/batch\x00",
	} {
		f.Add(seed)
	}
	settings, err := config.FromMap(map[string]string{
		"includes": "kinto.plugins.default_bucket kinto_changes", "multiauth.policies": "basicauth",
		"userid_hmac_secret": "fuzz", "changes.resources": "/buckets/main",
	})
	if err != nil {
		f.Fatal(err)
	}
	s, err := New(settings, memory.New(), Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, path string) {
		body, _ := json.Marshal(map[string]any{"requests": []any{map[string]any{
			"method": "POST", "path": path,
			"body": map[string]any{"requests": []any{map[string]any{"method": "PUT", "path": "/buckets/inner"}}},
		}}})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r := httptest.NewRequest(http.MethodPost, "/v1/batch", strings.NewReader(string(body))).WithContext(ctx)
		r.Header.Set("Content-Type", "application/json")
		r.SetBasicAuth("alice", "pw")
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		if n := s.nestedBatches.Load(); n != 0 {
			t.Fatalf("%q reached the batch endpoint inside a batch", path)
		}
		if w.Code >= 500 {
			t.Fatalf("%q: %d %s", path, w.Code, w.Body)
		}
		if routesToBatch(path) && w.Code != http.StatusBadRequest {
			t.Fatalf("%q routes to the batch endpoint but answered %d", path, w.Code)
		}
		if ctx.Err() != nil {
			t.Fatalf("%q: the batch did not end", path)
		}
	})
}

// The answer cache is bounded in bytes, and a changeset requested with
// many `_expected` values (what clients put there busts CDN caches) is
// kept once.
func TestResponseCacheIsBoundedInBytes(t *testing.T) {
	const budget = 300000
	settings, err := config.FromMap(map[string]string{
		"includes": "kinto_changes", "multiauth.policies": "basicauth", "userid_hmac_secret": "s",
		"changes.resources": "/buckets/main", "response_cache_max_bytes": "300000",
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(settings, memory.New(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	defer ts.Close()
	do := func(method, path, body string) *http.Response {
		t.Helper()
		r, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
		r.SetBasicAuth("alice", "pw")
		r.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	do("PUT", "/v1/buckets/main", `{"permissions": {"read": ["system.Everyone"]}}`)
	do("PUT", "/v1/buckets/main/collections/big", "")
	for i := 0; i < 50; i++ {
		do("POST", "/v1/buckets/main/collections/big/records", `{"data": {"v": "`+strings.Repeat("x", 2000)+`"}}`)
	}
	entries := func() (int, int64) {
		s.responses.memo.mu.RLock()
		defer s.responses.memo.mu.RUnlock()
		return len(s.responses.memo.items), s.responses.memo.bytes
	}
	var one int64
	for i := 1; i <= 30; i++ {
		if resp := do("GET", "/v1/buckets/main/collections/big/changeset?_expected="+strconv.Itoa(i), ""); resp.StatusCode != 200 {
			t.Fatalf("changeset: %d", resp.StatusCode)
		}
		if i == 1 {
			_, one = entries()
		}
	}
	// The answer is held once; each _expected costs only its key.
	if _, size := entries(); one < 100000 || size > one+30*200 {
		t.Errorf("30 _expected values: %d bytes cached, one answer %d", size, one)
	}
	for i := 1; i <= 30; i++ {
		do("GET", "/v1/buckets/main/collections/big/changeset?_expected=1&_since="+strconv.Itoa(i), "")
		if _, size := entries(); size > budget {
			t.Fatalf("%d bytes cached, budget %d", size, budget)
		}
	}
	if _, size := entries(); size < one {
		t.Errorf("%d bytes cached: the latest answer was not kept", size)
	}
}
