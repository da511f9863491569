package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"kintogo/internal/app"
	"kintogo/internal/config"
	"kintogo/internal/httpapi"
	"kintogo/internal/storage"
	"kintogo/internal/storage/memory"
	"kintogo/internal/storage/storetest"
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
	srv, err := app.NewServer(settings, backends()[backend](b), httpapi.Options{Version: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	do := func(method, path, body string) { benchRequest(b, srv, method, path, body) }
	do("PUT", "/v1/buckets/main", `{"permissions": {"read": ["system.Everyone"]}}`)
	for i := 0; i < 100; i++ {
		c := "/v1/buckets/main/collections/c" + strconv.Itoa(i)
		do("PUT", c, "")
		do("POST", c+"/records", `{"data": {"n": 1}}`)
	}
	return srv
}

// benchRequest sends an authenticated request to h, failing on an error.
func benchRequest(b *testing.B, h http.Handler, method, path, body string) *httptest.ResponseRecorder {
	b.Helper()
	r := httptest.NewRequest(method, path, bytes.NewBufferString(body))
	r.SetBasicAuth("bench", "pw")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code >= 300 {
		b.Fatalf("%s %s: %d %s", method, path, w.Code, w.Body)
	}
	return w
}

// bareHandler serves, with a bare net/http handler, the bytes that h
// answers to path: the ceiling of what serving that answer can cost.
func bareHandler(h http.Handler, path string) http.Handler {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
	body, _ := io.ReadAll(w.Body)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
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
			b.Run("bare-net-http", func(b *testing.B) { benchmarkGet(b, bareHandler(srv, monitor), "/") })
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
	b.Run("bare-net-http", func(b *testing.B) { benchmarkGet(b, bareHandler(srv, path), "/") })
}

// BenchmarkLargeCollection measures lists of a 10,000-record collection:
// a filtered and sorted page, and _since polling for the newest changes.
func BenchmarkLargeCollection(b *testing.B) {
	for _, backend := range []string{"memory", "sqlite"} {
		settings, _ := config.FromMap(map[string]string{"multiauth.policies": "basicauth"})
		store := backends()[backend](b)
		srv, err := httpapi.New(settings, store, httpapi.Options{Version: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		put := func(path, body string) { benchRequest(b, srv, "PUT", path, body) }
		put("/v1/buckets/b", `{"permissions": {"read": ["system.Everyone"]}}`)
		put("/v1/buckets/b/collections/c", "")
		ctx := context.Background()
		scope := storage.Scope{Parent: "/buckets/b/collections/c", Resource: "record"}
		if err := store.Update(ctx, func(tx storage.Tx) error {
			for i := 0; i < 10000; i++ {
				data := map[string]any{"n": json.Number(strconv.Itoa(i % 1000)), "title": "record " + strconv.Itoa(i), "tags": []any{"t" + strconv.Itoa(i%7)}}
				if _, err := tx.Put(ctx, scope, &storage.Object{ID: "r" + strconv.Itoa(i), Data: data}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		// The 10 newest records changed since the poller's last visit.
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, httptest.NewRequest("GET", "/v1/buckets/b/collections/c/records?_sort=-last_modified&_limit=11&_fields=id", nil))
		var page struct {
			Data []struct {
				LastModified int64 `json:"last_modified"`
			} `json:"data"`
		}
		json.Unmarshal(w.Body.Bytes(), &page)
		since := strconv.FormatInt(page.Data[10].LastModified, 10)
		b.Run(backend+"/filtered-sorted-page", func(b *testing.B) {
			benchmarkGet(b, srv, "/v1/buckets/b/collections/c/records?min_n=500&contains_tags=%22t3%22&_sort=-title&_limit=50")
		})
		b.Run(backend+"/since-poll", func(b *testing.B) {
			benchmarkGet(b, srv, "/v1/buckets/b/collections/c/records?_since="+since)
		})
	}
}

// BenchmarkWriteWithIdleStreams measures a record write (the handler
// alone, memory backend) with 0 and 2,000 event streams open on other
// collections: a commit wakes only the streams of the scopes it touched,
// so the idle streams must cost the write nothing.
func BenchmarkWriteWithIdleStreams(b *testing.B) {
	settings, err := config.FromMap(map[string]string{
		"multiauth.policies": "basicauth", "push.max_streams": "5000", "push.heartbeat_seconds": "3600",
	})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := app.NewServer(settings, memory.New(), httpapi.Options{Version: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	do := func(method, path, body string) { benchRequest(b, srv, method, path, body) }
	do("PUT", "/v1/buckets/main", `{"permissions": {"read": ["system.Everyone"]}}`)
	do("PUT", "/v1/buckets/main/collections/written", "")
	for i := 0; i < 20; i++ {
		do("PUT", "/v1/buckets/main/collections/other"+strconv.Itoa(i), "")
	}
	// CPU of the whole process per write: what woken streams would spend
	// in their own goroutines counts too.
	write := func(b *testing.B) {
		b.ReportAllocs()
		start := cpuTime()
		for i := 0; i < b.N; i++ {
			benchRequest(b, srv, "POST", "/v1/buckets/main/collections/written/records", `{"data": {"n": 1}}`)
		}
		time.Sleep(50 * time.Millisecond) // let woken streams finish
		b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
	}
	b.Run("streams=0", write)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: 2100}}
	for i := 0; i < 2000; i++ {
		req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/v1/buckets/main/collections/other"+strconv.Itoa(i%20)+"/records", nil)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		if resp.StatusCode != 200 {
			b.Fatalf("stream %d: %d", i, resp.StatusCode)
		}
		defer resp.Body.Close()
	}
	b.Run("streams=2000", write)
}

// cpuTime is the CPU time the process used so far (user and system), in
// nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkListSizes measures the lists whose cost must not grow with the
// collection, on SQLite and PostgreSQL (when KINTOGO_TEST_POSTGRES is
// set), with collections of 2,000 and 50,000 records (or the sizes of
// KINTOGO_BENCH_LIST_SIZES, e.g. "2000,1000000"): the _since poll of the
// 10 newest records, the first page by -last_modified, the page its
// Next-Page reaches, and a HEAD count; without the answer cache, which
// would answer all but the first of identical requests.
func BenchmarkListSizes(b *testing.B) {
	sizes := []int{2000, 50000}
	if env := os.Getenv("KINTOGO_BENCH_LIST_SIZES"); env != "" {
		sizes = nil
		for _, f := range strings.Split(env, ",") {
			n, err := strconv.Atoi(f)
			if err != nil {
				b.Fatalf("KINTOGO_BENCH_LIST_SIZES: %v", err)
			}
			sizes = append(sizes, n)
		}
	}
	stores := map[string]storetest.Open{"sqlite": storetest.SQLite}
	if pg := storetest.PostgreSQL(); pg != nil {
		stores["postgresql"] = pg
	}
	for backend, open := range stores {
		for _, size := range sizes {
			b.Run(backend+"/"+strconv.Itoa(size), func(b *testing.B) { benchmarkListSize(b, open(b), size) })
		}
	}
}

func benchmarkListSize(b *testing.B, store storage.Storage, size int) {
	// No answer cache: what is measured is the query, every time.
	settings, _ := config.FromMap(map[string]string{"multiauth.policies": "basicauth", "response_cache_max_bytes": "1"})
	srv, err := app.NewServer(settings, store, httpapi.Options{Version: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	benchRequest(b, srv, "PUT", "/v1/buckets/b", `{"permissions": {"read": ["system.Everyone"]}}`)
	benchRequest(b, srv, "PUT", "/v1/buckets/b/collections/c", "")
	ctx := context.Background()
	scope := storage.Scope{Parent: "/buckets/b/collections/c", Resource: "record"}
	// In transactions of 10,000: PostgreSQL's must stay small.
	for start := 0; start < size; start += 10000 {
		if err := store.Update(ctx, func(tx storage.Tx) error {
			for i := start; i < size && i < start+10000; i++ {
				data := map[string]any{"n": json.Number(strconv.Itoa(i % 1000)), "title": "record " + strconv.Itoa(i)}
				if _, err := tx.Put(ctx, scope, &storage.Object{ID: "r" + strconv.Itoa(i), Data: data}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	if pg, ok := store.(interface{ Pool() *pgxpool.Pool }); ok {
		// What autovacuum does soon after such a load, whose transactions
		// each updated the scope's timestamps row 10,000 times: measure
		// the steady state, not the dead row versions of the load.
		if _, err := pg.Pool().Exec(ctx, "VACUUM ANALYZE"); err != nil {
			b.Fatal(err)
		}
	}
	records := "/v1/buckets/b/collections/c/records"
	first := benchRequest(b, srv, "GET", records+"?_limit=20", "")
	var page struct {
		Data []struct {
			LastModified int64 `json:"last_modified"`
		} `json:"data"`
	}
	json.Unmarshal(first.Body.Bytes(), &page)
	since := strconv.FormatInt(page.Data[10].LastModified, 10)
	next := strings.TrimPrefix(first.Header().Get("Next-Page"), "http://example.com")
	name := strconv.Itoa(size)
	b.Run("since-poll", func(b *testing.B) { benchmarkGet(b, srv, records+"?_since="+since) })
	b.Run("first-page", func(b *testing.B) { benchmarkGet(b, srv, records+"?_limit=20") })
	b.Run("next-page", func(b *testing.B) { benchmarkGet(b, srv, next) })
	b.Run("head-count", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, httptest.NewRequest("HEAD", records, nil))
			if w.Code != 200 || w.Header().Get("Total-Records") != name {
				b.Fatalf("%d %v", w.Code, w.Header())
			}
		}
	})
}

// BenchmarkPost measures record POSTs by concurrent writers (the handler
// alone) into one collection and into 16, on every backend: what group
// commit shares.
func BenchmarkPost(b *testing.B) {
	for name, open := range backends() {
		for _, spread := range []int{1, 16} {
			b.Run(name+"/collections="+strconv.Itoa(spread), func(b *testing.B) {
				settings, _ := config.FromMap(map[string]string{"multiauth.policies": "basicauth"})
				srv, err := app.NewServer(settings, open(b), httpapi.Options{Version: "bench"})
				if err != nil {
					b.Fatal(err)
				}
				benchRequest(b, srv, "PUT", "/v1/buckets/main", "")
				for i := 0; i < spread; i++ {
					benchRequest(b, srv, "PUT", "/v1/buckets/main/collections/c"+strconv.Itoa(i), "")
				}
				var n atomic.Int64
				b.ReportAllocs()
				b.SetParallelism(8) // 16 writers on 2 cores
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						c := strconv.Itoa(int(n.Add(1)) % spread)
						benchRequest(b, srv, "POST", "/v1/buckets/main/collections/c"+c+"/records", `{"data": {"title": "a record"}}`)
					}
				})
			})
		}
	}
}
