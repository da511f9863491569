package httpapi_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Issue 24's probe, one test per finding, over HTTP on every backend.

// A history entry written inside a batch carries the ACL of the end of
// the batch, as Kinto's: a read permission given and taken back in one
// batch leaves its grantee nothing to read.
func TestHistoryEntriesGetTheACLAtCommit(t *testing.T) {
	history := map[string]string{"includes": "kinto.plugins.flush kinto_changes kinto.plugins.history"}
	eachBackend(t, history, func(t *testing.T, c *client) {
		const a, b = "alice:alicepw", "bob:bobpw"
		bob := userID(t, c, b)
		c.put("/v1/buckets/hb", a, nil).must(t, 201)
		c.put("/v1/buckets/hb/collections/c", a, nil).must(t, 201)
		c.do(req{method: "POST", path: "/v1/batch", auth: a, body: map[string]any{"requests": []any{
			map[string]any{"method": "PUT", "path": "/buckets/hb/collections/c/records/r", "body": map[string]any{
				"data": map[string]any{"secret": "s3cr3t"}, "permissions": map[string]any{"read": []string{bob}}}},
			map[string]any{"method": "PATCH", "path": "/buckets/hb/collections/c/records/r", "body": map[string]any{
				"permissions": map[string]any{"read": []string{}}}},
		}}}).must(t, 200)
		r := c.get("/v1/buckets/hb/history", b)
		if r.status == 200 && len(r.list("data")) > 0 || strings.Contains(string(r.raw), "s3cr3t") {
			t.Errorf("bob reads history entries of a record he was granted nothing on by the end of the batch: %d %s", r.status, r.raw)
		}
		// Granted at the end of a batch: readable.
		c.do(req{method: "POST", path: "/v1/batch", auth: a, body: map[string]any{"requests": []any{
			map[string]any{"method": "PUT", "path": "/buckets/hb/collections/c/records/r2", "body": map[string]any{"data": map[string]any{"v": 1}}},
			map[string]any{"method": "PATCH", "path": "/buckets/hb/collections/c/records/r2", "body": map[string]any{
				"permissions": map[string]any{"read": []string{bob}}}},
		}}}).must(t, 200)
		if n := len(c.get("/v1/buckets/hb/history?record_id=r2", b).must(t, 200).list("data")); n != 2 {
			t.Errorf("bob reads %d entries of r2, want both", n)
		}
	})
}

// An account created again after its deletion inherits nothing of the
// deleted one: neither its permissions nor its group memberships.
func TestRecreatedAccountInheritsNothing(t *testing.T) {
	accounts := map[string]string{"includes": "kinto.plugins.flush kinto_changes kinto.plugins.accounts",
		"multiauth.policies": "account basicauth", "account_create_principals": "system.Everyone"}
	eachBackend(t, accounts, func(t *testing.T, c *client) {
		const admin, carol = "alice:alicepw", "carol:first"
		c.put("/v1/accounts/carol", "", map[string]any{"data": map[string]any{"password": "first"}}).must(t, 201)
		c.put("/v1/buckets/acc", admin, map[string]any{"permissions": map[string]any{"read": []string{"account:carol"}}}).must(t, 201)
		c.put("/v1/buckets/acc/collections/c", admin, map[string]any{"permissions": map[string]any{"write": []string{"/buckets/acc/groups/g"}}}).must(t, 201)
		c.put("/v1/buckets/acc/groups/g", admin, map[string]any{"data": map[string]any{"members": []string{"account:carol", "account:dave"}}}).must(t, 201)
		c.get("/v1/buckets/acc", carol).must(t, 200)
		c.do(req{method: "DELETE", path: "/v1/accounts/carol", auth: carol}).must(t, 200)
		// Someone else takes the name.
		c.put("/v1/accounts/carol", "", map[string]any{"data": map[string]any{"password": "second"}}).must(t, 201)
		const mallory = "carol:second"
		if r := c.get("/v1/buckets/acc", mallory); r.status != 403 {
			t.Errorf("the new carol reads the old carol's bucket: %d %s", r.status, r.raw)
		}
		g := c.get("/v1/buckets/acc/groups/g", admin).must(t, 200)
		if strings.Contains(string(g.raw), "account:carol") || !strings.Contains(string(g.raw), "account:dave") {
			t.Errorf("group members after the account's deletion: %s", g.raw)
		}
		if r := c.get("/v1/buckets/acc/collections/c/records", mallory); r.status != 403 {
			t.Errorf("the new carol writes through the old carol's group: %d %s", r.status, r.raw)
		}
		bucket := c.get("/v1/buckets/acc", admin).must(t, 200)
		if strings.Contains(string(bucket.raw), "account:carol") {
			t.Errorf("the bucket's ACL still names the deleted account: %s", bucket.raw)
		}
	})
}

