package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
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
	settings, err := config.FromMap(map[string]string{"multiauth.policies": "basicauth", "userid_hmac_secret": "fuzz"})
	if err != nil {
		f.Fatal(err)
	}
	s, err := New(settings, memory.New(), Options{})
	if err != nil {
		f.Fatal(err)
	}
	if err := s.Ready(); err != nil {
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
