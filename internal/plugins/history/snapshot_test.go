package history_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"kintogo/internal/app/apptest"
	"kintogo/internal/httpapi"
	"kintogo/internal/storage/storetest"
)

type server struct {
	t   *testing.T
	url string
}

func (s *server) do(method, path, auth string, body any) (int, map[string]any) {
	s.t.Helper()
	var r io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		r = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, s.url+path, r)
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", "Basic "+auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

const (
	alice = "YWxpY2U6cHc=" // alice:pw
	bob   = "Ym9iOng="     // bob:x
)

func newServer(t *testing.T, open storetest.Open, maxFetch string) *server {
	srv := apptest.Server(t, open(t), httpapi.Options{}, map[string]string{
		"includes": "kinto.plugins.history", "multiauth.policies": "basicauth", "userid_hmac_secret": "s",
		"storage_max_fetch_size": maxFetch,
	})
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return &server{t: t, url: ts.URL}
}

// The snapshot of a collection at each timestamp of its history is the
// collection as it was then: random creations, updates and deletions,
// the list read after each of them is what the snapshot at its timestamp
// answers (newest first), on every backend; with more history than one
// query may read (storage_max_fetch_size 8), too.
func TestSnapshotsAreThePast(t *testing.T) {
	for name, open := range storetest.Backends() {
		t.Run(name, func(t *testing.T) {
			s := newServer(t, open, "8")
			s.do("PUT", "/v1/buckets/b", alice, nil)
			s.do("PUT", "/v1/buckets/b/collections/c", alice, nil)
			rng := rand.New(rand.NewPCG(1, 2))
			type moment struct {
				ts   int64
				list any
			}
			var past []moment
			live := map[string]bool{}
			for i := 0; i < 60; i++ {
				id := fmt.Sprintf("r%d", rng.IntN(6))
				var code int
				var body map[string]any
				if live[id] && rng.IntN(3) == 0 {
					code, body = s.do("DELETE", "/v1/buckets/b/collections/c/records/"+id, alice, nil)
					delete(live, id)
				} else {
					code, body = s.do("PUT", "/v1/buckets/b/collections/c/records/"+id, alice, map[string]any{"data": map[string]any{"step": i, "nested": map[string]any{"n": rng.IntN(100)}}})
					live[id] = true
				}
				if code/100 != 2 {
					t.Fatalf("write %d: %d %v", i, code, body)
				}
				ts := int64(body["data"].(map[string]any)["last_modified"].(float64))
				_, list := s.do("GET", "/v1/buckets/b/collections/c/records?_sort=-last_modified", alice, nil)
				past = append(past, moment{ts, list["data"]})
			}
			for _, m := range past {
				code, snap := s.do("GET", fmt.Sprintf("/v1/buckets/b/snapshot/collections/c@%d", m.ts), alice, nil)
				if code != 200 || !cmp.Equal(snap["data"], m.list) {
					t.Fatalf("snapshot at %d: %d %s", m.ts, code, cmp.Diff(m.list, snap["data"]))
				}
			}
			// Before the first record: nothing.
			if _, snap := s.do("GET", "/v1/buckets/b/snapshot/collections/c@0", alice, nil); !cmp.Equal(snap["data"], []any{}) {
				t.Errorf("at 0: %v", snap)
			}
		})
	}
}

