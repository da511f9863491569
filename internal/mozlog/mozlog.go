// Package mozlog is a log/slog handler writing Mozilla's JSON log format
// (mozlog 2.0), as Kinto's kinto.core.JsonLogFormatter (dockerflow's
// MozlogFormatter) prints it: one JSON object a line,
//
//	{"Timestamp": <ns>, "Type": <logger>, "Logger": <application>,
//	 "Hostname": …, "EnvVersion": "2.0", "Severity": <syslog level>,
//	 "Pid": …, "Fields": {<attributes>…, "rid": …, "msg": <message>}}
//
// Type is the value of a top-level "logger" attribute (Kinto's logger
// names: request.summary), else Options.Type. Fields holds the record's
// attributes in order (groups as nested objects, errors as their text),
// then "rid", the request id of the record's context (null when none)
// unless an attribute named it already, then "msg" unless the message is
// empty or looks like JSON.
package mozlog

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Options configure a Handler.
type Options struct {
	Logger string // the application's name ("Logger")
	// Type is the "Type" of records without a "logger" attribute.
	Type string
	// Level is the minimum level written (nil: slog.LevelInfo).
	Level slog.Leveler
	// RequestID returns the request id of a record's context ("": none).
	RequestID func(ctx context.Context) string
}

// Handler writes records as mozlog JSON lines. It is safe for concurrent
// use; each record is one Write.
type Handler struct {
	out    *output
	opts   Options
	host   string
	pid    int
	attrs  []slog.Attr // WithAttrs at the top level
	groups []group     // open groups (WithGroup), innermost last
}

type output struct {
	mu sync.Mutex
	w  io.Writer
}

type group struct {
	name  string
	attrs []slog.Attr
}

// New returns a handler writing to w.
func New(w io.Writer, opts Options) *Handler {
	host, _ := os.Hostname()
	return &Handler{out: &output{w: w}, opts: opts, host: host, pid: os.Getpid()}
}

// Enabled implements slog.Handler.
func (h *Handler) Enabled(_ context.Context, l slog.Level) bool {
	min := slog.LevelInfo
	if h.opts.Level != nil {
		min = h.opts.Level.Level()
	}
	return l >= min
}

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	h2 := h.clone()
	if n := len(h2.groups); n > 0 {
		g := &h2.groups[n-1]
		g.attrs = append(g.attrs[:len(g.attrs):len(g.attrs)], as...)
	} else {
		h2.attrs = append(h2.attrs[:len(h2.attrs):len(h2.attrs)], as...)
	}
	return h2
}

// WithGroup implements slog.Handler.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := h.clone()
	h2.groups = append(h2.groups, group{name: name})
	return h2
}

func (h *Handler) clone() *Handler {
	h2 := *h
	h2.groups = append([]group(nil), h.groups...)
	return &h2
}

// Severity maps slog levels to syslog's, as dockerflow maps Python's.
func Severity(l slog.Level) int {
	switch {
	case l >= slog.LevelError+4:
		return 2 // critical
	case l >= slog.LevelError:
		return 3
	case l >= slog.LevelWarn:
		return 4
	case l >= slog.LevelInfo:
		return 6
	}
	return 7
}

var buffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Handle implements slog.Handler.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	// The record's attributes, inside the open groups.
	var inner []slog.Attr
	if r.NumAttrs() > 0 {
		inner = make([]slog.Attr, 0, r.NumAttrs())
		r.Attrs(func(a slog.Attr) bool { inner = append(inner, a); return true })
	}
	for i := len(h.groups) - 1; i >= 0; i-- {
		g := h.groups[i]
		as := append(append([]slog.Attr(nil), g.attrs...), inner...)
		inner = []slog.Attr{{Key: g.name, Value: slog.GroupValue(as...)}}
	}
	fields := append(append(make([]slog.Attr, 0, len(h.attrs)+len(inner)), h.attrs...), inner...)

	typ := h.opts.Type
	hasRID := false
	kept := fields[:0]
	for _, a := range fields {
		a.Value = a.Value.Resolve()
		switch a.Key {
		case "logger":
			if a.Value.Kind() == slog.KindString {
				typ = a.Value.String()
				continue
			}
		case "rid":
			hasRID = true
		}
		kept = append(kept, a)
	}
	fields = kept

	buf := buffers.Get().(*bytes.Buffer)
	buf.Reset()
	defer buffers.Put(buf)
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	buf.WriteString(`{"Timestamp":`)
	buf.WriteString(strconv.FormatInt(t.UnixNano(), 10))
	buf.WriteString(`,"Type":`)
	writeString(buf, typ)
	buf.WriteString(`,"Logger":`)
	writeString(buf, h.opts.Logger)
	buf.WriteString(`,"Hostname":`)
	writeString(buf, h.host)
	buf.WriteString(`,"EnvVersion":"2.0","Severity":`)
	buf.WriteString(strconv.Itoa(Severity(r.Level)))
	buf.WriteString(`,"Pid":`)
	buf.WriteString(strconv.Itoa(h.pid))
	buf.WriteString(`,"Fields":{`)
	first := true
	for _, a := range fields {
		first = writeAttr(buf, a, first)
	}
	if !hasRID {
		first = sep(buf, first)
		buf.WriteString(`"rid":`)
		rid := ""
		if h.opts.RequestID != nil && ctx != nil {
			rid = h.opts.RequestID(ctx)
		}
		if rid == "" {
			buf.WriteString("null")
		} else {
			writeString(buf, rid)
		}
	}
	if msg := r.Message; msg != "" && !(msg[0] == '{' && msg[len(msg)-1] == '}') {
		first = sep(buf, first)
		buf.WriteString(`"msg":`)
		writeString(buf, msg)
	}
	buf.WriteString("}}\n")
	h.out.mu.Lock()
	defer h.out.mu.Unlock()
	_, err := h.out.w.Write(buf.Bytes())
	return err
}

