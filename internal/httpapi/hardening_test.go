package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"kintogo/internal/httpapi"
	"kintogo/internal/storage"
	"kintogo/internal/storage/memory"
)

// A node stays available whatever one request does: these tests each
// exercise one way a single request used to block, exhaust or crash it.

// alive checks that the server still serves writes and reads at once.
func alive(t *testing.T, c *client) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.put("/v1/buckets/alive-check", "alice:alicepw", nil)
		c.get("/v1/buckets/alive-check", "alice:alicepw").must(t, 200)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the server stopped answering")
	}
}

// Sub-requests whose path reaches the batch endpoint once decoded,
// cleaned and redirected are refused with Kinto's 400, before any of the
// batch runs.
func TestBatchRecursionRefusedWhateverTheSpelling(t *testing.T) {
	spellings := []string{
		"/batch", "/v1/batch", "/v1/%62atch", "/%62atch", "/v1/batc%68/", "/v1/batch/", "/v1//batch", "//batch",
		"/v1/./batch", "/v1/buckets/../batch", "/%76%31/batch", "/v1/%62%61%74%63%68?x=1", "/v1/batch%2F",
	}
	eachBackend(t, nil, func(t *testing.T, c *client) {
		for _, p := range spellings {
			inner := map[string]any{"requests": []any{map[string]any{"method": "PUT", "path": "/buckets/inner"}}}
			r := c.do(req{method: "POST", path: "/v1/batch", auth: "alice:alicepw", body: map[string]any{"requests": []any{
				map[string]any{"method": "PUT", "path": "/buckets/outer"},
				map[string]any{"method": "POST", "path": p, "body": inner},
			}}})
			r.wantError(t, 400, 107)
			if r.str("message") != "requests in body: Recursive call on /batch endpoint is forbidden." {
				t.Errorf("%s: %s", p, r.raw)
			}
		}
		c.get("/v1/buckets/outer", "alice:alicepw").wantError(t, 403, 121)
		alive(t, c)
	})
}

// Long-polls and event streams inside a batch answer at once: nothing
// waits while it holds the batch's transaction.
func TestNothingWaitsInsideABatch(t *testing.T) {
	eachBackend(t, nil, func(t *testing.T, c *client) {
		setupMonitored(t, c)
		since := c.get(monitor, "").etag()
		records := "/buckets/main/collections/c1/records"
		later := strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10)
		start := time.Now()
		done := make(chan *response, 1)
		go func() {
			done <- c.do(req{method: "POST", path: "/v1/batch", auth: "alice:alicepw", body: map[string]any{"requests": []any{
				map[string]any{"method": "POST", "path": records, "body": map[string]any{"data": map[string]any{"in": "batch"}}},
				map[string]any{"path": "/buckets/monitor/collections/changes/records?_since=" + since + "&_wait=15"},
				map[string]any{"path": records + "?_since=" + later + "&_wait=15"},
				map[string]any{"path": "/buckets/main/collections/c1/changeset?_expected=0&_since=" + later + "&_wait=15"},
				map[string]any{"path": records, "headers": map[string]any{"Accept": "text/event-stream"}},
				map[string]any{"path": "/buckets/monitor/collections/changes/records", "headers": map[string]any{"Accept": "text/event-stream"}},
			}}})
		}()
		// Another writer is not blocked meanwhile.
		c.do(req{method: "POST", path: "/v1" + records, auth: "alice:alicepw", body: map[string]any{"data": map[string]any{}}}).must(t, 201)
		r := <-done
		r.must(t, 200)
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("the batch took %v", took)
		}
		// The record stream answers as the plain list would with that
		// Accept header: Kinto's 406.
		for i, want := range []string{"201", "200", "200", "200", "406", "200"} {
			if got := r.str("responses." + strconv.Itoa(i) + ".status"); got != want {
				t.Errorf("sub-request %d: %s, want %s: %s", i, got, want, r.str("responses."+strconv.Itoa(i)))
			}
		}
		if len(r.list("responses.5.body.data")) == 0 || !strings.HasPrefix(r.str("responses.5.headers.Content-Type"), "application/json") {
			t.Errorf("a monitor stream inside a batch answers the plain list: %s", r.str("responses.5"))
		}
	})
}

