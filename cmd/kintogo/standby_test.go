package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// standbyDSN is the DSN of db on the streaming standby of the test
// PostgreSQL (scripts/standby.sh); the test skips without one.
func standbyDSN(t *testing.T, db string) string {
	dsn := os.Getenv("KINTOGO_TEST_STANDBY")
	if dsn == "" {
		t.Skip("KINTOGO_TEST_STANDBY is not set: no streaming standby to test against (scripts/standby.sh)")
	}
	return dsn[:strings.LastIndex(dsn, "/")+1] + db
}

// sighting is when the reader first showed one write, in each view.
type sighting struct {
	acked               time.Time
	ts                  int64
	coll                string
	changeset, monitor  time.Time
	stream              time.Time
	inChangeset, inStrm int
}

// A writer node on the primary, a read-only node on a streaming hot
// standby of it (how Remote Settings runs its readers). Several writers
// write hundreds of records over several monitored collections; the
// reader shows every write in its monitor, in its collection's changeset
// (asked with _expected set to the new timestamp) and in an event stream,
// each once, within a second (p99). Killed with kill -9 and restarted,
// the reader catches up, and its streams resume with Last-Event-ID
// without a gap or a repeat; so it does after the standby restarts.
func TestReaderOnAStreamingStandby(t *testing.T) {
	primary := pgDSN(t, "kintogo_nodes")
	standby := standbyDSN(t, "kintogo_nodes")
	colls := []string{"c0", "c1", "c2"}
	common := []string{"KINTO_STORAGE_BACKEND=postgresql", "KINTO_MULTIAUTH_POLICIES=basicauth",
		"KINTO_INCLUDES=kinto.plugins.flush kinto_changes", "KINTO_CHANGES_RESOURCES=/buckets/main"}
	writerEnv := append([]string{"KINTO_STORAGE_URL=" + primary}, common...)
	readerEnv := append([]string{"KINTO_STORAGE_URL=" + standby, "KINTO_READONLY=true"}, common...)
	migrate := exec.Command(binary, "migrate")
	migrate.Env = append(os.Environ(), writerEnv...)
	if out, err := migrate.CombinedOutput(); err != nil {
		t.Fatalf("migrate: %v %s", err, out)
	}
	dir := t.TempDir()
	writer := startNode(t, dir, writerEnv)
	must(t, 202, "POST", writer.base+"/__flush__", "")
	must(t, 201, "PUT", writer.base+"/buckets/main", "")
	for _, c := range colls {
		must(t, 201, "PUT", writer.base+"/buckets/main/collections/"+c, "")
	}
	reader := startNode(t, dir, readerEnv)
	var readerBase atomic.Pointer[string]
	readerBase.Store(&reader.base)
	// The reader sees the collections before anything is measured.
	waitFor(t, 10*time.Second, "the reader's monitor", func() bool {
		_, out, _, _ := call("GET", reader.base+"/buckets/monitor/collections/changes/records", "")
		data, _ := out["data"].([]any)
		return len(data) == len(colls)
	})

	var mu sync.Mutex
	writes := map[string]*sighting{} // record id -> sighting
	// sight is the sighting of id, made when first needed: the reader may
	// show a write before its writer has read the answer.
	sight := func(id string) *sighting {
		w := writes[id]
		if w == nil {
			w = &sighting{}
			writes[id] = w
		}
		return w
	}
	latest := map[string]int64{} // collection -> newest acknowledged timestamp
	ctx, stop := context.WithCancel(context.Background())
	defer stop()

	// Event streams of the records of each collection, resumed with
	// Last-Event-ID whenever they end.
	var streams sync.WaitGroup
	for _, c := range colls {
		streams.Add(1)
		go func() {
			defer streams.Done()
			followStream(ctx, &readerBase, "/buckets/main/collections/"+c+"/records?_since=0", func(id string) {
				mu.Lock()
				defer mu.Unlock()
				w := sight(id)
				w.inStrm++
				if w.stream.IsZero() {
					w.stream = time.Now()
				}
			})
		}()
	}
	// Pollers of the monitor and of each collection's changeset, asked
	// with _expected set to the newest acknowledged timestamp.
	var pollers sync.WaitGroup
	pollers.Add(1)
	go func() {
		defer pollers.Done()
		since := map[string]int64{}
		for ctx.Err() == nil {
			base := *readerBase.Load()
			_, out, _, err := call("GET", base+"/buckets/monitor/collections/changes/records", "")
			if err == nil {
				now := time.Now()
				for _, e := range out["data"].([]any) {
					m := e.(map[string]any)
					ts, _ := m["last_modified"].(json.Number).Int64()
					coll := m["collection"].(string)
					mu.Lock()
					for _, w := range writes {
						if w.coll == coll && w.ts > 0 && w.ts <= ts && w.monitor.IsZero() {
							w.monitor = now
						}
					}
					mu.Unlock()
				}
			}
			for _, c := range colls {
				mu.Lock()
				expected := latest[c]
				mu.Unlock()
				url := fmt.Sprintf("%s/buckets/main/collections/%s/changeset?_expected=%d", base, c, expected)
				if since[c] > 0 {
					url += "&_since=" + strconv.FormatInt(since[c], 10)
				}
				code, out, _, err := call("GET", url, "")
				if err != nil || code != 200 {
					continue
				}
				now := time.Now()
				mu.Lock()
				for _, r := range out["changes"].([]any) {
					rec := r.(map[string]any)
					ts, _ := rec["last_modified"].(json.Number).Int64()
					w := sight(rec["id"].(string))
					w.inChangeset++
					if w.changeset.IsZero() {
						w.changeset = now
					}
					since[c] = max(since[c], ts)
				}
				mu.Unlock()
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()

	// write makes n records through the writer with 4 writers.
	write := func(phase string, n int) {
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < n; i += 4 {
					c := colls[i%len(colls)]
					id := fmt.Sprintf("%s-%d", phase, i)
					code, out, _, err := call("PUT", writer.base+"/buckets/main/collections/"+c+"/records/"+id, `{"data": {"i": 1}}`)
					if err != nil || code != 201 {
						t.Errorf("write %s: %d %v", id, code, err)
						continue
					}
					ts, _ := out["data"].(map[string]any)["last_modified"].(json.Number).Int64()
					now := time.Now()
					mu.Lock()
					w := sight(id)
					w.acked, w.ts, w.coll = now, ts, c
					latest[c] = max(latest[c], ts)
					mu.Unlock()
					time.Sleep(2 * time.Millisecond)
				}
			}()
		}
		wg.Wait()
	}
	// allSeen waits until the reader showed every write of the phases in
	// every view.
	allSeen := func(what string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			var missing []string
			mu.Lock()
			for id, w := range writes {
				switch {
				case w.acked.IsZero():
					missing = append(missing, id+" (not acknowledged: shown before written?)")
				case w.changeset.IsZero():
					missing = append(missing, id+" (changeset)")
				case w.monitor.IsZero():
					missing = append(missing, id+" (monitor)")
				case w.stream.IsZero():
					missing = append(missing, id+" (stream)")
				}
			}
			mu.Unlock()
			if len(missing) == 0 {
				return
			}
			if time.Now().After(deadline) {
				sort.Strings(missing)
				t.Fatalf("%s: the reader did not show %d writes within 15 s: %v", what, len(missing), missing[:min(len(missing), 10)])
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// 1. The reader runs: every write within a second.
	write("a", 300)
	allSeen("phase a")
	mu.Lock()
	var delays []time.Duration
	for _, w := range writes {
		// Shown before the writer read its answer: no delay.
		last := w.acked
		for _, at := range []time.Time{w.changeset, w.monitor, w.stream} {
			if at.After(last) {
				last = at
			}
		}
		delays = append(delays, last.Sub(w.acked))
	}
	mu.Unlock()
	sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
	p99 := delays[len(delays)*99/100]
	t.Logf("reader on the standby, %d writes: p50 %v, p99 %v, max %v", len(delays), delays[len(delays)/2], p99, delays[len(delays)-1])
	if p99 > time.Second {
		t.Errorf("p99 %v after the writer's answer, want under 1 s", p99)
	}

	// 2. kill -9 of the reader while writes go on; a new reader catches up.
	reader.cmd.Process.Kill()
	reader.cmd.Wait()
	write("b", 60)
	reader = startNode(t, dir, readerEnv)
	readerBase.Store(&reader.base)
	write("c", 60)
	allSeen("after the reader's restart")

	// 3. The standby restarts while writes go on.
	if restart := os.Getenv("KINTOGO_TEST_STANDBY_RESTART"); restart != "" {
		done := make(chan struct{})
		go func() { defer close(done); write("d", 60) }()
		if out, err := exec.Command("sh", "-c", restart).CombinedOutput(); err != nil {
			t.Fatalf("restarting the standby: %v %s", err, out)
		}
		<-done
		write("e", 30)
		allSeen("after the standby's restart")
	} else {
		t.Log("KINTOGO_TEST_STANDBY_RESTART not set: the standby's restart is not tested")
	}

	stop()
	pollers.Wait()
	streams.Wait()
	mu.Lock()
	defer mu.Unlock()
	for id, w := range writes {
		if w.inStrm != 1 {
			t.Errorf("%s: in the event streams %d times, want once", id, w.inStrm)
		}
		if w.inChangeset != 1 {
			t.Errorf("%s: in the changesets %d times, want once", id, w.inChangeset)
		}
	}
}

// followStream reads an event stream of the node at *base, calling fn
// with the id of each record event; whenever the stream ends it connects
// again (to the node base then names) with the last event id, until ctx
// ends.
func followStream(ctx context.Context, base *atomic.Pointer[string], path string, fn func(id string)) {
	last := ""
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, "GET", *base.Load()+path, nil)
		req.SetBasicAuth("alice", "pw")
		req.Header.Set("Accept", "text/event-stream")
		if last != "" {
			req.Header.Set("Last-Event-ID", last)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			if resp != nil {
				resp.Body.Close()
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		id := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "id: "):
				id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				var rec struct {
					ID string `json:"id"`
				}
				if json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &rec) == nil && rec.ID != "" {
					fn(rec.ID)
				}
			case line == "" && id != "":
				last, id = id, ""
			}
		}
		resp.Body.Close()
	}
}

// waitFor polls cond until it holds, or fails the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
