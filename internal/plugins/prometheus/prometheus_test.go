package prometheus_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"kintogo/internal/app"
	"kintogo/internal/app/apptest"
	"kintogo/internal/config"
	"kintogo/internal/httpapi"
	"kintogo/internal/plugins/prometheus"
	"kintogo/internal/storage/memory"
	"kintogo/internal/storage/storetest"
)

// node is a server with the plugin, over HTTP.
type node struct {
	t   *testing.T
	srv *httpapi.Server
	url string
	// One connection: each request is answered (and observed) before the
	// next one is read.
	client *http.Client
}

func newNode(t *testing.T, extra map[string]string) *node {
	t.Helper()
	srv := apptest.Server(t, memory.New(), httpapi.Options{Version: "test"}, map[string]string{
		"includes": "kinto.plugins.prometheus kinto_changes kinto.plugins.history", "multiauth.policies": "basicauth",
		"userid_hmac_secret": "secret", "changes.resources": "/buckets/main",
	}, extra)
	return serve(t, srv)
}

func serve(t *testing.T, srv *httpapi.Server) *node {
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return &node{t: t, srv: srv, url: ts.URL, client: &http.Client{
		Transport:     &http.Transport{MaxConnsPerHost: 1},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       20 * time.Second,
	}}
}

// do sends a request (as alice unless auth is "-") and returns its
// status and body.
func (n *node) do(method, path, auth, body string, header ...string) (int, http.Header, []byte) {
	n.t.Helper()
	r, err := http.NewRequest(method, n.url+path, strings.NewReader(body))
	if err != nil {
		n.t.Fatal(err)
	}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if auth != "-" {
		user, pw, _ := strings.Cut(auth, ":")
		r.SetBasicAuth(user, pw)
	}
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	resp, err := n.client.Do(r)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, raw
}

// scrape returns the exposition and its samples by series
// (`name{labels}`, labels sorted as the client writes them).
func (n *node) scrape() (string, map[string]float64) {
	n.t.Helper()
	status, header, raw := n.do("GET", "/v1/__metrics__", "-", "")
	if status != 200 || !strings.HasPrefix(header.Get("Content-Type"), "text/plain; version=0.0.4") {
		n.t.Fatalf("__metrics__: %d %s", status, header.Get("Content-Type"))
	}
	samples := map[string]float64{}
	for _, line := range strings.Split(string(raw), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			n.t.Fatalf("sample %q", line)
		}
		samples[line[:i]] = v
	}
	return string(raw), samples
}

func want(t *testing.T, samples map[string]float64, series string, v float64) {
	t.Helper()
	if got, ok := samples[series]; got != v || (!ok && v != 0) {
		t.Errorf("%s = %v (present: %v), want %v", series, got, ok, v)
	}
}

func absent(t *testing.T, exposition, name string) {
	t.Helper()
	if strings.Contains(exposition, "\n"+name) || strings.HasPrefix(exposition, name) {
		t.Errorf("%s is exposed", name)
	}
}

// labels writes Kinto's request labels in the exposition's order.
func labels(bucket, collection, endpoint, method, record string, status ...string) string {
	s := `bucket_id="` + bucket + `",collection_id="` + collection + `",endpoint="` + endpoint + `",group_id="",method="` + method + `",record_id="` + record + `"`
	if len(status) > 0 {
		s += `,status="` + status[0] + `"`
	}
	return "{" + s + "}"
}