// pollClient opens a connection per long-poll.
var pollClient = &http.Client{Transport: &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: 1}, Timeout: 20 * time.Second}

// Long-polls, event streams and uploads count against one budget of held
// requests: beyond it they are refused with a 503 and Retry-After (and
// their connection closed), while the node goes on answering everything
// else. (Thousands here: this machine's processes may open 20,000 files.)
func TestHeldRequestsBudget(t *testing.T) {
	const budget, polls = 1000, 3000
	c := newClient(t, backends()["sqlite"](t), map[string]string{"max_held_requests": strconv.Itoa(budget)})
	setupMonitored(t, c)
	since := c.get(monitor, "").etag()
	type result struct {
		status int
		retry  string
	}
	results := make(chan result, polls)
	for i := 0; i < polls; i++ {
		go func() {
			r, err := pollClient.Get(c.base + monitor + "?_wait=5&_since=" + since)
			if err != nil {
				results <- result{}
				return
			}
			io.Copy(io.Discard, r.Body)
			r.Body.Close()
			closed := ""
			if r.Close {
				closed = " close"
			}
			results <- result{r.StatusCode, r.Header.Get("Retry-After") + closed}
		}()
	}
	// The refused answer at once; the others wait.
	refused := 0
	timeout := time.After(10 * time.Second)
	for refused < polls-budget {
		select {
		case r := <-results:
			if r.status != 503 || !strings.HasSuffix(r.retry, " close") || r.retry == " close" {
				t.Fatalf("a long-poll beyond the budget answered %d (Retry-After %q)", r.status, r.retry)
			}
			refused++
		case <-timeout:
			t.Fatalf("%d long-polls refused, want %d", refused, polls-budget)
		}
	}
	start := time.Now()
	c.get("/v1/__heartbeat__", "").must(t, 200)
	c.get(monitor, "").must(t, 200)
	if d := time.Since(start); d > time.Second {
		t.Errorf("the node answered in %v while its budget was held", d)
	}
	// A new stream is refused too, until the polls end.
	if _, resp := openSSE(t, c.base+monitor, "", ""); resp == nil || resp.StatusCode != 503 {
		t.Errorf("a stream beyond the budget: %v", resp)
	}
	for i := 0; i < budget; i++ {
		if r := <-results; r.status != 200 {
			t.Errorf("a long-poll within the budget answered %d", r.status)
		}
	}
}

