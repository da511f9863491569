package httpapi

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"kintogo/internal/auth"
	"kintogo/internal/config"
	"kintogo/internal/events"
	"kintogo/internal/model"
	"kintogo/internal/query"
	"kintogo/internal/resource"
	"kintogo/internal/storage"
)

// The host: what plugins (internal/plugins/...) use to extend the server
// while it is assembled — routes, capabilities, authentication policies,
// request interceptors, hooks on the engine — and the HTTP toolkit their
// handlers answer with. Nothing here knows any plugin.

// Settings are the server's settings, for plugins to read theirs once.
func (s *Server) Settings() *config.Settings { return s.settings }

// Logger is the server's logger.
func (s *Server) Logger() *slog.Logger { return s.log }

// Now is the server's clock.
func (s *Server) Now() time.Time { return s.opts.Now() }

// Capability advertises a capability in GET /v1/ (a CapabilityFunc is
// called for each request).
func (s *Server) Capability(name string, v any) { s.caps[name] = v }

// AuthPolicy provides an authentication policy, used when
// multiauth.policies names it.
func (s *Server) AuthPolicy(p auth.Policy) { s.authPolicies[p.Name()] = p }

// BodyLimit gives the requests for which fn returns ok another bound of
// their body (bytes, 0: none) and of the time to receive it than
// max_body_bytes and body_read_timeout_seconds (file uploads).
func (s *Server) BodyLimit(fn func(r *http.Request) (maxBytes int64, timeout time.Duration, ok bool)) {
	s.bodyLimits = append(s.bodyLimits, fn)
}

// Heartbeat adds a check to /__heartbeat__, reported under name: false
// (or no answer within heartbeat_timeout_seconds) makes it answer 503.
func (s *Server) Heartbeat(name string, check func(ctx context.Context) bool) {
	s.heartbeats = append(s.heartbeats, heartbeatCheck{name, check})
}

type heartbeatCheck struct {
	name  string
	check func(ctx context.Context) bool
}

// CapabilityFunc is a capability whose value depends on the request (a
// URL on the request's host).
type CapabilityFunc func(r *http.Request) any

// Intercept runs fn on every request before routing; fn returns true when
// it answered the request (the default bucket plugin serves its alias).
func (s *Server) Intercept(fn func(w http.ResponseWriter, r *http.Request) bool) {
	s.intercepts = append(s.intercepts, fn)
}

