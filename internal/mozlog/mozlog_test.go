package mozlog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"kintogo/internal/mozlog"
)

type ridKey struct{}

func newLogger(buf *bytes.Buffer, level slog.Level) *slog.Logger {
	return slog.New(mozlog.New(buf, mozlog.Options{Logger: "kinto", Type: "kintogo", Level: level,
		RequestID: func(ctx context.Context) string { s, _ := ctx.Value(ridKey{}).(string); return s }}))
}

// line decodes one log line, keeping the order of Fields' keys.
func line(t *testing.T, raw string) (map[string]any, []string) {
	t.Helper()
	var out map[string]any
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		t.Fatalf("not JSON: %q: %v", raw, err)
	}
	var order struct{ Fields json.RawMessage }
	json.Unmarshal([]byte(raw), &order)
	dec := json.NewDecoder(bytes.NewReader(order.Fields))
	var keys []string
	dec.Token()
	for dec.More() {
		k, _ := dec.Token()
		keys = append(keys, k.(string))
		var skip json.RawMessage
		dec.Decode(&skip)
	}
	return out, keys
}

func TestEnvelope(t *testing.T) {
	var buf bytes.Buffer
	log := newLogger(&buf, slog.LevelDebug)
	before := time.Now().UnixNano()
	log.Warn("backend unavailable", "path", "/v1/x", "err", errors.New("boom"))
	out, keys := line(t, buf.String())
	host, _ := os.Hostname()
	if out["Type"] != "kintogo" || out["Logger"] != "kinto" || out["Hostname"] != host || out["EnvVersion"] != "2.0" ||
		out["Severity"] != 4.0 || out["Pid"] != float64(os.Getpid()) {
		t.Errorf("envelope: %s", buf.String())
	}
	if ts := int64(out["Timestamp"].(float64)); ts < before-int64(time.Second) || ts > time.Now().UnixNano()+int64(time.Second) {
		t.Errorf("Timestamp %d", ts)
	}
	fields := out["Fields"].(map[string]any)
	if fields["path"] != "/v1/x" || fields["err"] != "boom" || fields["rid"] != nil || fields["msg"] != "backend unavailable" {
		t.Errorf("fields: %v", fields)
	}
	if strings.Join(keys, " ") != "path err rid msg" {
		t.Errorf("order: %v", keys)
	}
	if !strings.HasSuffix(buf.String(), "}}\n") || strings.Count(buf.String(), "\n") != 1 {
		t.Errorf("not one line: %q", buf.String())
	}
}

func TestSeverities(t *testing.T) {
	for level, want := range map[slog.Level]int{
		slog.LevelDebug: 7, slog.LevelInfo: 6, slog.LevelWarn: 4, slog.LevelError: 3, slog.LevelError + 4: 2,
	} {
		if got := mozlog.Severity(level); got != want {
			t.Errorf("Severity(%v) = %d, want %d", level, got, want)
		}
	}
	var buf bytes.Buffer
	log := newLogger(&buf, slog.LevelInfo)
	log.Debug("hidden")
	if buf.Len() != 0 {
		t.Errorf("debug written at info: %s", buf.String())
	}
}

// The logger attribute names the line's Type; the request id comes from
// the context unless an attribute gives it; an empty or JSON message is
// left out, as dockerflow does.
func TestTypeRequestIDAndMessage(t *testing.T) {
	var buf bytes.Buffer
	log := newLogger(&buf, slog.LevelInfo)
	ctx := context.WithValue(context.Background(), ridKey{}, "r-1")
	log.InfoContext(ctx, "", "logger", "request.summary", "code", 200)
	log.InfoContext(ctx, "in a request")
	log.Info("{\"already\": \"json\"}", "rid", "mine")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines: %s", len(lines), buf.String())
	}
	out, keys := line(t, lines[0])
	if out["Type"] != "request.summary" || strings.Join(keys, " ") != "code rid" || out["Fields"].(map[string]any)["rid"] != "r-1" {
		t.Errorf("summary line: %s", lines[0])
	}
	if out, _ = line(t, lines[1]); out["Type"] != "kintogo" || out["Fields"].(map[string]any)["rid"] != "r-1" {
		t.Errorf("request line: %s", lines[1])
	}
	if out, keys = line(t, lines[2]); strings.Join(keys, " ") != "rid" || out["Fields"].(map[string]any)["rid"] != "mine" {
		t.Errorf("JSON message: %s", lines[2])
	}
}

// Groups are objects; attributes added before and inside groups land
// where slog puts them; odd values are still JSON.
func TestGroupsAndValues(t *testing.T) {
	var buf bytes.Buffer
	log := newLogger(&buf, slog.LevelInfo).With("node", "a").WithGroup("req").With("id", 7)
	log.Info("m", slog.Group("querystring", "_since", "1", "_expected", "x"), "d", time.Second, "f", 1.5,
		"b", true, "m", map[string]any{"k": []any{1}}, "ch", make(chan int), "s", "line\n\"quoted\"\x01\xff\u2028", slog.Group("empty"))
	out, keys := line(t, buf.String())
	fields := out["Fields"].(map[string]any)
	if strings.Join(keys, " ") != "node req rid msg" || fields["node"] != "a" {
		t.Fatalf("fields %v: %s", keys, buf.String())
	}
	req := fields["req"].(map[string]any)
	qs := req["querystring"].(map[string]any)
	if req["id"] != 7.0 || qs["_since"] != "1" || qs["_expected"] != "x" || req["d"] != "1s" || req["f"] != 1.5 || req["b"] != true {
		t.Errorf("req: %v", req)
	}
	if s := req["s"]; s != "line\n\"quoted\"\x01\ufffd\u2028" {
		t.Errorf("string %q", s)
	}
	if _, ok := req["empty"]; ok {
		t.Error("empty group written")
	}
	if _, ok := req["ch"].(string); !ok {
		t.Errorf("a channel is %v", req["ch"])
	}
}
