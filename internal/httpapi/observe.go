package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"kintogo/internal/auth"
	"kintogo/internal/storage"
)

// Observation: metrics and request logs watch every request through one
// point. Once a top-level request is answered (never a batch's
// sub-requests, which are part of their batch's answer), the server
// calls each observer with its summary. Without observers the request
// path is unchanged: nothing is wrapped, allocated or measured.

// RequestSummary describes one answered request. Observers read it
// during their call only: it is not theirs to keep.
type RequestSummary struct {
	Start    time.Time     // when the request arrived
	Duration time.Duration // until it was answered (a stream's whole life)
	Method   string
	Path     string // the path as requested (before an alias such as the default bucket's is resolved)
	Query    string // the raw query string
	// Endpoint is Kinto's name of the route that answered (its Cornice
	// service: hello, record-plural, record-object, collection-changeset...,
	// or its route's: redirect_to_version); unknown for a 404 no route
	// matched and unnamed for other answers outside any route, as Kinto
	// names them.
	Endpoint string
	Status   int   // 200 when the handler wrote nothing
	Errno    int   // the errno of a Kinto JSON error, 0 otherwise
	Bytes    int64 // body bytes written
	// UserID is the caller's prefixed user id (basicauth:…, account:…)
	// and AuthnType the policy that identified it, when the request
	// identified its caller ("" for anonymous requests and for public
	// endpoints, which never authenticate).
	UserID, AuthnType string
	Lang              string // Accept-Language
	Agent             string // User-Agent
	// RequestID is the X-Request-Id the request carried (at most 128
	// bytes kept), or a new UUID; it is also in the request's context
	// (RequestID) for the log lines written while it runs.
	RequestID string
	BatchSize int // the number of sub-requests of a batch, 0 otherwise

	routed *http.Request     // the request as the route table matched it
	values map[string]string // a fixed route's values (Endpoint.Values)
}

// Match returns a value the route matched, by Kinto's name for it (its
// matchdict, with `<resource>_id` for the id of an object endpoint):
// bucket_id, collection_id, group_id, record_id, id...; "" when the route
// has none.
func (rs *RequestSummary) Match(field string) string {
	switch field {
	case "bucket_id":
		if v := rs.pathValue("bid"); v != "" {
			return v
		}
	case "collection_id":
		if v := rs.pathValue("cid"); v != "" {
			return v
		}
	case "id":
		return rs.pathValue("id")
	}
	if resource, ok := strings.CutSuffix(field, "_id"); ok && resource != "" && resource == rs.resource() {
		return rs.pathValue("id")
	}
	return ""
}

func (rs *RequestSummary) pathValue(name string) string {
	if v, ok := rs.values[name]; ok {
		return v
	}
	if rs.routed == nil {
		return ""
	}
	return rs.routed.PathValue(name)
}

// resource is the resource of an object or plural endpoint (record for
// record-object), "" for other endpoints.
func (rs *RequestSummary) resource() string {
	if r, ok := strings.CutSuffix(rs.Endpoint, "-object"); ok {
		return r
	}
	r, _ := strings.CutSuffix(rs.Endpoint, "-plural")
	return r
}

// ObserveRequests calls fn once per top-level request, after it is
// answered (a stream once it ends), on the request's goroutine: fn must
// be quick and safe for concurrent use. Observers are registered while
// the server is assembled, before it serves.
func (s *Server) ObserveRequests(fn func(*RequestSummary)) {
	s.observers = append(s.observers, fn)
}

// ObserveAuthentication calls fn with the time each authentication policy
// took to identify a request (see auth.Observer): fn must be quick and
// safe for concurrent use.
func (s *Server) ObserveAuthentication(fn auth.Observer) {
	prev := s.authObserver
	if prev == nil {
		s.authObserver = fn
		return
	}
	s.authObserver = func(policy, method string, d time.Duration) {
		prev(policy, method, d)
		fn(policy, method, d)
	}
}

// ObserveNotifications calls fn with the delay between another node's
// commit and the moment this node's views took it (from the change log).
func (s *Server) ObserveNotifications(fn func(delay time.Duration)) {
	s.notified = append(s.notified, fn)
}

// ReplicationLag is how far behind its primary the replica this node
// reads is (0 on a primary, and for backends without replicas).
func (s *Server) ReplicationLag(ctx context.Context) time.Duration {
	if l := storage.LaggingOf(s.store); l != nil {
		if lag, err := l.Lag(ctx); err == nil {
			return lag
		}
	}
	return 0
}

// LogPosition is the newest position of the change log this node read.
func (s *Server) LogPosition() int64 { return s.engine.History().Head() }

// PushStats reports the event streams open and the long-polls waiting.
func (s *Server) PushStats() (streams, longPolls int64) {
	return s.streams.Load(), s.waiting.Load()
}