// A thousand record streams resuming from 0 on a 50 MB collection, whose
// clients do not read, keep the node's memory within a fixed budget: each
// stream reads a page at a time, and only a few streams hold one at once.
func TestStreamsReplayWithinAMemoryBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 50 MB collection")
	}
	c := newClient(t, backends()["sqlite"](t), map[string]string{"push.max_streams": "2000", "push.write_timeout_seconds": "3"})
	c.put("/v1/buckets/big", "alice:alicepw", map[string]any{"permissions": map[string]any{"read": []string{"system.Everyone"}}}).must(t, 201)
	c.put("/v1/buckets/big/collections/c", "alice:alicepw", nil).must(t, 201)
	blob := strings.Repeat("x", 25000)
	for b := 0; b < 80; b++ {
		var reqs []any
		for i := 0; i < 25; i++ {
			reqs = append(reqs, map[string]any{"method": "POST", "path": "/buckets/big/collections/c/records", "body": map[string]any{"data": map[string]any{"blob": blob}}})
		}
		c.do(req{method: "POST", path: "/v1/batch", auth: "alice:alicepw", body: map[string]any{"requests": reqs}}).must(t, 200)
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	u, _ := url.Parse(c.base)
	var conns []net.Conn
	defer func() {
		for _, conn := range conns {
			conn.Close()
		}
	}()
	for i := 0; i < 1000; i++ {
		conn, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
		fmt.Fprintf(conn, "GET /v1/buckets/big/collections/c/records?_since=0 HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
	}
	var peak uint64
	for deadline := time.Now().Add(4 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		peak = max(peak, m.HeapInuse)
	}
	grew := int64(peak) - int64(before.HeapInuse)
	t.Logf("1,000 streams from 0 on a 50 MB collection: the heap grew by %d MB", grew>>20)
	if grew > 256<<20 {
		t.Errorf("the heap grew by %d MB, beyond the 256 MB budget", grew>>20)
	}
	alive(t, c)
}

// Whoever may not read a parent cannot tell its missing children from
// its existing ones: the same 401/403 for both, as Kinto answers (a
// right to create children does not count as reading the parent).
func TestNoExistenceOracles(t *testing.T) {
	eachBackend(t, map[string]string{"bucket_create_principals": "system.Authenticated"}, func(t *testing.T, c *client) {
		const a, b = "alice:alicepw", "bob:bobpw"
		bob := userID(t, c, b)
		c.put("/v1/buckets/private", a, nil).must(t, 201)
		c.put("/v1/buckets/private/collections/exists", a, nil).must(t, 201)
		c.put("/v1/buckets/b", a, map[string]any{"permissions": map[string]any{"collection:create": []string{bob}, "group:create": []string{bob}}}).must(t, 201)
		c.put("/v1/buckets/b/collections/c", a, map[string]any{"permissions": map[string]any{"record:create": []string{bob}}}).must(t, 201)
		c.put("/v1/buckets/b/collections/c/records/x", a, nil).must(t, 201)
		c.put("/v1/buckets/b/collections/other", a, nil).must(t, 201)
		c.put("/v1/buckets/b/groups/g", a, map[string]any{"data": map[string]any{"members": []string{}}}).must(t, 201)
		pairs := []struct {
			method, auth, missing, existing string
			status, errno                   int
		}{
			{"DELETE", "", "/v1/buckets/private/collections/missing/records", "/v1/buckets/private/collections/exists/records", 401, 104},
			{"DELETE", b, "/v1/buckets/private/collections/missing/records", "/v1/buckets/private/collections/exists/records", 403, 121},
			{"DELETE", b, "/v1/buckets/b/collections/missing/records", "/v1/buckets/b/collections/other/records", 403, 121},
			{"GET", b, "/v1/buckets/b/collections/c/records/missing", "/v1/buckets/b/collections/c/records/x", 403, 121},
			{"PATCH", b, "/v1/buckets/b/collections/c/records/missing", "/v1/buckets/b/collections/c/records/x", 403, 121},
			{"DELETE", b, "/v1/buckets/b/collections/c/records/missing", "/v1/buckets/b/collections/c/records/x", 403, 121},
			{"GET", b, "/v1/buckets/b/collections/missing", "/v1/buckets/b/collections/other", 403, 121},
			{"PATCH", b, "/v1/buckets/b/collections/missing", "/v1/buckets/b/collections/other", 403, 121},
			{"DELETE", b, "/v1/buckets/b/collections/missing", "/v1/buckets/b/collections/other", 403, 121},
			{"GET", b, "/v1/buckets/b/groups/missing", "/v1/buckets/b/groups/g", 403, 121},
			{"DELETE", b, "/v1/buckets/b/groups/missing", "/v1/buckets/b/groups/g", 403, 121},
		}
		for _, p := range pairs {
			var body any
			if p.method == "PATCH" {
				body = map[string]any{"data": map[string]any{"a": 1}}
			}
			for _, path := range []string{p.missing, p.existing} {
				c.do(req{method: p.method, path: path, auth: p.auth, body: body}).wantError(t, p.status, p.errno)
			}
		}
		// Who may read the parent still gets the 404.
		c.do(req{method: "DELETE", path: "/v1/buckets/private/collections/missing/records", auth: a}).wantError(t, 404, 111)
		c.do(req{method: "PATCH", path: "/v1/buckets/b/collections/c/records/missing", auth: a, body: map[string]any{"data": map[string]any{}}}).wantError(t, 404, 110)
	})
}
