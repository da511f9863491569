package app_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"kintogo/internal/app"
	"kintogo/internal/config"
	"kintogo/internal/httpapi"
	"kintogo/internal/storage/memory"
)

// syncBuffer is a log destination tests read while servers write.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// loggedServer is a server logging to the returned buffer with the
// logger app.NewLogger makes of its settings. Requests are served
// directly (each is logged when ServeHTTP returns).
func loggedServer(t *testing.T, s *config.Settings) (http.Handler, *syncBuffer) {
	t.Helper()
	out := &syncBuffer{}
	srv, err := app.NewServer(s, memory.New(), httpapi.Options{Version: "test", Logger: app.NewLogger(s, out)})
	if err != nil {
		t.Fatal(err)
	}
	return srv, out
}

func settings(t *testing.T, m map[string]string) *config.Settings {
	t.Helper()
	base := map[string]string{"multiauth.policies": "basicauth openid", "userid_hmac_secret": "secret", "project_name": "myproject"}
	for k, v := range m {
		base[k] = v
	}
	s, err := config.FromMap(base)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func serve(h http.Handler, method, path, auth, body string, header ...string) int {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if user, pw, ok := strings.Cut(auth, ":"); ok {
		r.SetBasicAuth(user, pw)
	}
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code
}

type logLine struct {
	Timestamp  int64
	Type       string
	Logger     string
	Hostname   string
	EnvVersion string
	Severity   int
	Pid        int
	Fields     map[string]any
}

var isoTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}000)?$`)

// With log_format json, every line is Kinto's JSON, and every request has
// its request.summary line with Kinto's fields.
func TestJSONRequestLogs(t *testing.T) {
	srv, out := loggedServer(t, settings(t, map[string]string{"log_format": "json"}))
	serve(srv, "PUT", "/v1/buckets/b", "alice:pw", "", "User-Agent", "tester/1", "Accept-Language", "fr", "X-Request-Id", "rid-1")
	serve(srv, "GET", "/v1/buckets/b/collections?_limit=2&_sort=-id&_limit=3", "alice:pw", "")
	serve(srv, "GET", "/v1/buckets/b/collections/missing", "alice:pw", "")
	serve(srv, "GET", "/v1/buckets/b", "", "")
	serve(srv, "POST", "/v1/batch", "", `{"requests": [{"path": "/buckets/b"}, {"path": "/buckets/x"}]}`)

	var summaries []logLine
	var other []logLine
	for _, raw := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var l logLine
		if err := json.Unmarshal([]byte(raw), &l); err != nil {
			t.Fatalf("not JSON: %q", raw)
		}
		host, _ := os.Hostname()
		if l.Logger != "myproject" || l.EnvVersion != "2.0" || l.Pid != os.Getpid() || l.Hostname != host || l.Timestamp == 0 {
			t.Errorf("envelope: %s", raw)
		}
		if l.Type == "request.summary" {
			summaries = append(summaries, l)
		} else {
			other = append(other, l)
		}
	}
	if len(summaries) != 5 {
		t.Fatalf("%d request.summary lines: %s", len(summaries), out)
	}
	// The warning of the unknown policy, outside any request.
	if len(other) != 1 || other[0].Severity != 4 || other[0].Fields["rid"] != nil || other[0].Fields["policy"] != "openid" {
		t.Errorf("other lines: %+v", other)
	}
	for _, l := range summaries {
		f := l.Fields
		if l.Severity != 6 || !isoTime.MatchString(f["time"].(string)) || f["t"] == nil || f["rid"] == "" || f["path"] == nil {
			t.Errorf("summary %v", f)
		}
	}
	put := summaries[0].Fields
	if put["method"] != "PUT" || put["path"] != "/v1/buckets/b" || put["code"] != 201.0 || put["errno"] != 0.0 ||
		put["agent"] != "tester/1" || put["lang"] != "fr" || put["rid"] != "rid-1" || put["authn_type"] != "basicauth" ||
		!regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(put["uid"].(string)) {
		t.Errorf("PUT: %v", put)
	}
	if _, ok := put["querystring"]; ok {
		t.Errorf("a querystring without a query: %v", put)
	}
	list := summaries[1].Fields
	if qs, _ := json.Marshal(list["querystring"]); string(qs) != `{"_limit":"3","_sort":"-id"}` || list["code"] != 200.0 {
		t.Errorf("list: %v", list)
	}
	if missing := summaries[2].Fields; missing["code"] != 404.0 || missing["errno"] != 110.0 || missing["uid"] != put["uid"] {
		t.Errorf("404: %v", missing)
	}
	if anonymous := summaries[3].Fields; anonymous["code"] != 401.0 || anonymous["errno"] != 104.0 || anonymous["uid"] != nil || anonymous["authn_type"] != nil {
		t.Errorf("401: %v", anonymous)
	}
	if batch := summaries[4].Fields; batch["path"] != "/v1/batch" || batch["batch_size"] != 2.0 || batch["code"] != 200.0 {
		t.Errorf("batch: %v", batch)
	}
}

// Text logs (the default) have no request lines.
func TestTextLogsHaveNoRequestLines(t *testing.T) {
	srv, out := loggedServer(t, settings(t, nil))
	serve(srv, "PUT", "/v1/buckets/b", "alice:pw", "")
	serve(srv, "GET", "/v1/nowhere", "", "")
	if got := out.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, "level=WARN") || strings.Contains(got, "{") {
		t.Errorf("text logs: %q", got)
	}
	s := settings(t, map[string]string{"log_format": "xml"})
	if _, err := app.NewServer(s, memory.New(), httpapi.Options{}); err == nil || !strings.Contains(err.Error(), "log_format") {
		t.Errorf("log_format xml: %v", err)
	}
}

// Kinto's INI selects JSON logs by its console handler's formatter, as in
// Kinto's template, unless log_format says otherwise (in the INI or the
// environment).
func TestINIJSONFormatter(t *testing.T) {
	logging := `
