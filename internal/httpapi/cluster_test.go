package httpapi_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"kintogo/internal/app/apptest"
	"kintogo/internal/httpapi"
	"kintogo/internal/storage/postgres"
	"kintogo/internal/storage/storetest"
)

// twoPostgresNodes returns clients of two servers sharing the test
// PostgreSQL database, each following the change log; it skips without
// one.
func twoPostgresNodes(t *testing.T, extra map[string]string) (a, b *client) {
	open := storetest.PostgreSQL()
	if open == nil {
		t.Skip("KINTOGO_TEST_POSTGRES is not set")
	}
	a = newClient(t, open(t), extra)
	store, err := postgres.Open(context.Background(), os.Getenv("KINTOGO_TEST_POSTGRES"), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ts := httptest.NewServer(apptest.Server(t, store, httpapi.Options{Version: "test"}, testSettings, extra))
	t.Cleanup(ts.Close)
	return a, &client{t: t, base: ts.URL}
}

// A stream of the monitor resumed on another node with Last-Event-ID
// misses nothing and repeats nothing: what it gets, before and after,
// is exactly what a stream that never stopped got, ids included, while
// writers on both nodes change the monitored collections.
func TestMonitorStreamResumedOnAnotherNode(t *testing.T) {
	a, b := twoPostgresNodes(t, nil)
	setupMonitored(t, a)
	url := monitor + "?bucket=main"
	reference, _ := openSSE(t, a.base+url, "", "")
	first, _ := openSSE(t, a.base+url, "", "")
	const writes = 60
	final := map[string]string{} // collection -> newest timestamp written
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w, node := range []*client{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < writes/2; i++ {
				coll := []string{"c1", "c2"}[(i+w)%2]
				ts := node.do(req{method: "POST", path: "/v1/buckets/main/collections/" + coll + "/records", auth: "alice:alicepw",
					body: map[string]any{"data": map[string]any{"i": i}}}).must(t, 201).str("data.last_modified")
				mu.Lock()
				if ts > final[coll] {
					final[coll] = ts
				}
				mu.Unlock()
				time.Sleep(time.Millisecond)
			}
		}()
	}
	// Some events from node a, then the stream is cut and resumed on b.
	var got []sseEvent
	for len(got) < 8 {
		got = append(got, first.next(t, 5*time.Second))
	}
	first.close()
	resumed, _ := openSSE(t, b.base+url, "", got[len(got)-1].id)
	wg.Wait()
	// untilFinal reads a stream until it sent every collection's newest
	// timestamp.
	untilFinal := func(s *sseClient, events []sseEvent) []sseEvent {
		t.Helper()
		last := map[string]bool{}
		for _, e := range events {
			for coll, ts := range final {
				if strings.Contains(e.data, `"collection":"`+coll+`"`) && strings.Contains(e.data, `"last_modified":`+ts) {
					last[coll] = true
				}
			}
		}
		for len(last) < len(final) {
			e := s.next(t, 5*time.Second)
			events = append(events, e)
			for coll, ts := range final {
				if strings.Contains(e.data, `"collection":"`+coll+`"`) && strings.Contains(e.data, `"last_modified":`+ts) {
					last[coll] = true
				}
			}
		}
		return events
	}
	got = untilFinal(resumed, got)
	want := untilFinal(reference, nil)
	resumed.quiet(t, 200*time.Millisecond)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("resumed on another node:\n%v\nwant, as the stream that never stopped:\n%v", got, want)
	}
	seen := map[string]bool{}
	for _, e := range got {
		if seen[e.data] {
			t.Errorf("sent twice: %s", e.data)
		}
		seen[e.data] = true
	}
	t.Logf("%d events for %d writes", len(got), writes)
}
