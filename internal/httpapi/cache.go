package httpapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"kintogo/internal/events"
	"kintogo/internal/kerr"
)

// memo holds values computed from stored data, each valid for the version
// of the scope it was computed from (events.Hub): a value whose scope
// changed since is not returned any more, and is replaced by the next put.
// It is bounded by a number of entries and by the bytes they hold; when
// full, the oldest entries go first.
type memo struct {
	mu       sync.RWMutex
	items    map[string]memoEntry
	order    []string // keys, oldest first
	bytes    int64
	maxItems int
	maxBytes int64
}

type memoEntry struct {
	v       any
	version uint64
	size    int64
}

// newMemo returns a memo of at most maxItems entries and maxBytes bytes
// (keys and the sizes given to put; 0: no byte bound).
func newMemo(maxItems int, maxBytes int64) *memo {
	return &memo{items: map[string]memoEntry{}, maxItems: maxItems, maxBytes: maxBytes}
}

// get returns the value kept for key when it was computed at version.
func (m *memo) get(version uint64, key string) (any, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	e, ok := m.items[key]
	if !ok || e.version != version {
		return nil, false
	}
	return e.v, true
}

// put keeps v, of about size bytes, computed at version, unless v alone
// would exceed the byte bound. (A second key of a value already stored
// counts only its own bytes.)
func (m *memo) put(version uint64, key string, v any, size int64) {
	size += int64(len(key))
	if m.maxBytes > 0 && size > m.maxBytes {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.items[key]; ok {
		if old.version > version {
			return // a newer value is kept already
		}
		m.bytes -= old.size
		delete(m.items, key)
	}
	for len(m.order) > 0 && (len(m.items) >= m.maxItems || (m.maxBytes > 0 && m.bytes+size > m.maxBytes)) {
		oldest := m.order[0]
		m.order = m.order[1:]
		if e, ok := m.items[oldest]; ok {
			m.bytes -= e.size
			delete(m.items, oldest)
		}
	}
	m.items[key] = memoEntry{v: v, version: version, size: size}
	m.order = append(m.order, key)
	m.bytes += size
	if len(m.order) > 2*len(m.items)+16 {
		// Keys replaced in place left duplicates behind: keep each once.
		seen := make(map[string]bool, len(m.items))
		kept := m.order[:0]
		for i := len(m.order) - 1; i >= 0; i-- {
			if k := m.order[i]; !seen[k] {
				seen[k] = true
				kept = append(kept, k)
			}
		}
		slices.Reverse(kept)
		m.order = kept
	}
}

// cachedResponse is a recorded answer, replayed to identical requests.
// Bodies worth compressing are kept gzipped too, made once when the answer
// is recorded (so that the cache knows its size).
type cachedResponse struct {
	status int
	header http.Header
	body   []byte
	length []string // Content-Length of body
	gz     []byte   // nil when body is too small to compress
	gzLen  []string
	// volatile answers are not kept (see volatile).
	volatile bool
}

// newCachedResponse records what a handler wrote.
func newCachedResponse(rec *recorder) *cachedResponse {
	resp := &cachedResponse{status: rec.status, header: rec.header, body: rec.body.Bytes(), volatile: rec.volatile}
	resp.length = []string{strconv.Itoa(len(resp.body))}
	if resp.status == 0 {
		resp.status = http.StatusOK
	}
	if len(resp.body) >= minGzip {
		resp.gz = gzipBytes(resp.body)
		resp.gzLen = []string{strconv.Itoa(len(resp.gz))}
	}
	return resp
}

// size is about the memory the answer holds.
func (c *cachedResponse) size() int64 {
	n := int64(len(c.body) + len(c.gz))
	for k, vs := range c.header {
		n += int64(len(k))
		for _, v := range vs {
			n += int64(len(v))
		}
	}
	return n
}

// minGzip is the size under which compressing is not worth it.
const minGzip = 1024

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		if name, _, _ := strings.Cut(strings.TrimSpace(part), ";"); name == "gzip" {
			return true
		}
	}
	return false
}

// gzipWriters are reused: a new writer allocates about 600 KB.
var gzipWriters = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	return zw
}}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzipWriters.Get().(*gzip.Writer)
	zw.Reset(&buf)
	zw.Write(b)
	zw.Close()
	gzipWriters.Put(zw)
	return buf.Bytes()
}

