package main

import (
	"bufio"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// SIGTERM (as Ctrl-C's SIGINT) with 100 event streams and 100 long-polls
// open, under a write load: the held requests end at once (streams with a
// last comment, polls with their plain answer), writes in flight finish,
// and the process exits 0 in under a second; every acknowledged write is
// there after a restart.
func TestShutdownWithStreamsOpen(t *testing.T) {
	port := freePort(t)
	dir := t.TempDir()
	env := []string{"KINTO_INCLUDES=kinto_changes", "KINTO_CHANGES_RESOURCES=/buckets", "KINTO_PUSH_MAX_WAIT_SECONDS=60"}
	cmd := start(t, dir, port, env...)
	base := fmt.Sprintf("http://127.0.0.1:%d/v1", port)
	must(t, 201, "PUT", base+"/buckets/b", "")
	must(t, 201, "PUT", base+"/buckets/b/collections/c", "")
	_, _, h, _ := call("GET", base+"/buckets/monitor/collections/changes/records", "")
	since := strings.Trim(h.Get("ETag"), `"`)

	// 100 streams and 100 long-polls.
	var held sync.WaitGroup
	var mu sync.Mutex
	endings := map[string]int{}
	note := func(what string) {
		mu.Lock()
		endings[what]++
		mu.Unlock()
	}
	for i := 0; i < 100; i++ {
		held.Add(2)
		go func() {
			defer held.Done()
			req, _ := http.NewRequest("GET", base+"/buckets/monitor/collections/changes/records", nil)
			req.Header.Set("Accept", "text/event-stream")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				note("stream refused: " + err.Error())
				return
			}
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			last := ""
			for sc.Scan() {
				if line := sc.Text(); strings.HasPrefix(line, ":") {
					last = line
				}
			}
			note("stream ended after " + last)
		}()
		go func() {
			defer held.Done()
			resp, err := http.Get(base + "/buckets/monitor/collections/changes/records?_wait=60&_since=" + since + "&bucket=nowhere")
			if err != nil {
				note("poll failed: " + err.Error())
				return
			}
			resp.Body.Close()
			note(fmt.Sprintf("poll answered %d", resp.StatusCode))
		}()
	}
	// A write load.
	var acked []string
	stopWriting := make(chan struct{})
	var writers sync.WaitGroup
	for w := 0; w < 4; w++ {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for i := 0; ; i++ {
				select {
				case <-stopWriting:
					return
				default:
				}
				id := fmt.Sprintf("w%d-%d", w, i)
				code, _, _, err := call("PUT", base+"/buckets/b/collections/c/records/"+id, `{"data": {"i": 1}}`)
				if err != nil {
					return // the server is gone
				}
				if code == 201 {
					mu.Lock()
					acked = append(acked, id)
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(time.Second)
	sent := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if d := time.Since(sent); d > time.Second {
			t.Errorf("the process took %v to exit", d)
		}
		if err != nil {
			t.Errorf("exit: %v", err)
		}
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the process did not exit within 5 s of SIGTERM")
	}
	close(stopWriting)
	writers.Wait()
	held.Wait()
	t.Logf("after SIGTERM: %v", endings)
	if endings["stream ended after : server shutting down, reconnect"] != 100 || endings["poll answered 200"] != 100 {
		t.Errorf("held requests ended: %v", endings)
	}
	// Every acknowledged write is there.
	restarted := start(t, dir, port, env...)
	t.Cleanup(func() { restarted.Process.Kill(); restarted.Wait() })
	for _, id := range acked {
		if code, _, _, _ := call("GET", base+"/buckets/b/collections/c/records/"+id, ""); code != 200 {
			t.Errorf("acknowledged %s: %d after the restart", id, code)
		}
	}
	t.Logf("%d acknowledged writes, all there", len(acked))
}