func sep(buf *bytes.Buffer, first bool) bool {
	if !first {
		buf.WriteByte(',')
	}
	return false
}

// writeAttr writes one attribute ("key":value), skipping empty ones as
// slog does; groups become objects, and an empty key inlines a group.
func writeAttr(buf *bytes.Buffer, a slog.Attr, first bool) bool {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		as := v.Group()
		if len(as) == 0 {
			return first
		}
		if a.Key == "" {
			for _, ga := range as {
				first = writeAttr(buf, ga, first)
			}
			return first
		}
		first = sep(buf, first)
		writeString(buf, a.Key)
		buf.WriteString(":{")
		inner := true
		for _, ga := range as {
			inner = writeAttr(buf, ga, inner)
		}
		buf.WriteByte('}')
		return first
	}
	if a.Equal(slog.Attr{}) {
		return first
	}
	first = sep(buf, first)
	writeString(buf, a.Key)
	buf.WriteByte(':')
	writeValue(buf, v)
	return first
}

func writeValue(buf *bytes.Buffer, v slog.Value) {
	switch v.Kind() {
	case slog.KindString:
		writeString(buf, v.String())
	case slog.KindInt64:
		buf.WriteString(strconv.FormatInt(v.Int64(), 10))
	case slog.KindUint64:
		buf.WriteString(strconv.FormatUint(v.Uint64(), 10))
	case slog.KindFloat64:
		f := v.Float64()
		if math.IsInf(f, 0) || math.IsNaN(f) {
			writeString(buf, strconv.FormatFloat(f, 'g', -1, 64))
		} else {
			buf.WriteString(strconv.FormatFloat(f, 'g', -1, 64))
		}
	case slog.KindBool:
		buf.WriteString(strconv.FormatBool(v.Bool()))
	case slog.KindDuration:
		writeString(buf, v.Duration().String())
	case slog.KindTime:
		writeString(buf, v.Time().Format(time.RFC3339Nano))
	default:
		switch x := v.Any().(type) {
		case nil:
			buf.WriteString("null")
		case error:
			writeString(buf, x.Error())
		case json.Marshaler, map[string]any, []any, []string, map[string]string:
			writeJSON(buf, x)
		case fmt.Stringer:
			writeString(buf, x.String())
		default:
			writeJSON(buf, x)
		}
	}
}

// writeJSON writes x as JSON, or its %+v text when it has none (as
// dockerflow's SafeJSONEncoder falls back to repr).
func writeJSON(buf *bytes.Buffer, x any) {
	b, err := json.Marshal(x)
	if err != nil {
		writeString(buf, fmt.Sprintf("%+v", x))
		return
	}
	buf.Write(b)
}

const hex = "0123456789abcdef"

// writeString writes s as a JSON string; invalid UTF-8 becomes U+FFFD.
func writeString(buf *bytes.Buffer, s string) {
	buf.WriteByte('"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			buf.WriteString(s[start:i])
			switch c {
			case '"', '\\':
				buf.WriteByte('\\')
				buf.WriteByte(c)
			case '\n':
				buf.WriteString(`\n`)
			case '\r':
				buf.WriteString(`\r`)
			case '\t':
				buf.WriteString(`\t`)
			default:
				buf.WriteString(`\u00`)
				buf.WriteByte(hex[c>>4])
				buf.WriteByte(hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf.WriteString(s[start:i])
			buf.WriteString(`\ufffd`)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			buf.WriteString(s[start:i])
			buf.WriteString(`\u202`)
			buf.WriteByte(hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	buf.WriteString(s[start:])
	buf.WriteByte('"')
}
