package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// pollClient, run in a process of its own (KINTOGO_POLL_CLIENT=N,
// KINTOGO_POLL_URL, KINTOGO_POLL_FROM: a loopback address to connect
// from), holds N long-polls and prints how many were answered 200 and
// 503 ("held N refused M other K"), once every one was answered.
func pollClient() {
	n, _ := strconv.Atoi(os.Getenv("KINTOGO_POLL_CLIENT"))
	target := os.Getenv("KINTOGO_POLL_URL") // host:port path?query
	hostport, path, _ := strings.Cut(target, " ")
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(os.Getenv("KINTOGO_POLL_FROM"))}, Timeout: 30 * time.Second}
	var held, refused, other atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 512) // connecting at once
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			conn, err := dialer.Dial("tcp", hostport)
			<-sem
			if err != nil {
				other.Add(1)
				return
			}
			defer conn.Close()
			fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
			conn.SetReadDeadline(time.Now().Add(90 * time.Second))
			line, err := bufio.NewReader(conn).ReadString('\n')
			switch {
			case err != nil:
				other.Add(1)
			case strings.Contains(line, " 200 "):
				held.Add(1)
			case strings.Contains(line, " 503 "):
				refused.Add(1)
			default:
				other.Add(1)
			}
		}()
	}
	wg.Wait()
	fmt.Printf("held %d refused %d other %d\n", held.Load(), refused.Load(), other.Load())
}

// 30,000 long-polls at once: the node holds its budget of them (10,000,
// half its file-descriptor limit here), refuses the others with a 503
// and closes their connections, and answers its heartbeat meanwhile. The
// polls come from two client processes on two loopback addresses (one
// process may open 20,000 files here, one address 28,000 ports).
func TestThirtyThousandLongPolls(t *testing.T) {
	if testing.Short() {
		t.Skip("holds 30,000 connections")
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Max < 16000 {
		t.Skipf("a process may open %d files here: 15,000 connections per client process need more", lim.Max)
	}
	budget := min(10000, int(lim.Max)/2) // the server raises its limit to the hard one
	port := freePort(t)
	dir := t.TempDir()
	cmd := start(t, dir, port, "KINTO_INCLUDES=kinto_changes", "KINTO_CHANGES_RESOURCES=/buckets", "KINTO_MAX_HELD_REQUESTS=10000")
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	base := fmt.Sprintf("http://127.0.0.1:%d/v1", port)
	resp, err := http.Get(base + "/buckets/monitor/collections/changes/records")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	since := strings.Trim(resp.Header.Get("ETag"), `"`)
	target := fmt.Sprintf("127.0.0.1:%d /v1/buckets/monitor/collections/changes/records?_wait=20&_since=%s", port, since)
	type result struct {
		out string
		err error
	}
	results := make(chan result, 2)
	for _, from := range []string{"127.0.0.2", "127.0.0.3"} {
		c := exec.Command(os.Args[0], "-test.run=^$")
		c.Env = append(os.Environ(), "KINTOGO_POLL_CLIENT=15000", "KINTOGO_POLL_URL="+target, "KINTOGO_POLL_FROM="+from)
		go func() {
			out, err := c.Output()
			results <- result{string(out), err}
		}()
	}
	// While the polls are held: the node answers.
	time.Sleep(8 * time.Second)
	for i := 0; i < 5; i++ {
		start := time.Now()
		r, err := http.Get(base + "/__heartbeat__")
		if err != nil || r.StatusCode != 200 {
			t.Fatalf("heartbeat while 30,000 polls are held: %v %v", r, err)
		}
		r.Body.Close()
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("heartbeat took %v", d)
		}
		time.Sleep(500 * time.Millisecond)
	}
	var held, refused, other int
	for i := 0; i < 2; i++ {
		r := <-results
		if r.err != nil {
			t.Fatalf("poll client: %v %s", r.err, r.out)
		}
		var h, rf, o int
		if _, err := fmt.Sscanf(strings.TrimSpace(r.out[strings.LastIndex(strings.TrimSpace(r.out), "held"):]), "held %d refused %d other %d", &h, &rf, &o); err != nil {
			t.Fatalf("poll client said %q", r.out)
		}
		held, refused, other = held+h, refused+rf, other+o
	}
	t.Logf("30,000 long-polls: %d held, %d refused with a 503, %d other", held, refused, other)
	if held > budget || held < budget*9/10 || held+refused != 30000 || other > 0 {
		t.Errorf("held %d (budget %d), refused %d, other %d", held, budget, refused, other)
	}
}
