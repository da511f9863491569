package accounts_test

import (
	"fmt"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"kintogo/internal/app/apptest"
	"kintogo/internal/httpapi"
	"kintogo/internal/storage/storetest"
)

// serverWith is a running server of settings and extra, on memory.
func serverWith(t *testing.T, extra map[string]string) *client {
	ts := httptest.NewServer(apptest.Server(t, storetest.Memory(t), httpapi.Options{Logger: slog.New(slog.DiscardHandler)}, settings, extra))
	t.Cleanup(ts.Close)
	return &client{t: t, base: ts.URL}
}

// timed is how long a request as auth takes to be refused.
func (c *client) timed(auth string) time.Duration {
	start := time.Now()
	if r := c.get("/v1/accounts/mallory", auth); r.status != 401 {
		c.t.Fatalf("as %s: %d, want 401", auth, r.status)
	}
	return time.Since(start)
}

// Wrong passwords cost bounded CPU: a missing account costs what a wrong
// password does (no enumeration by timing), at most
// account_check_concurrency checks run at once, and an account past
// account_failures_per_minute failures refuses unremembered passwords
// without a check.
func TestPasswordChecksAreBounded(t *testing.T) {
	c := serverWith(t, map[string]string{"account_check_concurrency": "1", "account_failures_per_minute": "6"})
	c.create("alice", "right").must(t, 201)
	c.create("bob", "right").must(t, 201)

	// Missing account and wrong password: the same cost.
	var missing, wrong time.Duration
	for i := 0; i < 3; i++ {
		missing += c.timed(fmt.Sprintf("nobody%d:pw%d", i, i))
		wrong += c.timed(fmt.Sprintf("alice:wrong%d", i))
	}
	if missing < wrong/3 {
		t.Errorf("a missing account is refused in %v, a wrong password in %v: an enumeration oracle", missing/3, wrong/3)
	}
	one := wrong / 3

	// One check at a time: 6 distinct wrong passwords of bob in parallel
	// take about 6 checks' time.
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.timed(fmt.Sprintf("bob:parallel%d", i))
		}()
	}
	wg.Wait()
	if d := time.Since(start); d < one*6*6/10 {
		t.Errorf("6 checks in parallel took %v, one takes %v: more than one ran at once", d, one)
	}

	// bob failed 6 times this minute: further passwords are refused at
	// once, the right one too unless remembered.
	if d := c.timed("bob:yet-another"); d > one/2 {
		t.Errorf("a 7th failure of the minute took %v (a check takes %v)", d, one)
	}
	if r := c.get("/v1/accounts/bob", "bob:right"); r.status != 401 {
		t.Errorf("bob's right password while bob is refused: %d", r.status)
	}
	// Other accounts are not affected; a change of the account starts
	// over.
	c.get("/v1/accounts/alice", "alice:right").must(t, 200)
	c.create("admin", "admin")
	c.do(req{method: "PUT", path: "/v1/accounts/bob", auth: "admin:admin", body: map[string]any{"data": map[string]any{"password": "new"}}}).must(t, 200)
	c.get("/v1/accounts/bob", "bob:new").must(t, 200)
}
