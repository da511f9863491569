package api

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// memo holds values computed from stored data, valid for one generation of
// the data (see Server.generation): any commit empties it. It is bounded:
// when full it starts afresh.
type memo struct {
	mu    sync.RWMutex
	gen   uint64
	items map[string]any
	max   int
}

func newMemo(max int) *memo { return &memo{items: map[string]any{}, max: max} }

func (m *memo) get(gen uint64, key string) (any, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.gen != gen {
		return nil, false
	}
	v, ok := m.items[key]
	return v, ok
}

// put stores v for gen, unless the memo already moved to a later one.
func (m *memo) put(gen uint64, key string, v any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if gen < m.gen {
		return
	}
	if gen > m.gen || len(m.items) >= m.max {
		m.items = map[string]any{}
		m.gen = gen
	}
	m.items[key] = v
}

// cachedResponse is a recorded answer, replayed to identical requests.
type cachedResponse struct {
	status int
	header http.Header
	body   []byte
	length []string // Content-Length of body
	gzOnce sync.Once
	gz     []byte
	gzLen  []string
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

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	zw.Write(b)
	zw.Close()
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
	if len(body) >= minGzip && acceptsGzip(r) {
		c.gzOnce.Do(func() {
			c.gz = gzipBytes(c.body)
			c.gzLen = []string{strconv.Itoa(len(c.gz))}
		})
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
	header http.Header
	status int
	body   bytes.Buffer
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
// identical requests that arrive together share one computation.
type responseCache struct {
	memo   *memo
	flight singleflight.Group
}

func newResponseCache() *responseCache { return &responseCache{memo: newMemo(4096)} }

// cacheable wraps a handler whose answer depends only on the stored data,
// the method, the query string and the precondition headers.
func (s *Server) cacheable(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		if batchOf(r.Context()) != nil {
			return h(w, r, c) // uncommitted data: nothing to share
		}
		gen := s.generation()
		key := r.Method + " " + r.URL.Path + "?" + r.URL.RawQuery + "\x00" +
			r.Header.Get("If-None-Match") + "\x00" + r.Header.Get("If-Match")
		if v, ok := s.responses.memo.get(gen, key); ok {
			v.(*cachedResponse).write(w, r, s.opts.Now())
			return nil
		}
		v, _, _ := s.responses.flight.Do(strconv.FormatUint(gen, 10)+" "+key, func() (any, error) {
			rec := newRecorder()
			err := h(rec, r, c)
			if err == errNotModified {
				rec.WriteHeader(http.StatusNotModified)
				err = nil
			}
			if err != nil {
				// Errors are rendered for each caller, with the headers
				// the handler set (the ETag of a 412).
				return failed{err: err, header: rec.header}, nil
			}
			resp := &cachedResponse{status: rec.status, header: rec.header, body: rec.body.Bytes()}
			resp.length = []string{strconv.Itoa(len(resp.body))}
			if resp.status == 0 {
				resp.status = http.StatusOK
			}
			// Answers that depend on the clock (redirects of an old
			// _since, 204s) are not kept; neither is anything computed
			// while a commit happened.
			if (resp.status == http.StatusOK || resp.status == http.StatusNotModified) && s.generation() == gen {
				s.responses.memo.put(gen, key, resp)
			}
			return resp, nil
		})
		if f, ok := v.(failed); ok {
			for k, vs := range f.header {
				w.Header()[k] = vs
			}
			return f.err
		}
		v.(*cachedResponse).write(w, r, s.opts.Now())
		return nil
	}
}

// failed is a shared computation that ended with an error.
type failed struct {
	err    error
	header http.Header
}