// SetEndpoint names the endpoint answering w, for the observers, with the
// request's Call (whose caller they report): for interceptors that answer
// requests themselves (the default bucket's alias). A route the request
// reaches afterwards names it again.
func SetEndpoint(w http.ResponseWriter, name string, c *Call) {
	if o, ok := w.(*observed); ok {
		o.sum.Endpoint, o.call = name, c
	}
}

type requestIDKey struct{}

// RequestID is the id of the request whose context ctx is (or derives
// from), "" when none: requests carry one while the server has observers.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// maxRequestID bounds the X-Request-Id kept from a request.
const maxRequestID = 128

// serveObserved serves a top-level request through an observed writer,
// then calls the observers, also when the handler panics (a stream
// dropped with http.ErrAbortHandler).
func (s *Server) serveObserved(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rid := r.Header.Get("X-Request-Id")
	if len(rid) > maxRequestID {
		rid = rid[:maxRequestID]
	}
	if rid == "" {
		rid = uuid.NewString()
	}
	o := &observed{w: w, sum: RequestSummary{
		Start: start, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
		Lang: r.Header.Get("Accept-Language"), Agent: r.Header.Get("User-Agent"), RequestID: rid,
	}}
	r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, rid))
	defer s.summarize(o)
	s.serve(o, r)
}

// summarize completes a request's summary and gives it to the observers.
func (s *Server) summarize(o *observed) {
	sum := &o.sum
	sum.Duration = time.Since(sum.Start)
	if sum.Status == 0 {
		sum.Status = http.StatusOK
	}
	if sum.Endpoint == "" {
		sum.Endpoint = "unnamed"
		if sum.Status == http.StatusNotFound {
			sum.Endpoint = "unknown"
		}
	}
	if c := o.call; c != nil && c.who != nil && c.who.UserID != "" {
		sum.UserID = c.who.UserID
		sum.AuthnType, _, _ = strings.Cut(c.who.UserID, ":")
	}
	for _, fn := range s.observers {
		fn(sum)
	}
}

// observed is the writer of an observed request: it records the status,
// the bytes and what the route table and the renderer tell of the
// request, and passes everything through (Flush, and the rest of
// http.ResponseController's methods through Unwrap).
type observed struct {
	w     http.ResponseWriter
	sum   RequestSummary
	call  *Call
	wrote bool
}

func (o *observed) Header() http.Header { return o.w.Header() }

func (o *observed) WriteHeader(status int) {
	if !o.wrote && (status < 100 || status > 199 || status == http.StatusSwitchingProtocols) {
		o.wrote = true
		o.sum.Status = status
	}
	o.w.WriteHeader(status)
}

func (o *observed) Write(b []byte) (int, error) {
	if !o.wrote {
		o.wrote = true
		o.sum.Status = http.StatusOK
	}
	n, err := o.w.Write(b)
	o.sum.Bytes += int64(n)
	return n, err
}

// FlushError flushes the underlying writer (http.ResponseController's
// Flush calls it) and reports its error.
func (o *observed) FlushError() error {
	if !o.wrote {
		o.wrote = true
		o.sum.Status = http.StatusOK
	}
	return http.NewResponseController(o.w).Flush()
}

// Flush implements http.Flusher.
func (o *observed) Flush() { o.FlushError() }

// Unwrap lets http.ResponseController reach the connection's writer.
func (o *observed) Unwrap() http.ResponseWriter { return o.w }

// routed tells the observer the endpoint, values and Call of the route
// that serves the request.
func routed(w http.ResponseWriter, e *Endpoint, r *http.Request, c *Call) {
	if o, ok := w.(*observed); ok {
		o.sum.Endpoint, o.sum.routed, o.sum.values, o.call = e.Name, r, e.Values, c
	}
}

// observeErrno records the errno of the Kinto error answered on w.
func observeErrno(w http.ResponseWriter, errno int) {
	if o, ok := w.(*observed); ok {
		o.sum.Errno = errno
	}
}

// observeBatch records the size of a batch, and the errno of its answer
// when a sub-request's error answers for the whole batch.
func observeBatch(w http.ResponseWriter, size int, failed []byte) {
	o, ok := w.(*observed)
	if !ok {
		return
	}
	o.sum.BatchSize = size
	if failed != nil {
		var e struct{ Errno int }
		if json.Unmarshal(failed, &e) == nil {
			o.sum.Errno = e.Errno
		}
	}
}

// underlying is the writer beneath an observed one (for
// http.MaxBytesReader, which closes the connection of a too large body
// through the server's own writer only).
func underlying(w http.ResponseWriter) http.ResponseWriter {
	if o, ok := w.(*observed); ok {
		return o.w
	}
	return w
}