// write replays the answer. Expires is recomputed from max-age, since the
// recorded one was relative to the first request.
func (c *cachedResponse) write(w http.ResponseWriter, r *http.Request, now time.Time) {
	h := w.Header()
	for k, v := range c.header {
		h[k] = v
	}
	if cc := h.Get("Cache-Control"); strings.HasPrefix(cc, "max-age=") && h.Get("Expires") != "" {
		if n, err := strconv.Atoi(strings.TrimPrefix(cc, "max-age=")); err == nil {
			h.Set("Expires", now.UTC().Add(time.Duration(n)*time.Second).Format(http.TimeFormat))
		}
	}
	body, length := c.body, c.length
	if c.gz != nil && acceptsGzip(r) {
		body, length = c.gz, c.gzLen
		h.Set("Content-Encoding", "gzip")
		h.Set("Vary", "Accept-Encoding")
	}
	if len(body) > 0 {
		h["Content-Length"] = length
	}
	w.WriteHeader(c.status)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

// recorder captures what a handler writes.
type recorder struct {
	header   http.Header
	status   int
	body     bytes.Buffer
	volatile bool
}

func newRecorder() *recorder { return &recorder{header: http.Header{}} }

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

// responseCache serves identical requests of public, read-only endpoints
// (the changes feed) from one recorded answer per generation of the data;
// identical requests that arrive together share one computation. It holds
// at most response_cache_max_bytes.
type responseCache struct {
	memo   *memo
	flight singleflight.Group
}

func newResponseCache(maxBytes int64) *responseCache {
	return &responseCache{memo: newMemo(4096, maxBytes)}
}

// cacheKey names what an answer depends on besides the stored data.
type cacheKey func(r *http.Request, c *Call) string

// rawKey: the method, the path, the whole query string and the
// precondition headers (answers that echo their query, as Next-Page does).
func rawKey(r *http.Request, c *Call) string {
	return r.Method + " " + r.URL.Path + "?" + r.URL.RawQuery + "\x00" +
		r.Header.Get("If-None-Match") + "\x00" + r.Header.Get("If-Match")
}

// cacheable wraps a handler whose answer depends only on the stored data
// of the scope scopeOf names, and on what key names. Answers are found by
// the exact request first (the cheapest key to build), then by key; an
// answer found by key is remembered under the exact request too, sharing
// its bytes. Identical requests that arrive together share one
// computation, detached from any one of them: it does not fail because
// the first caller went away.
//
// exact must name everything the answer depends on besides the scope's
// data; key (nil: exact) may name less, for requests that share answers.
// An empty exact key means "do not cache this one".
func (s *Server) cacheable(h Handler, exactKey, key cacheKey, scopeOf func(r *http.Request) events.Scope) Handler {
	if key == nil {
		key = exactKey
	}
	return func(w http.ResponseWriter, r *http.Request, c *Call) error {
		if inUnit(r.Context()) {
			return h(w, r, c) // uncommitted data: nothing to share
		}
		scope := scopeOf(r)
		version := s.hub.Version(scope)
		exact := exactKey(r, c)
		if exact == "" {
			return h(w, r, c)
		}
		if v, ok := s.responses.memo.get(version, exact); ok {
			v.(*cachedResponse).write(w, r, s.opts.Now())
			return nil
		}
		k := key(r, c)
		if k != exact {
			if v, ok := s.responses.memo.get(version, k); ok {
				s.responses.memo.put(version, exact, v, 0)
				v.(*cachedResponse).write(w, r, s.opts.Now())
				return nil
			}
		}
		v, _, _ := s.responses.flight.Do(strconv.FormatUint(version, 10)+" "+k, func() (any, error) {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), sharedTimeout)
			defer cancel()
			rec := newRecorder()
			err := h(rec, r.WithContext(ctx), c)
			var ke *kerr.Error
			if errors.As(err, &ke) && ke.Kind == kerr.NotModified {
				setTimestamp(rec, ke.Timestamp)
				rec.WriteHeader(http.StatusNotModified)
				err = nil
			}
			if err != nil {
				// Errors are rendered for each caller, with the headers
				// the handler set.
				return failed{err: err, header: rec.header}, nil
			}
			resp := newCachedResponse(rec)
			// Answers that depend on the clock (redirects of an old
			// _since, 204s) are not kept; neither is anything computed
			// while its scope changed.
			if keep(resp) && s.hub.Version(scope) == version {
				s.responses.memo.put(version, k, resp, resp.size())
			}
			return resp, nil
		})
		if f, ok := v.(failed); ok {
			for k, vs := range f.header {
				w.Header()[k] = vs
			}
			return f.err
		}
		resp := v.(*cachedResponse)
		if k != exact && keep(resp) && s.hub.Version(scope) == version {
			s.responses.memo.put(version, exact, resp, 0)
		}
		resp.write(w, r, s.opts.Now())
		return nil
	}
}

// sharedTimeout bounds a computation shared by identical requests, which
// goes on when they leave.
const sharedTimeout = 30 * time.Second

// keep reports whether a recorded answer may be served again: 200s and
// 304s (redirects and 204s depend on the clock), unless the handler marked
// it volatile.
func keep(resp *cachedResponse) bool {
	return !resp.volatile && (resp.status == http.StatusOK || resp.status == http.StatusNotModified)
}

// volatile marks the answer being written as valid only now (its ETag is
// the clock's, say): the answer cache serves it to the requests sharing
// its computation, and does not keep it.
func volatile(w http.ResponseWriter) {
	if rec, ok := w.(*recorder); ok {
		rec.volatile = true
	}
}

// failed is a shared computation that ended with an error.
type failed struct {
	err    error
	header http.Header
}