// No write stores more than a request body may hold, whatever the kind of
// PATCH: JSON-Patch copies double the document, merges add to what exists.
func TestWriteResultsAreBounded(t *testing.T) {
	eachBackend(t, map[string]string{"max_body_bytes": "20000"}, func(t *testing.T, c *client) {
		c.put("/v1/buckets/b", "alice:alicepw", nil).must(t, 201)
		c.put("/v1/buckets/b/collections/c", "alice:alicepw", nil).must(t, 201)
		rec := "/v1/buckets/b/collections/c/records/r"
		c.put(rec, "alice:alicepw", map[string]any{"data": map[string]any{"a": strings.Repeat("x", 1000)}}).must(t, 201)
		// Each copy doubles the document: 16 of them would make 64 MB.
		var ops []any
		for i := 0; i < 16; i++ {
			ops = append(ops, map[string]any{"op": "copy", "from": "/data", "path": "/data/c" + strconv.Itoa(i)})
		}
		r := c.do(req{method: "PATCH", path: rec, auth: "alice:alicepw", body: ops, header: map[string]string{"Content-Type": "application/json-patch+json"}})
		r.wantError(t, 413, 113)
		// Shallow and merge patches that each fit, but together outgrow.
		big := strings.Repeat("y", 12000)
		c.do(req{method: "PATCH", path: rec, auth: "alice:alicepw", body: map[string]any{"data": map[string]any{"b": big}}}).must(t, 200)
		c.do(req{method: "PATCH", path: rec, auth: "alice:alicepw", body: map[string]any{"data": map[string]any{"c": big}}}).wantError(t, 413, 113)
		c.do(req{method: "PATCH", path: rec, auth: "alice:alicepw", body: map[string]any{"data": map[string]any{"c": big}},
			header: map[string]string{"Content-Type": "application/merge-patch+json"}}).wantError(t, 413, 113)
		// The same in a batch: the sub-request fails in its slot.
		r = c.do(req{method: "POST", path: "/v1/batch", auth: "alice:alicepw", body: map[string]any{"requests": []any{
			map[string]any{"method": "PATCH", "path": rec, "body": map[string]any{"data": map[string]any{"d": big}}},
		}}}).must(t, 200)
		if r.str("responses.0.status") != "413" || r.str("responses.0.body.errno") != "113" {
			t.Errorf("batch: %s", r.raw)
		}
		got := c.get(rec, "alice:alicepw").must(t, 200)
		if len(got.raw) > 20000 || got.str("data.b") != big || got.at("data.c") != nil || got.at("data.c0") != nil {
			t.Errorf("stored record %d bytes", len(got.raw))
		}
	})
}

// The answers a batch holds until it commits are bounded: beyond
// batch_max_response_bytes the batch fails with a 413, rolled back.
func TestBatchAnswersAreBounded(t *testing.T) {
	eachBackend(t, map[string]string{"batch_max_response_bytes": "80000"}, func(t *testing.T, c *client) {
		c.put("/v1/buckets/b", "alice:alicepw", nil).must(t, 201)
		c.put("/v1/buckets/b/collections/c", "alice:alicepw", nil).must(t, 201)
		for i := 0; i < 30; i++ {
			c.put(fmt.Sprintf("/v1/buckets/b/collections/c/records/r%d", i), "alice:alicepw", map[string]any{"data": map[string]any{"v": strings.Repeat("z", 1000)}}).must(t, 201)
		}
		list := map[string]any{"path": "/buckets/b/collections/c/records"}
		write := map[string]any{"method": "PUT", "path": "/buckets/b/collections/written"}
		// Two lists fit; their answers are exactly the lists'.
		r := c.do(req{method: "POST", path: "/v1/batch", auth: "alice:alicepw", body: map[string]any{"requests": []any{list, list}}}).must(t, 200)
		direct := c.get("/v1/buckets/b/collections/c/records", "alice:alicepw").must(t, 200)
		var sub, plain any
		json.Unmarshal(direct.raw, &plain)
		b, _ := json.Marshal(r.at("responses.1.body"))
		json.Unmarshal(b, &sub)
		if fmt.Sprint(sub) != fmt.Sprint(plain) {
			t.Errorf("sub-request answer differs from the direct one")
		}
		r = c.do(req{method: "POST", path: "/v1/batch", auth: "alice:alicepw", body: map[string]any{"requests": []any{write, list, list, list}}})
		r.wantError(t, 413, 113)
		if !strings.Contains(r.str("message"), "batch_max_response_bytes") {
			t.Errorf("message: %s", r.raw)
		}
		c.get("/v1/buckets/b/collections/written", "alice:alicepw").wantError(t, 404, 110)
	})
}