// The request metrics have Kinto's names and labels; the exposition
// passes the linter.
func TestRequestMetrics(t *testing.T) {
	n := newNode(t, nil)
	n.do("PUT", "/v1/buckets/main", "alice:pw", `{"permissions": {"read": ["system.Everyone"]}}`)
	n.do("PUT", "/v1/buckets/main/collections/c", "alice:pw", "")
	n.do("POST", "/v1/buckets/main/collections/c/records", "alice:pw", `{"data": {"a": 1}}`)
	n.do("PUT", "/v1/buckets/main/collections/c/records/r1", "alice:pw", `{"data": {"a": 2}}`)
	_, _, read := n.do("GET", "/v1/buckets/main/collections/c/records/r1", "alice:pw", "")
	_, _, anonymous := n.do("GET", "/v1/buckets/main/collections/c/records/r1", "-", "")
	n.do("GET", "/v1/buckets/main/collections/c/records/nope", "alice:pw", "")
	n.do("GET", "/v1/buckets/main/collections/c/records/nope", "alice:pw", "")
	n.do("GET", "/v1/nowhere/at/all", "-", "")
	n.do("GET", "/v1/__heartbeat__", "-", "")
	n.do("GET", "/v1/buckets/monitor/collections/changes/changeset?_expected=0", "-", "")
	n.do("POST", "/v1/batch", "alice:pw", `{"requests": [{"path": "/buckets/main"}, {"path": "/buckets/main/collections"}]}`)
	n.do("DELETE", "/v1/buckets/main/collections/c/records/r1", "bob:pw", "")
	exposition, samples := n.scrape()

	want(t, samples, "kinto_request_summary_total"+labels("main", "", "bucket-object", "put", "", "201"), 1)
	want(t, samples, "kinto_request_summary_total"+labels("main", "c", "collection-object", "put", "", "201"), 1)
	want(t, samples, "kinto_request_summary_total"+labels("main", "c", "record-plural", "post", "", "201"), 1)
	want(t, samples, "kinto_request_summary_total"+labels("main", "c", "record-object", "put", "r1", "201"), 1)
	// An anonymous read of a public record too.
	want(t, samples, "kinto_request_summary_total"+labels("main", "c", "record-object", "get", "r1", "200"), 2)
	// Failed requests have no route values.
	want(t, samples, "kinto_request_summary_total"+labels("", "", "record-object", "get", "", "404"), 2)
	want(t, samples, "kinto_request_summary_total"+labels("", "", "record-object", "delete", "", "403"), 1)
	want(t, samples, "kinto_request_summary_total"+labels("", "", "unknown", "get", "", "404"), 1)
	want(t, samples, "kinto_request_summary_total"+labels("", "", "heartbeat", "get", "", "200"), 1)
	want(t, samples, "kinto_request_summary_total"+labels("monitor", "changes", "collection-changeset", "get", "", "200"), 1)
	// A batch counts once, not its sub-requests.
	want(t, samples, "kinto_request_summary_total"+labels("", "", "batch", "post", "", "200"), 1)
	want(t, samples, "kinto_request_summary_total"+labels("main", "", "bucket-object", "get", "", "200"), 0)

	want(t, samples, "kinto_request_duration_seconds_count"+labels("main", "c", "record-object", "get", "r1"), 2)
	want(t, samples, `kinto_request_duration_seconds_bucket{bucket_id="main",collection_id="c",endpoint="record-object",group_id="",method="get",record_id="r1",le="+Inf"}`, 2)
	for _, le := range []string{"0.01", "0.05", "0.1", "0.5", "1", "3", "6"} {
		if _, ok := samples[`kinto_request_duration_seconds_bucket{bucket_id="main",collection_id="c",endpoint="record-object",group_id="",method="get",record_id="r1",le="`+le+`"}`]; !ok {
			t.Errorf("no bucket le=%s", le)
		}
	}
	want(t, samples, "kinto_request_size_count"+labels("main", "c", "record-object", "get", "r1"), 2)
	want(t, samples, "kinto_request_size_sum"+labels("main", "c", "record-object", "get", "r1"), float64(len(read)+len(anonymous)))

	// Callers that identified themselves (the heartbeat and the monitor
	// are public: they never authenticate).
	n.do("GET", "/v1/", "alice:pw", "")
	alice := userID(t, n, "alice:pw")
	bob := userID(t, n, "bob:pw")
	_, samples = n.scrape()
	// PUT, PUT, POST, PUT, GET, 2 × 404, GET /v1/ × 2 (the batch is
	// public: its sub-requests are not counted).
	want(t, samples, `kinto_users_total{auth="basicauth",userid="`+alice+`"}`, 9)
	want(t, samples, `kinto_users_total{auth="basicauth",userid="`+bob+`"}`, 2)
	want(t, samples, `kinto_authentication_total{type="basicauth"}`, 11)

	// kintogo's own.
	want(t, samples, "kinto_commits_total", 4)
	want(t, samples, "kinto_event_streams", 0)
	want(t, samples, "kinto_long_polls", 0)
	entries, bytes := n.srv.AnswerCacheStats()
	want(t, samples, "kinto_answer_cache_entries", float64(entries))
	want(t, samples, "kinto_answer_cache_bytes", float64(bytes))
	want(t, samples, "kinto_notification_lag_seconds_count", 0)
	if _, ok := samples["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
	if !strings.Contains(exposition, "# HELP kinto_request_summary_total Counter of kinto_request_summary\n") ||
		!strings.Contains(exposition, "# TYPE kinto_request_size summary\n") ||
		!strings.Contains(exposition, "# HELP kinto_request_duration_seconds Histogram of kinto_request_duration_seconds\n") {
		t.Error("help or type differs from Kinto's")
	}

	problems, err := promlint.New(strings.NewReader(exposition)).Lint()
	if err != nil || len(problems) > 0 {
		t.Errorf("promlint: %v %v", err, problems)
	}
}

// userID is the caller's user id without its policy's prefix.
func userID(t *testing.T, n *node, auth string) string {
	t.Helper()
	_, _, raw := n.do("GET", "/v1/", auth, "")
	var hello struct{ User struct{ ID string } }
	json.Unmarshal(raw, &hello)
	_, id, ok := strings.Cut(hello.User.ID, ":")
	if !ok {
		t.Fatalf("no user in %s", raw)
	}
	return id
}

func capability(t *testing.T, n *node) map[string]any {
	t.Helper()
	_, _, raw := n.do("GET", "/v1/", "-", "")
	var hello struct{ Capabilities map[string]map[string]any }
	if err := json.Unmarshal(raw, &hello); err != nil {
		t.Fatal(err)
	}
	return hello.Capabilities["prometheus"]
}

// The capability is Kinto's; the prefix is cleaned as Kinto cleans it and
// disabled metrics are not exposed.
func TestCapabilityPrefixAndDisabledMetrics(t *testing.T) {
	n := newNode(t, nil)
	got, _ := json.Marshal(capability(t, n))
	if string(got) != `{"description":"Prometheus metrics.","disabled_metrics":[],"prefix":"kinto_","url":"https://github.com/Kinto/kinto/"}` {
		t.Errorf("capability: %s", got)
	}

	n = newNode(t, map[string]string{
		"prometheus_prefix":           "Remote-Settings",
		"prometheus_disabled_metrics": "remotesettings_request_size users commits",
	})
	got, _ = json.Marshal(capability(t, n))
	if string(got) != `{"description":"Prometheus metrics.","disabled_metrics":["remotesettings_request_size","users","commits"],"prefix":"remotesettings_","url":"https://github.com/Kinto/kinto/"}` {
		t.Errorf("capability: %s", got)
	}
	n.do("GET", "/v1/", "alice:pw", "")
	exposition, samples := n.scrape()
	want(t, samples, `remotesettings_request_summary_total{bucket_id="",collection_id="",endpoint="hello",group_id="",method="get",record_id="",status="200"}`, 2)
	want(t, samples, `remotesettings_authentication_total{type="basicauth"}`, 1)
	for _, name := range []string{"remotesettings_request_size", "remotesettings_users", "remotesettings_commits", "kinto_"} {
		absent(t, exposition, name)
	}

	// The project name is the default prefix.
	n = newNode(t, map[string]string{"project_name": "my.project"})
	if p := capability(t, n)["prefix"]; p != "myproject_" {
		t.Errorf("prefix %v", p)
	}
}

func TestPrefix(t *testing.T) {
	for raw, want := range map[string]string{
		"kinto": "kinto_", "kinto_": "kinto_", "remote-settings": "remotesettings_", "My Project.v2": "myprojectv2_", "": "",
	} {
		if got := prometheus.Prefix(raw); got != want {
			t.Errorf("Prefix(%q) = %q, want %q", raw, got, want)
		}
	}
}

// The buckets of the duration histogram and the route values labelled
// are settings; settings that cannot be honoured stop the start.
func TestHistogramBucketsAndMatchdictFields(t *testing.T) {
	n := newNode(t, map[string]string{"prometheus_histogram_buckets": "0.25 2 Inf", "metrics_matchdict_fields": "bucket_id"})
	n.do("GET", "/v1/buckets/main", "alice:pw", "")
	_, samples := n.scrape()
	for _, le := range []string{"0.25", "2", "+Inf"} {
		if _, ok := samples[`kinto_request_duration_seconds_bucket{bucket_id="",endpoint="bucket-object",method="get",le="`+le+`"}`]; !ok {
			t.Errorf("no bucket le=%s", le)
		}
	}
	if len(samples) == 0 {
		t.Fatal("no samples")
	}
	want(t, samples, `kinto_request_summary_total{bucket_id="",endpoint="bucket-object",method="get",status="403"}`, 1)

	for _, bad := range []map[string]string{
		{"prometheus_histogram_buckets": "1 0.5"},
		{"prometheus_histogram_buckets": "fast"},
		{"prometheus_histogram_buckets": "Inf"},
		{"metrics_matchdict_fields": "status"},
		{"metrics_matchdict_fields": "bucket-id"},
		{"prometheus_prefix": "1st"},
	} {
		m := map[string]string{"includes": "kinto.plugins.prometheus"}
		for k, v := range bad {
			m[k] = v
		}
		settings, err := config.FromMap(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := app.NewServer(settings, memory.New(), httpapi.Options{}); err == nil {
			t.Errorf("%v: accepted", bad)
		}
	}
}

// Scrapers asking for OpenMetrics get the creation times, unless
// prometheus_created_metrics_enabled is off.
func TestCreatedSamples(t *testing.T) {
	for _, enabled := range []bool{true, false} {
		n := newNode(t, map[string]string{"prometheus_created_metrics_enabled": strconv.FormatBool(enabled)})
		n.do("GET", "/v1/", "-", "")
		_, header, raw := n.do("GET", "/v1/__metrics__", "-", "", "Accept", "application/openmetrics-text; version=1.0.0")
		if !strings.HasPrefix(header.Get("Content-Type"), "application/openmetrics-text") {
			t.Fatalf("Content-Type %s", header.Get("Content-Type"))
		}
		if got := strings.Contains(string(raw), "\nkinto_request_summary_created{"); got != enabled {
			t.Errorf("enabled %v: _created samples %v", enabled, got)
		}
	}
}

// Streams are counted while open (the lag of other nodes' commits is
// TestNotificationLagAcrossNodes's).
func TestStreamsCounted(t *testing.T) {
	n := newNode(t, nil)
	r, _ := http.NewRequest("GET", n.url+"/v1/buckets/monitor/collections/changes/records", nil)
	r.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, samples := n.scrape()
	want(t, samples, "kinto_event_streams", 1)
}

// Across nodes on PostgreSQL: a commit on one node is delivered to the
// other with its commit time, whose delay the other node measures.
func TestNotificationLagAcrossNodes(t *testing.T) {
	open := storetest.PostgreSQL()
	if open == nil {
		t.Skip("KINTOGO_TEST_POSTGRES is not set")
	}
	open(t) // migrated and emptied
	settings, err := config.FromMap(map[string]string{
		"includes": "kinto.plugins.prometheus", "multiauth.policies": "basicauth", "userid_hmac_secret": "secret",
		"storage_backend": "postgresql", "storage_url": os.Getenv("KINTOGO_TEST_POSTGRES"),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var nodes []*node
	for range 2 {
		srv, store, err := app.New(ctx, settings, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		nodes = append(nodes, serve(t, srv))
	}
	a, b := nodes[0], nodes[1]
	// b's listener may not be connected yet: write until b hears.
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		a.do("PUT", "/v1/buckets/b"+strconv.Itoa(i), "alice:pw", "")
		time.Sleep(20 * time.Millisecond)
		_, samples := b.scrape()
		if samples["kinto_notification_lag_seconds_count"] > 0 {
			if s := samples["kinto_notification_lag_seconds_sum"]; s > 5 {
				t.Errorf("lag sum %v", s)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("node b measured no notification")
		}
	}
	_, samples := a.scrape()
	if samples["kinto_commits_total"] == 0 || samples["kinto_notification_lag_seconds_count"] != 0 {
		t.Errorf("node a: %v commits, %v notifications", samples["kinto_commits_total"], samples["kinto_notification_lag_seconds_count"])
	}
}

// Requests and the exposition while many requests run (go test -race).
func TestConcurrentObservation(t *testing.T) {
	n := newNode(t, nil)
	done := make(chan bool)
	for i := 0; i < 4; i++ {
		go func() {
			for j := 0; j < 20; j++ {
				r, _ := http.NewRequest("GET", n.url+"/v1/buckets/main/collections/c"+strconv.Itoa(j%3)+"/records", nil)
				r.SetBasicAuth("u"+strconv.Itoa(i), "pw")
				if resp, err := http.DefaultClient.Do(r); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
			done <- true
		}()
	}
	for i := 0; i < 4; i++ {
		<-done
	}
	_, samples := n.scrape()
	total := 0.0
	for k, v := range samples {
		if strings.HasPrefix(k, "kinto_request_summary_total{") && strings.Contains(k, `endpoint="record-plural"`) {
			total += v
		}
	}
	if total != 80 {
		t.Errorf("%v record-plural requests counted", total)
	}
}

// Each policy of multiauth.policies is timed as Kinto times its
// policies: kinto_authentication_{policy}_seconds{method}, with
// authenticated_userid for every policy consulted and callback for the
// checks of credentials (what Mozilla's browser-tests read).
func TestAuthenticationTimers(t *testing.T) {
	n := newNode(t, map[string]string{"includes": "kinto.plugins.prometheus kinto.plugins.accounts",
		"multiauth.policies": "account basicauth", "account_create_principals": "system.Everyone"})
	if status, _, raw := n.do("PUT", "/v1/accounts/alice", "-", `{"data": {"password": "pw"}}`); status != 201 {
		t.Fatalf("account: %d %s", status, raw)
	}
	n.do("GET", "/v1/buckets", "alice:pw", "") // account
	n.do("GET", "/v1/buckets", "bob:x", "")    // account refuses, basicauth takes it
	n.do("GET", "/v1/buckets", "-", "")        // anonymous: consulted, no credentials
	_, samples := n.scrape()
	// (The anonymous PUT of the account consulted both policies too.)
	want(t, samples, `kinto_authentication_account_seconds_count{method="authenticated_userid"}`, 4)
	want(t, samples, `kinto_authentication_account_seconds_count{method="callback"}`, 2)
	want(t, samples, `kinto_authentication_basicauth_seconds_count{method="authenticated_userid"}`, 3)
	want(t, samples, `kinto_authentication_basicauth_seconds_count{method="callback"}`, 1)
	if samples[`kinto_authentication_account_seconds_sum{method="callback"}`] <= 0 {
		t.Error("the account checks took no time")
	}
	// prometheus_disabled_metrics takes their names too.
	n = newNode(t, map[string]string{"includes": "kinto.plugins.prometheus kinto.plugins.accounts", "multiauth.policies": "account basicauth",
		"prometheus_disabled_metrics": "authentication_account_seconds"})
	n.do("GET", "/v1/buckets", "bob:x", "")
	exposition, samples := n.scrape()
	absent(t, exposition, "kinto_authentication_account_seconds")
	want(t, samples, `kinto_authentication_basicauth_seconds_count{method="callback"}`, 1)
}
