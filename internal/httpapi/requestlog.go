package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// logRequest writes the request.summary line of a request, with Kinto's
// fields in Kinto's order (kinto.core.initialization.setup_logging): the
// mozlog handler (app.NewLogger) makes it Kinto's JSON line.
func (s *Server) logRequest(rs *RequestSummary) {
	attrs := make([]slog.Attr, 0, 16)
	attrs = append(attrs, slog.String("logger", "request.summary"))
	if rs.Agent != "" {
		attrs = append(attrs, slog.String("agent", rs.Agent))
	}
	attrs = append(attrs, slog.String("path", rs.Path), slog.String("method", rs.Method))
	if rs.Lang != "" {
		attrs = append(attrs, slog.String("lang", rs.Lang))
	}
	attrs = append(attrs, slog.String("rid", rs.RequestID), slog.Int("errno", rs.Errno))
	if qs := queryFields(rs.Query); len(qs) > 0 {
		attrs = append(attrs, slog.Attr{Key: "querystring", Value: slog.GroupValue(qs...)})
	}
	if rs.BatchSize > 0 {
		attrs = append(attrs, slog.Int("batch_size", rs.BatchSize))
	}
	if rs.UserID != "" {
		// Kinto logs the policy's user id, without its prefix.
		_, uid, _ := strings.Cut(rs.UserID, ":")
		attrs = append(attrs, slog.String("uid", uid), slog.String("authn_type", rs.AuthnType))
	}
	attrs = append(attrs,
		slog.String("time", pythonISOTime(rs.Start.Add(rs.Duration))),
		slog.Int("code", rs.Status),
		slog.Int64("t", rs.Duration.Milliseconds()))
	s.log.LogAttrs(context.Background(), slog.LevelInfo, "", attrs...)
}

// queryFields are the query string's parameters as Kinto logs them (a
// dict of the request's GET): in the order of their first occurrence,
// each with its last value.
func queryFields(raw string) []slog.Attr {
	if raw == "" {
		return nil
	}
	var out []slog.Attr
	index := map[string]int{}
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		if u, err := url.QueryUnescape(k); err == nil {
			k = u
		}
		if u, err := url.QueryUnescape(v); err == nil {
			v = u
		}
		if i, ok := index[k]; ok {
			out[i].Value = slog.StringValue(v)
			continue
		}
		index[k] = len(out)
		out = append(out, slog.String(k, v))
	}
	return out
}

// pythonISOTime formats t as Kinto does (datetime.fromtimestamp(ms /
// 1000).isoformat()): local time to the millisecond, microseconds shown
// unless zero, no time zone.
func pythonISOTime(t time.Time) string {
	t = t.Local().Truncate(time.Millisecond)
	s := t.Format("2006-01-02T15:04:05")
	if ms := t.Nanosecond() / int(time.Millisecond); ms != 0 {
		s += fmt.Sprintf(".%06d", ms*1000)
	}
	return s
}