// Who may ask, and the errors, as Kinto 26.5 answers them.
func TestSnapshotAccessAndErrors(t *testing.T) {
	for name, open := range storetest.Backends() {
		t.Run(name, func(t *testing.T) {
			s := newServer(t, open, "10000")
			s.do("PUT", "/v1/buckets/b", alice, nil)
			s.do("PUT", "/v1/buckets/b/collections/c", alice, nil)
			s.do("PUT", "/v1/buckets/b/collections/c/records/r1", alice, map[string]any{"data": map[string]any{"v": 1}})
			for _, c := range []struct {
				path, auth string
				code       int
				want       map[string]any
			}{
				{"/v1/buckets/b/snapshot/collections/c@abc", alice, 400, map[string]any{"code": 400.0, "errno": 107.0, "error": "Invalid parameters",
					"message": "Invalid timestamp 'abc'", "details": []any{map[string]any{"location": "path", "name": "timestamp", "description": "Invalid timestamp 'abc'"}}}},
				{"/v1/buckets/b/snapshot/collections/c@-1", alice, 400, nil},
				{"/v1/buckets/b/snapshot/collections/c@1", "", 401, nil},
				{"/v1/buckets/b/snapshot/collections/c@1", bob, 403, nil},
				{"/v1/buckets/nope/snapshot/collections/c@1", alice, 403, nil},
				{"/v1/buckets/b/snapshot/collections/nope@1", alice, 200, map[string]any{"data": []any{}}},
				{"/v1/buckets/b/snapshot/collections/c%21@1", alice, 404, map[string]any{"code": 404.0, "errno": 111.0, "error": "Not Found",
					"details": map[string]any{"id": "c!", "resource_name": "collection"}}},
			} {
				code, body := s.do("GET", c.path, c.auth, nil)
				if code != c.code || (c.want != nil && !cmp.Equal(body, c.want)) {
					t.Errorf("%s: %d %v, want %d %v", c.path, code, body, c.code, c.want)
				}
			}
			// A reader of the collection only may.
			s.do("PATCH", "/v1/buckets/b/collections/c", alice, map[string]any{"permissions": map[string]any{"read": []any{"system.Authenticated"}}})
			if code, body := s.do("GET", "/v1/buckets/b/snapshot/collections/c@99999999999999", bob, nil); code != 200 || len(body["data"].([]any)) != 1 {
				t.Errorf("a reader of the collection: %d %v", code, body)
			}
			if code, _ := s.do("POST", "/v1/buckets/b/snapshot/collections/c@1", alice, nil); code != 405 {
				t.Errorf("POST: %d", code)
			}
		})
	}
}

// A collection larger than storage_max_fetch_size is refused, not read.
func TestSnapshotIsBounded(t *testing.T) {
	s := newServer(t, storetest.Backends()["memory"], "3")
	s.do("PUT", "/v1/buckets/b", alice, nil)
	s.do("PUT", "/v1/buckets/b/collections/c", alice, nil)
	for i := 0; i < 4; i++ {
		s.do("PUT", fmt.Sprintf("/v1/buckets/b/collections/c/records/r%d", i), alice, map[string]any{"data": map[string]any{}})
	}
	if code, body := s.do("GET", "/v1/buckets/b/snapshot/collections/c@1", alice, nil); code != 400 || body["errno"] != 107.0 {
		t.Errorf("%d %v", code, body)
	}
}

// The history a snapshot reads is bounded too: a changed record whose
// version lies behind more than 10 pages of other entries is refused.
func TestSnapshotHistoryIsBounded(t *testing.T) {
	s := newServer(t, storetest.Backends()["memory"], "3")
	s.do("PUT", "/v1/buckets/b", alice, nil)
	s.do("PUT", "/v1/buckets/b/collections/c", alice, nil)
	s.do("PUT", "/v1/buckets/b/collections/c/records/old", alice, map[string]any{"data": map[string]any{"v": 0}})
	var ts float64
	for i := 0; i < 40; i++ {
		_, body := s.do("PUT", "/v1/buckets/b/collections/c/records/busy", alice, map[string]any{"data": map[string]any{"v": i}})
		ts = body["data"].(map[string]any)["last_modified"].(float64)
	}
	s.do("PUT", "/v1/buckets/b/collections/c/records/old", alice, map[string]any{"data": map[string]any{"v": 1}})
	if code, body := s.do("GET", fmt.Sprintf("/v1/buckets/b/snapshot/collections/c@%d", int64(ts)), alice, nil); code != 400 || !strings.Contains(fmt.Sprint(body["message"]), "changed too much") {
		t.Errorf("%d %v", code, body)
	}
}
