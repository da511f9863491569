package httpapi_test

import (
	"context"
	"net/http/httptest"
	"os"
	"strconv"
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
	for i := 0; i < max(len(got), len(want)); i++ {
		var g, w sseEvent
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Errorf("event %d of the stream resumed on another node (after %d events): %v, want %v, as the stream that never stopped", i, 8, g, w)
		}
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

// /__broadcasts__ answers the same version on every node of a cluster (a
// read-only one included, on the standby when there is one), and it moves
// without anyone asking the writable nodes: they publish what the debounce
// allows as commits arrive and settle.
func TestBroadcastsEqualOnThreeNodes(t *testing.T) {
	settings := map[string]string{"push_broadcast_min_debounce_interval_seconds": "1"}
	a, b := twoPostgresNodes(t, settings)
	readerDSN := os.Getenv("KINTOGO_TEST_POSTGRES")
	if standby := os.Getenv("KINTOGO_TEST_STANDBY"); standby != "" {
		readerDSN = standby
	}
	store, err := postgres.Open(context.Background(), readerDSN, postgres.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	readonly := map[string]string{"push_broadcast_min_debounce_interval_seconds": "1", "readonly": "true"}
	ts := httptest.NewServer(apptest.Server(t, store, httpapi.Options{Version: "test"}, testSettings, readonly))
	t.Cleanup(ts.Close)
	reader := &client{t: t, base: ts.URL}
	nodes := []*client{a, b, reader}
	setupMonitored(t, a)
	version := func(c *client) string {
		return strings.Trim(c.get("/v1/__broadcasts__", "").must(t, 200).str("broadcasts.remote-settings/monitor_changes"), `"`)
	}
	for round := 0; round < 3; round++ {
		writer := nodes[round%2]
		ts := writer.do(req{method: "POST", path: "/v1/buckets/main/collections/c1/records", auth: "alice:alicepw",
			body: map[string]any{"data": map[string]any{"round": round}}}).must(t, 201).str("data.last_modified")
		// Only the reader is asked: the version moves all the same.
		deadline := time.Now().Add(5 * time.Second)
		for version(reader) != ts {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the reader answers %s, want the new version %s", round, version(reader), ts)
			}
			time.Sleep(50 * time.Millisecond)
		}
		for i, n := range nodes {
			if got := version(n); got != ts {
				t.Errorf("round %d: node %d answers %s, the reader %s", round, i, got, ts)
			}
		}
	}
}

// A reader on a streaming standby shows how far behind its primary it is
// (kinto_replication_lag_seconds), and its heartbeat fails beyond
// replication_max_lag_seconds: here, while the standby's replay is
// paused and the primary writes.
func TestReplicationLagOnAStandby(t *testing.T) {
	dsn := os.Getenv("KINTOGO_TEST_STANDBY")
	primary := storetest.PostgreSQL()
	if dsn == "" || primary == nil {
		t.Skip("KINTOGO_TEST_STANDBY (and KINTOGO_TEST_POSTGRES) not set")
	}
	writer := newClient(t, primary(t), nil)
	store, err := postgres.Open(context.Background(), dsn, postgres.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	settings := map[string]string{"readonly": "true", "replication_max_lag_seconds": "1",
		"includes": "kinto.plugins.flush kinto_changes kinto.plugins.prometheus"}
	ts := httptest.NewServer(apptest.Server(t, store, httpapi.Options{Version: "test"}, testSettings, settings))
	t.Cleanup(ts.Close)
	reader := &client{t: t, base: ts.URL}
	if r := reader.get("/v1/__heartbeat__", "").must(t, 200); r.str("replication") != "true" {
		t.Fatalf("heartbeat of a reader in step: %s", r.raw)
	}
	ctx := context.Background()
	if _, err := store.Pool().Exec(ctx, `SELECT pg_wal_replay_pause()`); err != nil {
		t.Skipf("cannot pause the standby's replay: %v", err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			store.Pool().Exec(ctx, `SELECT pg_wal_replay_resume()`)
			resumed = true
		}
	}
	defer resume()
	deadline := time.Now().Add(10 * time.Second)
	for {
		writer.put("/v1/buckets/lag-"+strconv.FormatInt(time.Now().UnixNano(), 36), "alice:alicepw", nil).must(t, 201)
		r := reader.get("/v1/__heartbeat__", "")
		if r.status == 503 && r.str("replication") == "false" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the heartbeat of a reader whose standby stopped replaying: %d %s", r.status, r.raw)
		}
		time.Sleep(200 * time.Millisecond)
	}
	metrics := reader.get("/v1/__metrics__", "").must(t, 200)
	if !strings.Contains(string(metrics.raw), "kinto_replication_lag_seconds ") || strings.Contains(string(metrics.raw), "kinto_replication_lag_seconds 0\n") {
		t.Errorf("no replication lag in the metrics:\n%s", metrics.raw)
	}
	resume()
	deadline = time.Now().Add(10 * time.Second)
	for reader.get("/v1/__heartbeat__", "").status != 200 {
		if time.Now().After(deadline) {
			t.Fatal("the heartbeat still fails once the standby replays again")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
