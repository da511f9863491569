package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// node is one kintogo process.
type node struct {
	cmd  *exec.Cmd
	base string
}

func startNode(t *testing.T, dir string, env []string) *node {
	t.Helper()
	port := freePort(t)
	cmd := exec.Command(binary, "start", "--port", strconv.Itoa(port))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &node{cmd: cmd, base: "http://127.0.0.1:" + strconv.Itoa(port) + "/v1"}
	for i := 0; i < 200; i++ {
		if resp, err := http.Get(n.base + "/__lbheartbeat__"); err == nil {
			resp.Body.Close()
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			return n
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Kill()
	t.Fatal("node did not start")
	return nil
}

// call sends a request as user alice and decodes the JSON answer.
func call(method, url, body string) (int, map[string]any, http.Header, error) {
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.SetBasicAuth("alice", "pw")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	dec.Decode(&out)
	return resp.StatusCode, out, resp.Header, nil
}

func must(t *testing.T, status int, method, url, body string) map[string]any {
	t.Helper()
	code, out, _, err := call(method, url, body)
	if err != nil || code != status {
		t.Fatalf("%s %s: %d %v %v", method, url, code, out, err)
	}
	return out
}

// clusterEnv is the settings of the nodes of the cluster tests: one
// PostgreSQL database, basicauth, flush and the changes feed on main.
func clusterEnv(t *testing.T) []string {
	return []string{"KINTO_STORAGE_BACKEND=postgresql", "KINTO_STORAGE_URL=" + pgDSN(t, "kintogo_nodes"), "KINTO_MULTIAUTH_POLICIES=basicauth",
		"KINTO_INCLUDES=kinto.plugins.flush kinto_changes", "KINTO_CHANGES_RESOURCES=/buckets/main"}
}

// twoNodes starts two cluster nodes on an emptied database holding the
// monitored collection main/c.
func twoNodes(t *testing.T) (a, b *node) {
	env := clusterEnv(t)
	dir := t.TempDir()
	a, b = startNode(t, dir, env), startNode(t, dir, env)
	must(t, 202, "POST", a.base+"/__flush__", "")
	must(t, 201, "PUT", a.base+"/buckets/main", "")
	must(t, 201, "PUT", a.base+"/buckets/main/collections/c", "")
	return a, b
}

func pgDSN(t *testing.T, db string) string {
	dsn := os.Getenv("KINTOGO_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("KINTOGO_TEST_POSTGRES is not set: no PostgreSQL to test against")
	}
	i := strings.LastIndex(dsn, "/")
	return dsn[:i+1] + db
}

// Three kintogo processes on one PostgreSQL: concurrent writers on every
// node to the same collections, a _since poller per node. No acknowledged
// record is lost, none is seen twice, each poller sees timestamps in
// increasing order, and every node's changes monitor converges to the
// collections' own timestamps.
func TestThreeNodesOnePostgreSQL(t *testing.T) {
	env := clusterEnv(t)
	migrate := exec.Command(binary, "migrate")
	migrate.Env = append(os.Environ(), env...)
	if out, err := migrate.CombinedOutput(); err != nil {
		t.Fatalf("migrate: %v %s", err, out)
	}
	dir := t.TempDir()
	nodes := []*node{startNode(t, dir, env), startNode(t, dir, env), startNode(t, dir, env)}
	must(t, 202, "POST", nodes[0].base+"/__flush__", "")
	must(t, 201, "PUT", nodes[0].base+"/buckets/main", "")
	colls := []string{"c0", "c1"}
	for _, c := range colls {
		must(t, 201, "PUT", nodes[1].base+"/buckets/main/collections/"+c, "")
	}

	const perWriter = 30
	acked := map[string]map[string]int64{"c0": {}, "c1": {}} // collection -> id -> ts
	var mu sync.Mutex
	var writers sync.WaitGroup
	stop := make(chan struct{})
	for ni, n := range nodes {
		for w := 0; w < 2; w++ {
			writers.Add(1)
			go func(n *node, name string) {
				defer writers.Done()
				for i := 0; i < perWriter; i++ {
					c := colls[i%2]
					id := fmt.Sprintf("%s-%d", name, i)
					code, out, _, err := call("PUT", n.base+"/buckets/main/collections/"+c+"/records/"+id, `{"data": {"i": 1}}`)
					if err != nil || code != 201 {
						t.Errorf("write %s: %d %v", id, code, err)
						continue
					}
					ts, _ := out["data"].(map[string]any)["last_modified"].(json.Number).Int64()
					mu.Lock()
					acked[c][id] = ts
					mu.Unlock()
				}
			}(n, fmt.Sprintf("n%dw%d", ni, w))
		}
	}
	type seen struct {
		ids   map[string]int
		order []int64
	}
	results := make([]map[string]*seen, len(nodes))
	var pollers sync.WaitGroup
	for ni, n := range nodes {
		results[ni] = map[string]*seen{}
		for _, c := range colls {
			s := &seen{ids: map[string]int{}}
			results[ni][c] = s
			pollers.Add(1)
			go func(n *node, c string, s *seen) {
				defer pollers.Done()
				since := int64(0)
				poll := func() {
					code, out, _, err := call("GET", fmt.Sprintf("%s/buckets/main/collections/%s/records?_since=%d&_sort=last_modified", n.base, c, since), "")
					if err != nil || code != 200 {
						t.Errorf("poll %s: %d %v", c, code, err)
						return
					}
					for _, r := range out["data"].([]any) {
						rec := r.(map[string]any)
						ts, _ := rec["last_modified"].(json.Number).Int64()
						s.ids[rec["id"].(string)]++
						s.order = append(s.order, ts)
						since = ts
					}
				}
				for {
					select {
					case <-stop:
						poll() // a last poll once all writes are acknowledged
						return
					default:
						poll()
						time.Sleep(5 * time.Millisecond)
					}
				}
			}(n, c, s)
		}
	}
	writers.Wait()
	close(stop)
	pollers.Wait()

	for ni := range nodes {
		for _, c := range colls {
			s := results[ni][c]
			for i := 1; i < len(s.order); i++ {
				if s.order[i] <= s.order[i-1] {
					t.Errorf("node %d %s: timestamps out of order: %d after %d", ni, c, s.order[i], s.order[i-1])
				}
			}
			for id := range acked[c] {
				if s.ids[id] != 1 {
					t.Errorf("node %d %s: record %s seen %d times", ni, c, id, s.ids[id])
				}
			}
			if len(s.ids) != len(acked[c]) {
				t.Errorf("node %d %s: %d records seen, %d acknowledged", ni, c, len(s.ids), len(acked[c]))
			}
		}
	}
	// Every node's monitor converges to the collections' timestamps.
	want := map[string]string{}
	for _, c := range colls {
		_, _, h, _ := call("GET", nodes[0].base+"/buckets/main/collections/"+c+"/records?_limit=1", "")
		want[c] = strings.Trim(h.Get("ETag"), `"`)
	}
	deadline := time.Now().Add(2 * time.Second)
	for ni, n := range nodes {
		for {
			_, out, _, _ := call("GET", n.base+"/buckets/monitor/collections/changes/records", "")
			got := map[string]string{}
			for _, e := range out["data"].([]any) {
				m := e.(map[string]any)
				got[m["collection"].(string)] = m["last_modified"].(json.Number).String()
			}
			if got["c0"] == want["c0"] && got["c1"] == want["c1"] {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d monitor %v, collections %v", ni, got, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// How long a node's monitor takes to show a write made through another
// node (the NOTIFY delivery bound), measured over 30 writes.
func TestMonitorDelayAcrossNodes(t *testing.T) {
	a, b := twoNodes(t)
	var delays []time.Duration
	for i := 0; i < 30; i++ {
		// Warm b's cache, so that only a notification can refresh it.
		call("GET", b.base+"/buckets/monitor/collections/changes/records", "")
		out := must(t, 201, "PUT", fmt.Sprintf("%s/buckets/main/collections/c/records/r%d", a.base, i), "")
		ts := out["data"].(map[string]any)["last_modified"].(json.Number).String()
		start := time.Now()
		for {
			_, m, _, _ := call("GET", b.base+"/buckets/monitor/collections/changes/records", "")
			if data := m["data"].([]any); len(data) == 1 && data[0].(map[string]any)["last_modified"].(json.Number).String() == ts {
				break
			}
			if time.Since(start) > time.Second {
				t.Fatalf("node b did not see write %d within 1 s", i)
			}
		}
		delays = append(delays, time.Since(start))
	}
	sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
	t.Logf("monitor delay across nodes over %d writes: p50 %v, max %v", len(delays), delays[len(delays)/2], delays[len(delays)-1])
}

// kill -9 during a write load: every write acknowledged with a 2xx is there
// after a restart.
func TestKillDuringWritesLosesNothing(t *testing.T) {
	backends := map[string][]string{"sqlite": {"KINTO_STORAGE_BACKEND=sqlite"}}
	if dsn := os.Getenv("KINTOGO_TEST_POSTGRES"); dsn != "" {
		backends["postgresql"] = []string{"KINTO_STORAGE_BACKEND=postgresql", "KINTO_STORAGE_URL=" + dsn[:strings.LastIndex(dsn, "/")+1] + "kintogo_nodes"}
	}
	for name, storageEnv := range backends {
		t.Run(name, func(t *testing.T) {
			env := append([]string{"KINTO_MULTIAUTH_POLICIES=basicauth", "KINTO_INCLUDES=kinto.plugins.flush"}, storageEnv...)
			dir := t.TempDir()
			if name == "postgresql" {
				m := exec.Command(binary, "migrate")
				m.Env = append(os.Environ(), env...)
				if out, err := m.CombinedOutput(); err != nil {
					t.Fatalf("migrate: %v %s", err, out)
				}
			}
			n := startNode(t, dir, env)
			must(t, 202, "POST", n.base+"/__flush__", "")
			must(t, 201, "PUT", n.base+"/buckets/b", "")
			must(t, 201, "PUT", n.base+"/buckets/b/collections/c", "")
			var mu sync.Mutex
			var acked []string
			var wg sync.WaitGroup
			for w := 0; w < 8; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for i := 0; ; i++ {
						id := fmt.Sprintf("w%d-%d", w, i)
						code, _, _, err := call("PUT", n.base+"/buckets/b/collections/c/records/"+id, `{"data": {"v": 1}}`)
						if err != nil {
							return // the server is gone
						}
						if code == 201 {
							mu.Lock()
							acked = append(acked, id)
							mu.Unlock()
						}
					}
				}(w)
			}
			time.Sleep(1500 * time.Millisecond)
			n.cmd.Process.Signal(syscall.SIGKILL)
			wg.Wait()
			n.cmd.Wait()
			if len(acked) == 0 {
				t.Fatal("no write was acknowledged before the kill")
			}
			n2 := startNode(t, dir, env)
			_, out, _, _ := call("GET", n2.base+"/buckets/b/collections/c/records?_fields=id", "")
			present := map[string]bool{}
			for _, r := range out["data"].([]any) {
				present[r.(map[string]any)["id"].(string)] = true
			}
			for _, id := range acked {
				if !present[id] {
					t.Errorf("acknowledged record %s lost", id)
				}
			}
			t.Logf("%s: %d acknowledged writes before kill -9, all present after restart", name, len(acked))
		})
	}
}

// A node on PostgreSQL stops promptly on SIGTERM (its LISTEN connection
// must not hold the shutdown).
func TestGracefulStopOnPostgreSQL(t *testing.T) {
	dsn := pgDSN(t, "kintogo_nodes")
	env := []string{"KINTO_STORAGE_BACKEND=postgresql", "KINTO_STORAGE_URL=" + dsn}
	n := startNode(t, t.TempDir(), env)
	n.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- n.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("kintogo did not stop within 5 s of SIGTERM")
	}
}

// A read-only reader node beside a writer: it serves reads, the monitor
// and broadcasts, follows the writer's commits, and refuses writes.
func TestReadOnlyReaderNode(t *testing.T) {
	env := clusterEnv(t)
	dir := t.TempDir()
	writer := startNode(t, dir, env)
	must(t, 202, "POST", writer.base+"/__flush__", "")
	reader := startNode(t, dir, append(env, "KINTO_READONLY=true"))
	must(t, 201, "PUT", writer.base+"/buckets/main", "")
	must(t, 201, "PUT", writer.base+"/buckets/main/collections/c", "")
	must(t, 200, "GET", reader.base+"/buckets/monitor/collections/changes/records", "")
	out := must(t, 201, "PUT", writer.base+"/buckets/main/collections/c/records/r", "")
	ts := out["data"].(map[string]any)["last_modified"].(json.Number).String()
	deadline := time.Now().Add(2 * time.Second)
	for {
		_, m, _, _ := call("GET", reader.base+"/buckets/monitor/collections/changes/records", "")
		if d := m["data"].([]any); len(d) == 1 && d[0].(map[string]any)["last_modified"].(json.Number).String() == ts {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the reader does not follow the writer")
		}
		time.Sleep(10 * time.Millisecond)
	}
	must(t, 200, "GET", reader.base+"/buckets/main/collections/c/records/r", "")
	must(t, 200, "GET", reader.base+"/__broadcasts__", "")
	must(t, 405, "PUT", reader.base+"/buckets/main/collections/c/records/x", "")
}

// A node delivers, to its event streams and long-polls, the changes
// written through another node.
func TestPushAcrossNodes(t *testing.T) {
	a, b := twoNodes(t)
	req, _ := http.NewRequest("GET", b.base+"/buckets/monitor/collections/changes/records", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stream on b: %v %v", resp, err)
	}
	defer resp.Body.Close()
	// The timestamps of the entries the stream sends.
	ids := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var e struct {
					LastModified json.Number `json:"last_modified"`
				}
				json.Unmarshal([]byte(data), &e)
				ids <- e.LastModified.String()
			}
		}
	}()
	// A long-poll on b too.
	_, _, h, _ := call("GET", b.base+"/buckets/monitor/collections/changes/records", "")
	since := strings.Trim(h.Get("ETag"), `"`)
	polled := make(chan string, 1)
	go func() {
		_, out, _, _ := call("GET", b.base+"/buckets/monitor/collections/changes/records?_wait=5&_since="+since, "")
		if data, ok := out["data"].([]any); ok && len(data) == 1 {
			polled <- data[0].(map[string]any)["last_modified"].(json.Number).String()
		}
	}()
	time.Sleep(200 * time.Millisecond)
	out := must(t, 201, "PUT", a.base+"/buckets/main/collections/c/records/r", "")
	ts := out["data"].(map[string]any)["last_modified"].(json.Number).String()
	for name, ch := range map[string]chan string{"event stream": ids, "long-poll": polled} {
		// (The stream may first send the setup's changes, which b may
		// have read from the log after the stream opened.)
		timeout := time.After(2 * time.Second)
		for got := ""; got != ts; {
			select {
			case got = <-ch:
				if got > ts {
					t.Errorf("%s on b: %s, write %s", name, got, ts)
				}
			case <-timeout:
				t.Fatalf("%s on b got nothing of the write on a", name)
			}
		}
	}
}