// Client-supplied timestamps are bounded, so that timestamps keep
// strictly increasing and stay within what clients may poll with.
func TestSuppliedTimestampsAreBounded(t *testing.T) {
	eachBackend(t, nil, func(t *testing.T, c *client) {
		c.put("/v1/buckets/b", "alice:alicepw", nil).must(t, 201)
		c.put("/v1/buckets/b/collections/c", "alice:alicepw", nil).must(t, 201)
		records := "/v1/buckets/b/collections/c/records"
		dayAfter := time.Now().Add(49 * time.Hour).UnixMilli()
		for _, lm := range []string{"9223372036854775807", "92233720368547758070", "1e30", strconv.FormatInt(dayAfter, 10)} {
			r := c.do(req{method: "PUT", path: records + "/r", auth: "alice:alicepw", body: `{"data": {"last_modified": ` + lm + `}}`})
			r.wantError(t, 400, 107)
			if r.str("details.0.name") != "data.last_modified" {
				t.Errorf("%s: %s", lm, r.raw)
			}
		}
		// A timestamp of the past is kept (replication), as in Kinto.
		old := c.put(records+"/old", "alice:alicepw", map[string]any{"data": map[string]any{"last_modified": 1000}}).must(t, 201)
		if old.str("data.last_modified") != "1000" {
			t.Errorf("supplied past timestamp: %s", old.raw)
		}
		prev := int64(0)
		for i := 0; i < 5; i++ {
			r := c.do(req{method: "POST", path: records, auth: "alice:alicepw", body: map[string]any{"data": map[string]any{}}}).must(t, 201)
			lm, _ := strconv.ParseInt(r.str("data.last_modified"), 10, 64)
			if lm <= prev {
				t.Fatalf("timestamps %d then %d", prev, lm)
			}
			prev = lm
		}
		c.do(req{method: "DELETE", path: records + "/old?last_modified=9223372036854775807", auth: "alice:alicepw"}).wantError(t, 400, 107)
		c.do(req{method: "DELETE", path: records + "/old?last_modified=" + strconv.FormatInt(dayAfter, 10), auth: "alice:alicepw"}).wantError(t, 400, 107)
		c.do(req{method: "DELETE", path: records + "/old", auth: "alice:alicepw"}).must(t, 200)
	})
}

// A body that is not UTF-8 is Kinto's "Invalid JSON", not silently
// repaired; a body that trickles in is cut like headers that do.
func TestBodiesAreValidAndTimely(t *testing.T) {
	eachBackend(t, map[string]string{"body_read_timeout_seconds": "1"}, func(t *testing.T, c *client) {
		r := c.do(req{method: "PUT", path: "/v1/buckets/utf", auth: "alice:alicepw", body: "{\"data\": {\"a\": \"\xff\xfe\"}}"})
		r.wantError(t, 400, 107)
		if r.str("message") != "Invalid JSON: 'utf-8' codec can't decode byte 0xff in position 16: invalid start byte" {
			t.Errorf("message: %s", r.raw)
		}
		c.get("/v1/buckets/utf", "alice:alicepw").wantError(t, 403, 121)

		u, _ := url.Parse(c.base)
		conn, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "PUT /v1/buckets/slow HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWxpY2U6YWxpY2Vwdw==\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
		cut := make(chan error, 1)
		go func() {
			for i := 0; i < 20; i++ {
				time.Sleep(300 * time.Millisecond)
				if _, err := conn.Write([]byte(" ")); err != nil {
					cut <- nil
					return
				}
			}
			cut <- fmt.Errorf("the server kept reading a trickling body for 6 s")
		}()
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 400 {
				t.Errorf("trickled body answered %d", resp.StatusCode)
			}
		}
		conn.Close()
		if err := <-cut; err != nil {
			t.Error(err)
		}
		c.get("/v1/buckets/slow", "alice:alicepw").wantError(t, 403, 121)
	})
}

