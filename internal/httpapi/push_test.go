package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// sseEvent is one received Server-Sent Event.
type sseEvent struct {
	id, event, data string
}

// sseClient reads an event stream in the background.
type sseClient struct {
	resp   *http.Response
	events chan sseEvent
	cancel context.CancelFunc
}

func openSSE(t *testing.T, url, auth, lastID string) (*sseClient, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("Accept", "text/event-stream")
	if auth != "" {
		user, pass, _ := strings.Cut(auth, ":")
		req.SetBasicAuth(user, pass)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		cancel()
		return nil, resp
	}
	c := &sseClient{resp: resp, events: make(chan sseEvent, 100), cancel: cancel}
	go func() {
		defer close(c.events)
		br := bufio.NewReader(resp.Body)
		var ev sseEvent
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case line == "":
				if ev.event != "" || ev.data != "" {
					c.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"):
				c.events <- sseEvent{event: "comment", data: strings.TrimSpace(line[1:])}
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			}
		}
	}()
	t.Cleanup(c.close)
	return c, resp
}

func (c *sseClient) close() { c.cancel(); c.resp.Body.Close() }

// next returns the next event that is not a comment, failing after wait.
func (c *sseClient) next(t *testing.T, wait time.Duration) sseEvent {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				t.Fatal("stream closed")
			}
			if ev.event != "comment" {
				return ev
			}
		case <-timeout:
			t.Fatal("no event in time")
		}
	}
}

func (c *sseClient) quiet(t *testing.T, wait time.Duration) {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case ev, ok := <-c.events:
			if ok && ev.event != "comment" {
				t.Fatalf("unexpected event %+v", ev)
			}
			if !ok {
				return
			}
		case <-timeout:
			return
		}
	}
}

func TestLongPoll(t *testing.T) {
	eachBackend(t, nil, func(t *testing.T, c *client) {
		setupMonitored(t, c)
		current := c.get(monitor, "").etag()
		type answer struct {
			r  *response
			at time.Time
		}
		polls := map[string]string{
			"monitor":   monitor + "?_since=" + current + "&_wait=5",
			"changeset": monitorChangeset + "?_expected=0&_since=" + current + "&_wait=5",
			"records":   "/v1/buckets/main/collections/c1/records?_since=" + c.get("/v1/buckets/main/collections/c1/records", "alice:alicepw").etag() + "&_wait=5",
		}
		results := map[string]chan answer{}
		for name, url := range polls {
			ch := make(chan answer, 1)
			results[name] = ch
			go func(url string) {
				r := c.get(url, "alice:alicepw")
				ch <- answer{r, time.Now()}
			}(url)
		}
		time.Sleep(300 * time.Millisecond)
		for name, ch := range results {
			select {
			case a := <-ch:
				t.Fatalf("%s answered before any change: %s", name, a.r.raw)
			default:
			}
		}
		w := c.do(req{method: "POST", path: "/v1/buckets/main/collections/c1/records", auth: "alice:alicepw", body: map[string]any{"data": map[string]any{}}}).must(t, 201)
		acked := time.Now()
		ts := w.str("data.last_modified")
		for name, ch := range results {
			select {
			case a := <-ch:
				if delay := a.at.Sub(acked); delay > 100*time.Millisecond {
					t.Errorf("%s answered %v after the commit", name, delay)
				}
				if !strings.Contains(string(a.r.raw), ts) {
					t.Errorf("%s answer lacks the change: %s", name, a.r.raw)
				}
			case <-time.After(2 * time.Second):
				t.Fatalf("%s did not answer after the commit", name)
			}
		}
		// Nothing changes: at the deadline, the plain answer.
		start := time.Now()
		r := c.get(monitor+"?_since="+c.get(monitor, "").etag()+"&_wait=1", "").must(t, 200)
		if d := time.Since(start); d < 900*time.Millisecond || d > 2*time.Second || r.str("data") != "[]" {
			t.Errorf("deadline: %v %s", d, r.raw)
		}
		// Already newer: no wait.
		start = time.Now()
		c.get(monitor+"?_since=1795000000000&_wait=5", "").must(t, 200)
		if time.Since(start) > time.Second {
			t.Error("waited although newer entries exist")
		}
		c.get(monitor+"?_since=1&_wait=x", "").wantError(t, 400, 107)
	})
}