// Route serves a request through the route table (a request an
// interceptor rewrote).
func (s *Server) Route(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// HelloUser adds to the `user` of GET /v1/ for authenticated callers.
func (s *Server) HelloUser(fn func(c *Call, user map[string]any)) {
	s.helloUser = append(s.helloUser, fn)
}

// RootPermission declares a permission granted at the root of the tree by
// a principals setting (bucket:create by bucket_create_principals), as the
// permissions endpoint lists them.
func (s *Server) RootPermission(perm, setting string) {
	s.rootPerms = append(s.rootPerms, rootPerm{perm, setting})
}

type rootPerm struct{ perm, setting string }

// RootPermissions are the root permissions the caller holds, sorted by
// declaration.
func (s *Server) RootPermissions(c *Call) []string {
	var out []string
	for _, rp := range s.rootPerms {
		if s.authz.SettingGrants(rp.setting, c.Principals()) {
			out = append(out, rp.perm)
		}
	}
	return out
}

// NewCall returns the Call of a request that did not go through the route
// table (an interceptor's).
func (s *Server) NewCall(r *http.Request) *Call { return s.newCall(r) }

// RenderError answers err as Kinto's JSON error.
func (s *Server) RenderError(w http.ResponseWriter, r *http.Request, err error) {
	s.renderError(w, r, err)
}

// View runs fn in a read-only transaction, or in the request's unit of
// work.
func (s *Server) View(ctx context.Context, fn func(storage.Tx) error) error { return s.view(ctx, fn) }

// InUnit reports whether the request runs inside a unit of work (a
// batch): nothing computed from its reads may be shared, and nothing may
// wait while it holds the unit's transaction.
func InUnit(ctx context.Context) bool { return inUnit(ctx) }

// Version is the version of a scope of the stored data: it moves at every
// commit (local or another node's) that changes the scope, before the
// writer gets its answer. A view computed at a version is valid while the
// version stays.
func (s *Server) Version(scope events.Scope) uint64 { return s.hub.Version(scope) }

// Touch moves a scope's version and wakes its waiters: a plugin's own
// scopes (the changes monitor), after a change it derived from events.
func (s *Server) Touch(scope events.Scope) { s.hub.Touch(scope) }

// WriteJSON writes a JSON answer as Kinto does (no escaping of "/", "<",
// ">" and "&").
func (s *Server) WriteJSON(w http.ResponseWriter, status int, v any) { s.writeJSON(w, status, v) }

// WriteObject answers with one object, its ETag and its visible ACL.
func (s *Server) WriteObject(w http.ResponseWriter, status int, o *storage.Object, perms map[string][]string) {
	s.writeObject(w, status, o, perms)
}

// WrittenStatus is 201 for a creation, else 200.
func WrittenStatus(wr resource.Written) int { return writtenStatus(wr) }

// ListReply is a successful list answer.
type ListReply struct {
	Path       model.Path
	Collection *storage.Object // the records' collection, for its cache_expires
	Query      *query.Query
	Timestamp  int64
	Next       string // Next-Page URL, "" on the last page
	Counted    bool   // HEAD answers carry Total-Objects
	Total      int64
	Items      any // a slice, nil for an empty list
	// Cache sets the answer's cache headers instead of the objects' rules
	// (cacheHeaders).
	Cache func(w http.ResponseWriter)
}

// WriteList answers a list (a HEAD with its counts).
func (s *Server) WriteList(w http.ResponseWriter, r *http.Request, c *Call, l ListReply) error {
	return s.writeList(w, r, c, l)
}

// SetTimestamp sets ETag and Last-Modified from a millisecond timestamp.
func SetTimestamp(w http.ResponseWriter, ts int64) { setTimestamp(w, ts) }

// CacheExpires sets WebOb's cache_expires headers: max-age=N and Expires,
// or for 0 an explicit no-cache.
func (s *Server) CacheExpires(w http.ResponseWriter, ttl int64) { s.cacheExpires(w, ttl) }

// CacheHeaders sets the Cache-Control of a successful read of an object or
// list at p, with Kinto's rules (coll: a record's collection).
func (s *Server) CacheHeaders(w http.ResponseWriter, c *Call, p model.Path, coll *storage.Object) {
	s.cacheHeaders(w, c, p, coll)
}

// Origin is scheme://host of absolute URLs.
func (s *Server) Origin(r *http.Request) string { return s.origin(r) }

// NextPage is the absolute URL of the next page: the same query with
// _limit and _token set.
func (s *Server) NextPage(r *http.Request, params []query.Param, limit int, token string) string {
	return s.nextPage(r, params, limit, token)
}

// ParseQuery parses the request's list parameters (less the named ones).
func (s *Server) ParseQuery(c *Call, schema query.Schema, without ...string) (*query.Query, error) {
	return s.parseQuery(c, schema, without...)
}

// Request is the engine request of an HTTP request on p, with the errors
// of the request itself (reported once the caller is authorized).
func (s *Server) Request(r *http.Request, c *Call, p model.Path, invalid ...error) resource.Request {
	return s.request(r, c, p, invalid...)
}

// Media types of request bodies.
const (
	MediaJSON       = mediaJSON
	MediaMergePatch = mediaMergePatch
	MediaJSONPatch  = mediaJSONPatch
)

// WriteInput is a parsed write body: its envelope, or the error Kinto
// reports once the caller is authorized.
type WriteInput struct {
	Body  *resource.Body
	Err   error
	Media string
}

// ReadWrite reads and parses the body of a write of an object of kind k.
func ReadWrite(r *http.Request, k *model.Kind, accepted ...string) WriteInput {
	in := readWrite(r, k, accepted...)
	return WriteInput{Body: in.body, Err: in.err, Media: in.media}
}

// Preconditions reads If-Match and If-None-Match.
func Preconditions(r *http.Request) (resource.Preconditions, error) { return preconditions(r) }

// CheckAccept refuses an Accept header that excludes JSON (406).
func CheckAccept(r *http.Request) error { return checkAccept(r) }

// FirstErr returns the first non-nil error.
func FirstErr(errs ...error) error { return firstErr(errs...) }

// Project renders a listed object, restricted to the _fields asked for.
func Project(o query.Fielder, body map[string]any, fields []string) map[string]any {
	return project(o, body, fields)
}

// CacheKey names what a cacheable answer depends on besides the stored
// data.
type CacheKey = cacheKey

// RawKey keys an answer by the method, path, whole query string and
// precondition headers.
var RawKey CacheKey = rawKey

// Cacheable serves identical requests (per key) of a handler whose answer
// depends only on the stored data of the scope scopeOf names from one
// recorded answer per version of that scope, within
// response_cache_max_bytes.
func (s *Server) Cacheable(h Handler, key CacheKey, scopeOf func(r *http.Request) events.Scope) Handler {
	return s.cacheable(h, rawKey, key, scopeOf)
}

// AnswerCacheStats reports the answers cached and the bytes they hold.
func (s *Server) AnswerCacheStats() (entries int, bytes int64) {
	m := s.responses.memo
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.items), m.bytes
}

// Memo holds values computed from stored data, each valid for the version
// of the scope it was computed from, bounded in entries and bytes.
type Memo = memo