// cors_origins is honoured as Kinto does: a matching origin is echoed,
// others are refused before anything runs; `*` allows every origin.
func TestCORSOrigins(t *testing.T) {
	eachBackend(t, map[string]string{"cors_origins": "https://good.example *.trusted.example"}, func(t *testing.T, c *client) {
		for _, origin := range []string{"https://good.example", "https://a.trusted.example"} {
			r := c.do(req{method: "GET", path: "/v1/", header: map[string]string{"Origin": origin}}).must(t, 200)
			if r.header.Get("Access-Control-Allow-Origin") != origin {
				t.Errorf("%s: Access-Control-Allow-Origin %q", origin, r.header.Get("Access-Control-Allow-Origin"))
			}
			pre := c.do(req{method: "OPTIONS", path: "/v1/buckets", header: map[string]string{"Origin": origin, "Access-Control-Request-Method": "GET"}}).must(t, 200)
			if pre.header.Get("Access-Control-Allow-Origin") != origin {
				t.Errorf("pre-flight of %s: %v", origin, pre.header)
			}
		}
		evil := map[string]string{"Origin": "https://evil.example"}
		r := c.do(req{method: "GET", path: "/v1/", header: evil})
		r.wantError(t, 400, 107)
		if r.str("message") != "Origin in header: https://evil.example not allowed" || r.header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("refused origin: %s %v", r.raw, r.header)
		}
		c.do(req{method: "OPTIONS", path: "/v1/buckets", header: map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "PUT"}}).wantError(t, 400, 107)
		c.do(req{method: "PUT", path: "/v1/buckets/fromevil", auth: "alice:alicepw", header: evil}).wantError(t, 400, 107)
		c.get("/v1/buckets/fromevil", "alice:alicepw").wantError(t, 403, 121)
	})
	c := newClient(t, memory.New(), nil)
	if r := c.do(req{method: "GET", path: "/v1/", header: map[string]string{"Origin": "https://any.example"}}).must(t, 200); r.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("default cors_origins: %v", r.header)
	}
}

// A long-poll checks the caller's permission before it waits: nobody
// learns when a collection it may not read changes.
func TestLongPollChecksPermissionFirst(t *testing.T) {
	eachBackend(t, nil, func(t *testing.T, c *client) {
		setupMonitored(t, c)
		for _, path := range []string{
			"/v1/buckets/main/collections/c1/records?_since=9999999999999&_wait=10",
			"/v1/buckets/main/collections/c1/changeset?_expected=0&_since=9999999999999&_wait=10",
		} {
			start := time.Now()
			c.get(path, "").wantError(t, 401, 104)
			c.get(path, "bob:bobpw").wantError(t, 403, 121)
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("%s: refused after %v", path, took)
			}
		}
	})
}

// A caller with only record:create on a collection sees in its changeset
// what its GET of /records shows: nothing; one with read on a record,
// that record.
func TestChangesetShowsWhatRecordsShow(t *testing.T) {
	eachBackend(t, nil, func(t *testing.T, c *client) {
		c.put("/v1/buckets/b", "alice:alicepw", nil).must(t, 201)
		bobID := c.get("/v1/", "bob:bobpw").str("user.id")
		c.put("/v1/buckets/b/collections/c", "alice:alicepw", map[string]any{"permissions": map[string]any{"record:create": []any{bobID}}}).must(t, 201)
		for i := 0; i < 3; i++ {
			c.put(fmt.Sprintf("/v1/buckets/b/collections/c/records/r%d", i), "alice:alicepw", nil).must(t, 201)
		}
		changeset := "/v1/buckets/b/collections/c/changeset?_expected=1"
		ids := func(r *response, path string) string {
			var out []string
			for _, o := range r.list(path) {
				out = append(out, o.(map[string]any)["id"].(string))
			}
			return strings.Join(out, ",")
		}
		if got, want := ids(c.get(changeset, "bob:bobpw").must(t, 200), "changes"), ids(c.get("/v1/buckets/b/collections/c/records", "bob:bobpw").must(t, 200), "data"); got != want || got != "" {
			t.Errorf("record:create only: changeset %q, records %q", got, want)
		}
		c.put("/v1/buckets/b/collections/c/records/r1", "alice:alicepw", map[string]any{"permissions": map[string]any{"read": []any{bobID}}}).must(t, 200)
		if got, want := ids(c.get(changeset, "bob:bobpw").must(t, 200), "changes"), ids(c.get("/v1/buckets/b/collections/c/records", "bob:bobpw").must(t, 200), "data"); got != want || got != "r1" {
			t.Errorf("read on r1: changeset %q, records %q", got, want)
		}
		if got := ids(c.get(changeset, "alice:alicepw").must(t, 200), "changes"); strings.Count(got, ",") != 2 {
			t.Errorf("owner: changeset %q", got)
		}
	})
}