func TestEventStreamMonitor(t *testing.T) {
	eachBackend(t, map[string]string{"push.heartbeat_seconds": "1"}, func(t *testing.T, c *client) {
		setupMonitored(t, c)
		stream, _ := openSSE(t, c.base+monitor+"?bucket=main", "", "")
		var ids []string
		write := func(coll string) string {
			time.Sleep(2 * time.Millisecond)
			return c.do(req{method: "POST", path: "/v1/buckets/main/collections/" + coll + "/records", auth: "alice:alicepw", body: map[string]any{"data": map[string]any{}}}).must(t, 201).str("data.last_modified")
		}
		for i := 0; i < 3; i++ {
			ts := write([]string{"c1", "c2"}[i%2])
			ev := stream.next(t, 2*time.Second)
			var entry map[string]any
			json.Unmarshal([]byte(ev.data), &entry)
			if ev.event != "change" || !strings.Contains(ev.data, `"last_modified":`+ts) || entry["bucket"] != "main" || !strings.Contains(ev.id, ".") {
				t.Fatalf("event %d: %+v, write %s", i, ev, ts)
			}
			ids = append(ids, ev.id)
		}
		// Filters apply: a change in another bucket is not sent.
		c.do(req{method: "POST", path: "/v1/buckets/blocklists/collections/certs/records", auth: "alice:alicepw", body: map[string]any{"data": map[string]any{}}}).must(t, 201)
		stream.quiet(t, 300*time.Millisecond)
		// Heartbeats keep the connection alive.
		timeout := time.After(3 * time.Second)
		for got := false; !got; {
			select {
			case ev := <-stream.events:
				got = ev.event == "comment" && ev.data == "heartbeat"
			case <-timeout:
				t.Fatal("no heartbeat")
			}
		}
		stream.close()
		// While disconnected, two changes; the reconnection gets exactly them.
		missed := []string{write("c1"), write("c2")}
		again, _ := openSSE(t, c.base+monitor+"?bucket=main", "", ids[len(ids)-1])
		for _, want := range missed {
			if ev := again.next(t, 2*time.Second); !strings.Contains(ev.data, `"last_modified":`+want) {
				t.Fatalf("after reconnect: %+v, want the entry at %s", ev, want)
			}
		}
		again.quiet(t, 300*time.Millisecond)
		again.close()
		// A new stream starts after every commit acknowledged before it:
		// the node's history follows the log asynchronously, and what it
		// had not read yet is not sent as new.
		for i := 0; i < 30; i++ {
			before := write("c1")
			s, _ := openSSE(t, c.base+monitor+"?bucket=main", "", "")
			after := write("c1")
			if ev := s.next(t, 2*time.Second); !strings.Contains(ev.data, `"last_modified":`+after) {
				t.Fatalf("a new stream's first event: %+v; the write before it was at %s, after it at %s", ev, before, after)
			}
			s.close()
		}
	})
}

