package changes_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"kintogo/internal/app/apptest"
	"kintogo/internal/httpapi"
	"kintogo/internal/storage/memory"
)

// The answer cache is bounded in bytes, and a changeset requested with
// many `_expected` values (what clients put there busts CDN caches) is
// held once.
func TestAnswerCacheIsBoundedInBytes(t *testing.T) {
	const budget = 300000
	s := apptest.Server(t, memory.New(), httpapi.Options{}, map[string]string{
		"includes": "kinto_changes", "multiauth.policies": "basicauth", "userid_hmac_secret": "s",
		"changes.resources": "/buckets/main", "response_cache_max_bytes": strconv.Itoa(budget),
	})
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
	var one int64
	for i := 1; i <= 30; i++ {
		if resp := do("GET", "/v1/buckets/main/collections/big/changeset?_expected="+strconv.Itoa(i), ""); resp.StatusCode != 200 {
			t.Fatalf("changeset: %d", resp.StatusCode)
		}
		if i == 1 {
			_, one = s.AnswerCacheStats()
		}
	}
	// The answer is held once; each _expected costs only its key.
	if _, size := s.AnswerCacheStats(); one < 100000 || size > one+30*200 {
		t.Errorf("30 _expected values: %d bytes cached, one answer %d", size, one)
	}
	for i := 1; i <= 30; i++ {
		do("GET", "/v1/buckets/main/collections/big/changeset?_expected=1&_since="+strconv.Itoa(i), "")
		if _, size := s.AnswerCacheStats(); size > budget {
			t.Fatalf("%d bytes cached, budget %d", size, budget)
		}
	}
	if _, size := s.AnswerCacheStats(); size < one {
		t.Errorf("%d bytes cached: the latest answer was not kept", size)
	}
}