[loggers]
keys = root, kinto

[handlers]
keys = console

[formatters]
keys = color, json

[logger_root]
level = INFO
handlers = console

[logger_kinto]
level = DEBUG
handlers = console
qualname = kinto
propagate = 0

[handler_console]
class = kinto.core.StreamHandlerWithRequestID
args = (sys.stderr,)
level = NOTSET
formatter = %s

[formatter_color]
class = logging_color_formatter.ColorFormatter

[formatter_json]
class = kinto.core.JsonLogFormatter

[formatter_mozlog]
class = dockerflow.logging.MozlogFormatter
`
	for _, tc := range []struct {
		formatter, app string
		environ        []string
		want           string
	}{
		{"json", "", nil, "json"},
		{"mozlog", "", nil, "json"},
		{"color", "", nil, "text"},
		{"json", "kinto.log_format = text", nil, "text"},
		{"json", "", []string{"KINTO_LOG_FORMAT=text"}, "text"},
		{"color", "kinto.log_format = json", nil, "json"},
	} {
		path := filepath.Join(t.TempDir(), "kinto.ini")
		ini := "[app:main]\nuse = egg:kinto\nkinto.storage_backend = memory\n" + tc.app + "\n" + strings.Replace(logging, "%s", tc.formatter, 1)
		if err := os.WriteFile(path, []byte(ini), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := config.Load(path, tc.environ)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.String("log_format"); got != tc.want {
			t.Errorf("formatter %s, %q, %v: log_format %q, want %q", tc.formatter, tc.app, tc.environ, got, tc.want)
		}
		if tc.want == "json" {
			srv, out := loggedServer(t, s)
			serve(srv, "GET", "/v1/", "", "")
			var l logLine
			if err := json.Unmarshal([]byte(out.String()), &l); err != nil || l.Type != "request.summary" || l.Logger != "kinto" {
				t.Errorf("formatter %s: %q", tc.formatter, out)
			}
		}
	}
}