func TestEventStreamRecordsPermissions(t *testing.T) {
	eachBackend(t, nil, func(t *testing.T, c *client) {
		c.put("/v1/buckets/b", "alice:alicepw", nil).must(t, 201)
		c.put("/v1/buckets/b/collections/private", "alice:alicepw", nil).must(t, 201)
		c.put("/v1/buckets/b/collections/shared", "alice:alicepw", map[string]any{"permissions": map[string]any{"read": []string{"system.Authenticated"}}}).must(t, 201)
		// No read permission: refused at subscription.
		if _, resp := openSSE(t, c.base+"/v1/buckets/b/collections/private/records", "bob:bobpw", ""); resp.StatusCode != 403 {
			t.Fatalf("private stream: %d", resp.StatusCode)
		}
		stream, _ := openSSE(t, c.base+"/v1/buckets/b/collections/shared/records?kind=\"news\"", "bob:bobpw", "")
		c.put("/v1/buckets/b/collections/private/records/secret", "alice:alicepw", map[string]any{"data": map[string]any{"kind": "news"}}).must(t, 201)
		c.put("/v1/buckets/b/collections/shared/records/other", "alice:alicepw", map[string]any{"data": map[string]any{"kind": "misc"}}).must(t, 201)
		c.put("/v1/buckets/b/collections/shared/records/n1", "alice:alicepw", map[string]any{"data": map[string]any{"kind": "news"}}).must(t, 201)
		ev := stream.next(t, 2*time.Second)
		if !strings.Contains(ev.data, `"id":"n1"`) {
			t.Fatalf("first event %+v", ev)
		}
		stream.quiet(t, 200*time.Millisecond)
		// Tombstones have no fields, so filtered streams (like filtered
		// _since lists) do not show deletions: a stream without filters does.
		all, _ := openSSE(t, c.base+"/v1/buckets/b/collections/shared/records?_since="+c.get("/v1/buckets/b/collections/shared/records?_since=0", "alice:alicepw").etag(), "bob:bobpw", "")
		c.do(req{method: "DELETE", path: "/v1/buckets/b/collections/shared/records/other", auth: "alice:alicepw"}).must(t, 200)
		if ev := all.next(t, 2*time.Second); !strings.Contains(ev.data, `"deleted":true`) {
			t.Fatalf("tombstone event %+v", ev)
		}
		// Permission revoked: the stream says so and ends.
		c.do(req{method: "PATCH", path: "/v1/buckets/b/collections/shared", auth: "alice:alicepw", body: map[string]any{"permissions": map[string]any{"read": []string{}}}}).must(t, 200)
		if ev := all.next(t, 2*time.Second); ev.event != "error" {
			t.Fatalf("after revocation: %+v", ev)
		}
	})
}

func TestEventStreamCap(t *testing.T) {
	c := newClient(t, backends()["memory"](t), map[string]string{"push.max_streams": "1"})
	setupMonitored(t, c)
	first, _ := openSSE(t, c.base+monitor, "", "")
	if _, resp := openSSE(t, c.base+monitor, "", ""); resp.StatusCode != 503 {
		t.Errorf("second stream: %d, want 503", resp.StatusCode)
	}
	first.close()
	time.Sleep(100 * time.Millisecond)
	if s, resp := openSSE(t, c.base+monitor, "", ""); resp.StatusCode != 200 {
		t.Errorf("after the first closed: %d", resp.StatusCode)
	} else {
		s.close()
	}
}

// A subscriber that reads too slowly is disconnected once a write times
// out: the server holds no queue for it, and the client, seeing its
// connection end, can resume from its last event id.
func TestSlowSubscriberIsDisconnected(t *testing.T) {
	c := newClient(t, backends()["memory"](t), map[string]string{"push.write_timeout_seconds": "1", "max_body_bytes": "10000000"})
	c.put("/v1/buckets/b", "alice:alicepw", nil).must(t, 201)
	c.put("/v1/buckets/b/collections/c", "alice:alicepw", map[string]any{"permissions": map[string]any{"read": []string{"system.Everyone"}}}).must(t, 201)
	conn, err := net.Dial("tcp", strings.TrimPrefix(c.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /v1/buckets/b/collections/c/records HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
	// The subscriber takes 10 kB/s.
	read := make(chan int64)
	go func() {
		var n int64
		buf := make([]byte, 1024)
		slowUntil := time.Now().Add(4 * time.Second)
		for time.Now().Before(slowUntil) {
			conn.SetReadDeadline(time.Now().Add(time.Second))
			m, err := conn.Read(buf)
			n += int64(m)
			if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				read <- n
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		// Then it drains what the kernel still holds: the stream must end.
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		m, err := io.Copy(io.Discard, conn)
		if err != nil {
			t.Errorf("the stream of a slow subscriber was not closed: %v", err)
		}
		read <- n + m
	}()
	big := strings.Repeat("x", 1<<20)
	for i := 0; i < 40; i++ { // 40 MiB of events
		c.put(fmt.Sprintf("/v1/buckets/b/collections/c/records/r%d", i), "alice:alicepw", map[string]any{"data": map[string]any{"blob": big}}).must(t, 201)
	}
	if n := <-read; n >= 40<<20 {
		t.Errorf("all %d bytes were kept for the slow subscriber", n)
	}
}