// /__heartbeat__ checks that the storage takes writes: a node whose
// writes are blocked answers 503 within heartbeat_timeout_seconds.
func TestHeartbeatChecksWrites(t *testing.T) {
	eachStore(t, map[string]string{"heartbeat_timeout_seconds": "1"}, func(t *testing.T, c *client, store storage.Storage) {
		c.get("/v1/__heartbeat__", "").must(t, 200)
		held, release := make(chan struct{}), make(chan struct{})
		var once sync.Once
		done := make(chan error, 1)
		go func() {
			done <- store.Update(context.Background(), func(tx storage.Tx) error {
				// What the heartbeat writes, locked until released.
				if _, err := tx.Put(context.Background(), storage.Scope{Parent: "__heartbeat__", Resource: "__heartbeat__"},
					&storage.Object{ID: "__heartbeat__", Data: map[string]any{}}); err != nil {
					return err
				}
				once.Do(func() { close(held) })
				<-release
				return nil
			})
		}()
		<-held
		start := time.Now()
		r := c.get("/v1/__heartbeat__", "")
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if r.status != 503 || r.str("storage") != "false" {
			t.Errorf("heartbeat with blocked writes: %d %s", r.status, r.raw)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("heartbeat answered after %v", took)
		}
		c.get("/v1/__heartbeat__", "").must(t, 200)
	})
}

// A deleted group's principal is removed from every ACL, with the group
// or with its bucket: whoever re-creates it inherits nothing (an
// intentional difference from Kinto).
func TestDeletedGroupsLeaveNoGrants(t *testing.T) {
	eachBackend(t, nil, func(t *testing.T, c *client) {
		bobID := c.get("/v1/", "bob:bobpw").str("user.id")
		c.put("/v1/buckets/b", "alice:alicepw", map[string]any{"permissions": map[string]any{"group:create": []any{"system.Authenticated"}}}).must(t, 201)
		c.put("/v1/buckets/b/groups/editors", "alice:alicepw", map[string]any{"data": map[string]any{"members": []any{}}}).must(t, 201)
		c.put("/v1/buckets/other", "alice:alicepw", nil).must(t, 201)
		grant := map[string]any{"permissions": map[string]any{"write": []any{"/buckets/b/groups/editors"}}}
		c.put("/v1/buckets/b/collections/c", "alice:alicepw", grant).must(t, 201)
		c.put("/v1/buckets/other/collections/c", "alice:alicepw", grant).must(t, 201)
		c.do(req{method: "DELETE", path: "/v1/buckets/b/groups/editors", auth: "alice:alicepw"}).must(t, 200)
		// Bob re-creates the group with himself in it.
		c.put("/v1/buckets/b/groups/editors", "bob:bobpw", map[string]any{"data": map[string]any{"members": []any{bobID}}}).must(t, 201)
		c.put("/v1/buckets/b/collections/c/records/x", "bob:bobpw", nil).wantError(t, 403, 121)
		c.put("/v1/buckets/other/collections/c/records/x", "bob:bobpw", nil).wantError(t, 403, 121)
		if perms := c.get("/v1/buckets/other/collections/c", "alice:alicepw").str("permissions.write"); strings.Contains(perms, "editors") {
			t.Errorf("ACL still names the deleted group: %s", perms)
		}
		// Deleting the bucket removes its groups' grants elsewhere too.
		c.put("/v1/buckets/other/collections/c", "alice:alicepw", grant).must(t, 200)
		c.do(req{method: "DELETE", path: "/v1/buckets/b", auth: "alice:alicepw"}).must(t, 200)
		if perms := c.get("/v1/buckets/other/collections/c", "alice:alicepw").str("permissions.write"); strings.Contains(perms, "editors") {
			t.Errorf("ACL still names the group of a deleted bucket: %s", perms)
		}
	})
}

