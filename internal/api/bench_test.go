package api_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"kintogo/internal/api"
	"kintogo/internal/config"
)

// benchServer returns a server (no HTTP listener: the handler is called
// directly) monitoring 100 collections with one record each.
func benchServer(b *testing.B, backend string) http.Handler {
	b.Helper()
	settings, err := config.FromMap(map[string]string{
		"includes": "kinto_changes", "multiauth.policies": "basicauth",
		"changes.resources": "/buckets/main", "http_host": "bench.example.com",
	})
	if err != nil {
		b.Fatal(err)
	}
	t := &testing.T{}
	srv, err := api.New(settings, backends()[backend](t), api.Options{Version: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	do := func(method, path, body string) {
		r := httptest.NewRequest(method, path, bytes.NewBufferString(body))
		r.SetBasicAuth("bench", "pw")
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		if w.Code >= 300 {
			b.Fatalf("%s %s: %d %s", method, path, w.Code, w.Body)
		}
	}
	do("PUT", "/v1/buckets/main", `{"permissions": {"read": ["system.Everyone"]}}`)
	for i := 0; i < 100; i++ {
		c := "/v1/buckets/main/collections/c" + strconv.Itoa(i)
		do("PUT", c, "")
		do("POST", c+"/records", `{"data": {"n": 1}}`)
	}
	return srv
}

func benchmarkGet(b *testing.B, h http.Handler, path string) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
			if w.Code != 200 {
				b.Fatalf("%d %s", w.Code, w.Body)
			}
		}
	})
}

// BenchmarkMonitor measures GET of the monitor list of 100 collections on
// each backend, next to a bare handler writing the same bytes.
func BenchmarkMonitor(b *testing.B) {
	for _, backend := range []string{"memory", "sqlite"} {
		srv := benchServer(b, backend)
		b.Run(backend, func(b *testing.B) { benchmarkGet(b, srv, monitor) })
		since := strconv.FormatInt(time.Now().Add(-time.Hour).UnixMilli(), 10)
		b.Run(backend+"/since", func(b *testing.B) { benchmarkGet(b, srv, monitor+"?_since="+since+"&_expected=0") })
		if backend == "memory" {
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, httptest.NewRequest("GET", monitor, nil))
			body, _ := io.ReadAll(w.Body)
			bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Write(body)
			})
			b.Run("bare-net-http", func(b *testing.B) { benchmarkGet(b, bare, "/") })
		}
	}
}

// BenchmarkChangeset measures an anonymous per-collection changeset with
// _since, next to a bare handler writing the same bytes.
func BenchmarkChangeset(b *testing.B) {
	srv := benchServer(b, "sqlite")
	since := strconv.FormatInt(time.Now().Add(-time.Hour).UnixMilli(), 10)
	path := "/v1/buckets/main/collections/c1/changeset?_expected=0&_since=%22" + since + "%22"
	b.Run("sqlite", func(b *testing.B) { benchmarkGet(b, srv, path) })
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
	body, _ := io.ReadAll(w.Body)
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	b.Run("bare-net-http", func(b *testing.B) { benchmarkGet(b, bare, "/") })
}
