package httpapi_test

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"kintogo/internal/app"
	"kintogo/internal/config"
	"kintogo/internal/httpapi"
	"kintogo/internal/storage/memory"
)

// End of service, as Kinto 26.5 answers it (its answers recorded with
// the same settings): before the date every answer, errors included,
// carries a soft-eol Alert and GET /v1/ shows the date; from the date on
// every request, the heartbeats, pre-flights and batches too, gets a 410
// errno 202 with a hard-eol Alert, its CORS headers kept.
func TestEndOfService(t *testing.T) {
	for name, open := range backends() {
		t.Run(name, func(t *testing.T) {
			var now atomic.Int64
			now.Store(time.Date(2029, 12, 31, 12, 0, 0, 0, time.Local).UnixMilli())
			c := newClientWith(t, open(t), map[string]string{"eos": "2030-01-01", "eos_message": "Bye", "eos_url": "https://example.com/eos", "cors_origins": "*"},
				httpapi.Options{Version: "test", Now: func() time.Time { return time.UnixMilli(now.Load()) }})
			soft := `{"code":"soft-eol","message":"Bye","url":"https://example.com/eos"}`
			hello := c.get("/v1/", "").must(t, 200)
			if hello.str("eos") != "2030-01-01" || hello.header.Get("Alert") != soft {
				t.Errorf("GET /v1/: %s %q", hello.str("eos"), hello.header.Get("Alert"))
			}
			c.do(req{method: "PUT", path: "/v1/buckets/b", auth: "mat:secret"}).must(t, 201)
			for _, r := range []*response{
				c.get("/v1/buckets/b", "mat:secret").must(t, 200),
				c.get("/v1/buckets/missing", "mat:secret"),
				c.get("/v1/buckets/b", ""),
				c.get("/v1/nothing", ""),
				c.get("/v1/__lbheartbeat__", ""),
				c.get("/v1/buckets/b/collections?_to=1", "mat:secret").must(t, 200),
				c.do(req{method: "POST", path: "/v1/batch", auth: "mat:secret", body: map[string]any{"requests": []any{map[string]any{"path": "/buckets/b"}}}}).must(t, 200),
			} {
				if r.header.Get("Alert") != soft {
					t.Errorf("%d %s: Alert %q", r.status, r.raw, r.header.Get("Alert"))
				}
			}

			now.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.Local).UnixMilli())
			for _, r := range []req{
				{method: "GET", path: "/v1/"},
				{method: "GET", path: "/v1/buckets/b", auth: "mat:secret"},
				{method: "GET", path: "/v1/__heartbeat__"},
				{method: "GET", path: "/v1/nothing"},
				{method: "OPTIONS", path: "/v1/buckets", header: map[string]string{"Origin": "http://foo.com", "Access-Control-Request-Method": "GET"}},
				{method: "POST", path: "/v1/batch", auth: "mat:secret", body: map[string]any{"requests": []any{map[string]any{"method": "PUT", "path": "/buckets/c"}}}},
				{method: "GET", path: "/v1/buckets", header: map[string]string{"Origin": "http://foo.com"}},
			} {
				a := c.do(r)
				a.wantError(t, 410, 202)
				if a.header.Get("Alert") != `{"code":"hard-eol","message":"Bye","url":"https://example.com/eos"}` ||
					a.str("message") != "The service you are trying to connect no longer exists at this location." || a.str("error") != "Gone" {
					t.Errorf("%s %s: %q %s", r.method, r.path, a.header.Get("Alert"), a.raw)
				}
				if r.header["Origin"] != "" && (a.header.Get("Access-Control-Allow-Origin") == "" || !strings.Contains(a.header.Get("Access-Control-Expose-Headers"), "Alert")) {
					t.Errorf("%s %s: CORS headers %v", r.method, r.path, a.header)
				}
			}
			// Nothing was written after the date.
			now.Store(time.Date(2029, 1, 1, 0, 0, 0, 0, time.Local).UnixMilli())
			c.get("/v1/buckets/c", "mat:secret").wantError(t, 403, 121)
		})
	}
}

// Without a message nor a URL, Kinto's: null and the project's docs; a
// date that is not one refuses the start.
func TestEndOfServiceSettings(t *testing.T) {
	c := newClient(t, memory.New(), map[string]string{"eos": "2999-06-30T12:00:00Z"})
	if got := c.get("/v1/", "").header.Get("Alert"); got != `{"code":"soft-eol","message":null,"url":"https://kinto.readthedocs.io/"}` {
		t.Errorf("Alert %q", got)
	}
	for _, bad := range []string{"soon", "2030-13-01", "30/01/2030"} {
		settings, _ := config.FromMap(map[string]string{"eos": bad})
		if _, err := app.NewServer(settings, memory.New(), httpapi.Options{}); err == nil || !strings.Contains(err.Error(), "is not a date") {
			t.Errorf("eos %q: %v", bad, err)
		}
	}
}