// Without default_bucket_hmac_secret the default bucket plugin keys
// personal bucket ids as Kinto does (with the empty string), and the start
// says that anyone may compute them; with it, nothing is said.
func TestDefaultBucketWithoutASecretIsWarned(t *testing.T) {
	for secret, warned := range map[string]bool{"": true, "k": false} {
		var logs bytes.Buffer
		newClientWith(t, memory.New(), map[string]string{"includes": "kinto.plugins.default_bucket", "default_bucket_hmac_secret": secret},
			httpapi.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if strings.Contains(logs.String(), "kinto.default_bucket_hmac_secret is not set") != warned {
			t.Errorf("secret %q: %s", secret, logs.String())
		}
	}
}

// Open account creation with a missing administrator account is logged
// at start.
func TestOpenAdministratorAccountIsWarned(t *testing.T) {
	extra := map[string]string{"includes": "kinto.plugins.accounts", "multiauth.policies": "account",
		"account_create_principals": "system.Everyone", "account_write_principals": "account:admin"}
	var logs bytes.Buffer
	store := memory.New()
	c := newClientWith(t, store, extra, httpapi.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if !strings.Contains(logs.String(), "administrator account does not exist yet") || !strings.Contains(logs.String(), "account=admin") {
		t.Fatalf("no warning: %s", logs.String())
	}
	c.do(req{method: "PUT", path: "/v1/accounts/admin", body: map[string]any{"data": map[string]any{"password": "s3cret"}}}).must(t, 201)
	logs.Reset()
	newClientWith(t, store, extra, httpapi.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if strings.Contains(logs.String(), "administrator") {
		t.Errorf("warning although the account exists: %s", logs.String())
	}
}

// countingStore counts the reads of account objects (one per password
// check that is not remembered).
type countingStore struct {
	storage.Storage
	accountReads *atomic.Int64
}

func (s countingStore) View(ctx context.Context, fn func(storage.Tx) error) error {
	return s.Storage.View(ctx, func(tx storage.Tx) error { return fn(countingTx{tx, s.accountReads}) })
}

type countingTx struct {
	storage.Tx
	accountReads *atomic.Int64
}

func (t countingTx) Get(ctx context.Context, s storage.Scope, id string) (*storage.Object, error) {
	if s.Resource == "account" {
		t.accountReads.Add(1)
	}
	return t.Tx.Get(ctx, s, id)
}

// A wrong password costs one check per data generation, and none at all on
// endpoints that need no identity.
func TestWrongPasswordIsCheckedOnce(t *testing.T) {
	extra := map[string]string{"includes": "kinto.plugins.accounts kinto_changes", "multiauth.policies": "account",
		"account_create_principals": "system.Everyone"}
	for name, open := range backends() {
		t.Run(name, func(t *testing.T) {
			var reads atomic.Int64
			c := newClient(t, countingStore{open(t), &reads}, extra)
			c.do(req{method: "PUT", path: "/v1/accounts/carol", body: map[string]any{"data": map[string]any{"password": "right"}}}).must(t, 201)
			reads.Store(0)
			for i := 0; i < 10; i++ {
				c.get("/v1/buckets/monitor/collections/changes/records", "carol:wrong").must(t, 200)
				c.get("/v1/__heartbeat__", "carol:wrong").must(t, 200)
			}
			if n := reads.Load(); n != 0 {
				t.Errorf("%d password checks on endpoints that need no identity", n)
			}
			for i := 0; i < 10; i++ {
				if r := c.get("/v1/", "carol:wrong").must(t, 200); r.at("user") != nil {
					t.Fatalf("wrong password accepted: %s", r.raw)
				}
			}
			if n := reads.Load(); n != 1 {
				t.Errorf("%d password checks for 10 requests with the same wrong password", n)
			}
			// The password changes: the failed check is made again, and
			// now succeeds.
			c.do(req{method: "PATCH", path: "/v1/accounts/carol", auth: "carol:right", body: map[string]any{"data": map[string]any{"password": "wrong"}}}).must(t, 200)
			if r := c.get("/v1/", "carol:wrong").must(t, 200); r.str("user.id") != "account:carol" {
				t.Errorf("new password refused: %s", r.raw)
			}
		})
	}
}

// On PostgreSQL, with the history plugin, batches writing several
// collections and single writers of one of them take their locks in the
// same order: no deadlock, no 500, and the retried transactions
// (deadlocks that still happen between batches) run again at the top.
func TestConcurrentBatchesAndWritersWithHistory(t *testing.T) {
	for name, open := range backends() {
		if name == "memory-retried" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			c := newClient(t, open(t), map[string]string{"includes": "kinto.plugins.history"})
			c.put("/v1/buckets/b", "alice:alicepw", nil).must(t, 201)
			colls := []string{"c0", "c1", "c2", "c3"}
			for _, cid := range colls {
				c.put("/v1/buckets/b/collections/"+cid, "alice:alicepw", nil).must(t, 201)
			}
			deadline := time.Now().Add(3 * time.Second)
			var wg sync.WaitGroup
			var ok, bad atomic.Int64
			var firstBad atomic.Value
			for w := 0; w < 8; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for i := 0; time.Now().Before(deadline); i++ {
						var r *response
						if w%2 == 0 {
							var reqs []any
							for j := range colls {
								// Batches write the collections in both orders.
								cid := colls[j]
								if w%4 == 0 {
									cid = colls[len(colls)-1-j]
								}
								reqs = append(reqs, map[string]any{"method": "POST", "path": "/buckets/b/collections/" + cid + "/records", "body": map[string]any{"data": map[string]any{"w": w}}})
							}
							r = c.do(req{method: "POST", path: "/v1/batch", auth: "alice:alicepw", body: map[string]any{"requests": reqs}})
							if r.status == 200 {
								for j := range colls {
									if s := r.str("responses." + strconv.Itoa(j) + ".status"); s != "201" {
										r.status = 599
									}
								}
							}
						} else {
							r = c.do(req{method: "POST", path: "/v1/buckets/b/collections/" + colls[(w+i)%len(colls)] + "/records", auth: "alice:alicepw", body: map[string]any{"data": map[string]any{"w": w}}})
						}
						if r.status == 200 || r.status == 201 {
							ok.Add(1)
						} else {
							bad.Add(1)
							firstBad.CompareAndSwap(nil, fmt.Sprintf("%d %s", r.status, r.raw))
						}
					}
				}(w)
			}
			wg.Wait()
			if bad.Load() > 0 {
				t.Errorf("%d failed writes (of %d), first: %v", bad.Load(), bad.Load()+ok.Load(), firstBad.Load())
			}
			t.Logf("%d writes in 3 s", ok.Load())
		})
	}
}