// NewMemo returns a memo of at most maxItems entries and maxBytes bytes
// (0: no byte bound).
func NewMemo(maxItems int, maxBytes int64) *Memo { return newMemo(maxItems, maxBytes) }

// Get returns the value kept for key when it was computed at version.
func (m *memo) Get(version uint64, key string) (any, bool) { return m.get(version, key) }

// Put keeps v (about size bytes) for key, computed at version.
func (m *memo) Put(version uint64, key string, v any, size int64) { m.put(version, key, v, size) }

// Pushable adds long-poll (`_wait`) and event streams to a handler; newer
// tells whether something newer than a cursor exists in the scope scopeOf
// names, which wakes the long-poll when it changes; authorize checks a
// long-poll's permission before it waits (nil: public).
func (s *Server) Pushable(h Handler, newer NewerFunc, stream Handler, authorize AuthorizeFunc, scopeOf func(r *http.Request) events.Scope) Handler {
	return s.pushable(h, newer, stream, authorize, scopeOf)
}

// RecordsScope is the scope of the records of the path's collection (bid,
// cid).
func RecordsScope(r *http.Request) events.Scope { return recordsScope(r) }

// NewerFunc reports whether something newer than since exists for the
// request.
type NewerFunc = newerFunc

// AuthorizeFunc checks that the caller may read what a long-poll waits for.
type AuthorizeFunc = authorizeFunc

// StreamRecords streams a collection's records (the path's bid and cid).
func (s *Server) StreamRecords(w http.ResponseWriter, r *http.Request, c *Call) error {
	return s.streamRecords(w, r, c)
}

// RecordsNewer reports whether the records of the path's collection
// changed after since.
func (s *Server) RecordsNewer(ctx context.Context, r *http.Request, c *Call, since int64) (bool, error) {
	return s.recordsNewer(ctx, r, c, since)
}

// EventStream is an open Server-Sent Events answer.
type EventStream = eventStream

// OpenStream starts an event stream, within push.max_streams; done must be
// called when it ends.
func (s *Server) OpenStream(w http.ResponseWriter) (*EventStream, func(), error) {
	return s.openStream(w)
}

// Serve runs the stream: emit writes what is newer than the stream's
// cursor, after every change of scope, until the client goes or the
// stream's life ends.
func (es *eventStream) Serve(ctx context.Context, scope events.Scope, emit func() error) error {
	return es.serve(ctx, scope, emit)
}

// ServeOn is Serve, waking up when the channel that next returns closes
// (the engine's History.Wait, say).
func (es *eventStream) ServeOn(ctx context.Context, next func() <-chan struct{}, emit func() error) error {
	return es.serveOn(ctx, next, emit)
}

// Send writes one event.
func (es *eventStream) Send(id int64, event string, data any) error { return es.send(id, event, data) }

// SendID writes one event with an id of any form ("": none).
func (es *eventStream) SendID(id, event string, data any) error { return es.sendID(id, event, data) }

// Flush sends what was written.
func (es *eventStream) Flush() error { return es.flush() }

// StreamCursor is where a stream starts: Last-Event-ID, else _since, else
// current.
func StreamCursor(r *http.Request, c *Call, current int64) int64 { return streamCursor(r, c, current) }

// RawInt reads a parameter as an integer, quotes stripped.
func RawInt(params []query.Param, name string) (int64, bool) { return rawInt(params, name) }

// Background registers work a serving node does until it stops (not the
// administrative commands, which build the same server): Run starts it.
func (s *Server) Background(fn func(ctx context.Context)) { s.background = append(s.background, fn) }

// Run does the background work of the plugins until ctx ends, and
// returns once all of it returned.
func (s *Server) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, fn := range s.background {
		wg.Go(func() { fn(ctx) })
	}
	wg.Wait()
}

// Get answers a GET of target (a path and query) in process, as it would
// answer an anonymous client: what a plugin builds from the public answers
// (bundles of changesets, say) is then exactly what clients are served.
func (s *Server) Get(ctx context.Context, target string) (int, []byte) {
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return http.StatusBadRequest, nil
	}
	r.Host = "localhost"
	if host := s.settings.String("http_host"); host != "" {
		r.Host = host
	}
	r.RemoteAddr = "127.0.0.1:0"
	w := newRecorder()
	s.serve(w, r) // not a client's: neither logged nor counted
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.status, w.body.Bytes()
}

// WriteOrigins makes every request carry its resource.Origin in its
// context, for the hooks of plugins that tell people about changes.
func (s *Server) WriteOrigins() { s.origins = true }

// clientAddress is the client's address as WebOb's client_addr gives it:
// the first address of X-Forwarded-For, else the connection's.
func clientAddress(r *http.Request) string {
	if fwd := r.Header.Get("X-Forwarded-For"); fwd != "" {
		first, _, _ := strings.Cut(fwd, ",")
		return strings.TrimSpace(first)
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