// List filters are compiled once per request and bounded: an oversized
// pattern or value list is a 400, and the largest allowed ones cost little
// on a whole collection.
func TestFilterCostIsBounded(t *testing.T) {
	eachBackend(t, nil, func(t *testing.T, c *client) {
		c.put("/v1/buckets/b", "alice:alicepw", nil).must(t, 201)
		c.put("/v1/buckets/b/collections/c", "alice:alicepw", nil).must(t, 201)
		var reqs []any
		for i := 0; i < 500; i++ {
			reqs = append(reqs, map[string]any{"method": "PUT", "path": fmt.Sprintf("/buckets/b/collections/c/records/r%d", i),
				"body": map[string]any{"data": map[string]any{"title": strings.Repeat("ab", 200) + strconv.Itoa(i), "n": i}}})
			if len(reqs) == 25 {
				c.do(req{method: "POST", path: "/v1/batch", auth: "alice:alicepw", body: map[string]any{"requests": reqs}}).must(t, 200)
				reqs = nil
			}
		}
		records := "/v1/buckets/b/collections/c/records"
		tooLong := "*" + strings.Repeat("a*", 600)
		c.get(records+"?like_title="+url.QueryEscape(tooLong), "alice:alicepw").wantError(t, 400, 107)
		values := make([]string, 10001)
		for i := range values {
			values[i] = strconv.Itoa(i)
		}
		c.get(records+"?in_n="+strings.Join(values, ","), "alice:alicepw").wantError(t, 400, 107)
		c.get(records+"?exclude_n="+strings.Join(values, ","), "alice:alicepw").wantError(t, 400, 107)
		// The largest allowed ones, on every record.
		start := time.Now()
		pattern := "*" + strings.Repeat("a*", 511)
		c.get(records+"?like_title="+url.QueryEscape(pattern), "alice:alicepw").must(t, 200)
		r := c.get(records+"?_limit=5&in_n="+strings.Join(values[:10000], ","), "alice:alicepw").must(t, 200)
		if len(r.list("data")) != 5 {
			t.Errorf("in_ on 10,000 values: %s", r.raw)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("bounded filters took %v", took)
		}
	})
}
