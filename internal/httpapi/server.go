// Package httpapi is kintogo's HTTP layer: the router and its middleware
// (CORS, body limits, redirects), the one renderer of Kinto's JSON errors,
// body decoding, the answer cache, push (long-polls and event streams),
// batches, and thin handlers of the core endpoints that parse a request,
// call the resource engine and render its answer. Plugins extend it
// through the host (host.go). Handlers return errors; nothing below this
// package knows about HTTP statuses.
package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"kintogo/internal/auth"
	"kintogo/internal/config"
	"kintogo/internal/events"
	"kintogo/internal/kerr"
	"kintogo/internal/model"
	"kintogo/internal/permission"
	"kintogo/internal/query"
	"kintogo/internal/resource"
	"kintogo/internal/storage"
)

// HTTPAPIVersion is the Kinto HTTP API version kintogo implements.
const HTTPAPIVersion = "1.23"

// Options carry what a Server needs besides its settings and storage.
type Options struct {
	Version string       // kintogo's version, shown in GET /v1/ and /__version__
	Commit  string       // source commit, shown in /__version__
	Logger  *slog.Logger // nil: slog.Default()
	// Now returns the current time; nil: time.Now. Tests set it.
	Now func() time.Time
}

// Server serves Kinto's HTTP API over a storage backend.
type Server struct {
	settings   *config.Settings
	cfg        config.Config // the settings of the request path, read once
	iniInfo    any           // the INI file's description in GET /v1/
	store      storage.Storage
	shared     bool // other nodes write to store (storage.Shared)
	authz      *permission.Authorizer
	engine     *resource.Engine
	policies   []auth.Policy
	challenges []string
	opts       Options
	log        *slog.Logger
	mux        *http.ServeMux
	maxBody    int64
	// bodyTimeout bounds the time to receive a request body.
	bodyTimeout time.Duration
	// Settings every request consults, read once.
	readonly bool
	cors     corsPolicy
	backoff  []string // the Backoff header, nil when off
	eos      *endOfService

	// What plugins provisioned (host.go).
	caps         map[string]any
	authPolicies map[string]auth.Policy
	intercepts   []func(w http.ResponseWriter, r *http.Request) bool
	trees        []tree // HandleTree
	bodyLimits   []func(*http.Request) (int64, time.Duration, bool)
	heartbeats   []heartbeatCheck
	helloUser    []func(c *Call, user map[string]any)
	rootPerms    []rootPerm
	// observers watch every top-level request (observe.go); notified,
	// the delays of other nodes' commits.
	observers []func(*RequestSummary)
	notified  []func(delay time.Duration)
	// origins: requests carry their resource.Origin (WriteOrigins).
	origins bool
	// authObserver times the authentication policies, nil without
	// observers (ObserveAuthentication).
	authObserver auth.Observer
	// background is the plugins' work while the node serves (Run).
	background []func(ctx context.Context)

	// hub versions the scopes of the stored data that in-memory views
	// depend on, and wakes the requests waiting on them: every commit
	// touches the scopes it changed (changedNow).
	hub     events.Hub
	streams atomic.Int64 // open event streams
	waiting atomic.Int64 // long-polls waiting
	// replays are the places of the record streams reading a page
	// (replaying).
	replays chan struct{}
	// held counts the requests held open (held.go), within heldMax.
	held    atomic.Int64
	heldMax int64
	// draining is closed when the server shuts down (Drain): requests
	// held open end at once.
	draining  chan struct{}
	drainOnce sync.Once
	responses *responseCache
	// nestedBatches counts the sub-requests that reached the batch
	// endpoint although routesToBatch let them through (always 0 unless
	// the two disagree: the batch fuzz test checks it).
	nestedBatches atomic.Int64
}

// changed updates what depends on the stored data after commits of this
// node or of another (the engine's Feed): the scopes they touched move
// (their caches are dropped, their waiters wake).
func (s *Server) changed(b events.Batch) {
	all := false
	for _, ev := range b.Events {
		scope, everything := events.Of(ev)
		all = all || everything
		if !everything && scope.Bucket != "" {
			s.hub.Touch(scope)
		}
	}
	if all {
		s.hub.TouchAll()
	}
	if !b.Local && !b.Committed.IsZero() {
		delay := max(time.Since(b.Committed), 0)
		for _, fn := range s.notified {
			fn(delay)
		}
	}
}

// OnChange calls fn with the events of every commit, this node's (before
// the writer gets its answer) and the other nodes', once the server's
// scopes moved: fn must be quick. (The engine's Feed has the other ways
// to subscribe.)
func (s *Server) OnChange(fn func(evs []events.Event)) {
	s.engine.Feed().Subscribe(func(b events.Batch) { fn(b.Events) })
}

// Engine is the resource engine the server writes through; its hooks
// receive every committed change.
func (s *Server) Engine() *resource.Engine { return s.engine }

// New builds a server. It fails on settings it cannot honour.
func New(settings *config.Settings, store storage.Storage, opts Options) (*Server, error) {
	s := &Server{
		settings: settings,
		store:    store,
		shared:   storage.IsShared(store),
		authz:    permission.New(settings),
		opts:     opts,
		log:      logger(opts.Logger),
		mux:      http.NewServeMux(),
		cfg:      config.FromSettings(settings),
	}
	s.maxBody, s.readonly = s.cfg.HTTP.MaxBodyBytes, s.cfg.HTTP.Readonly
	s.cors = newCORSPolicy(s.cfg.HTTP.CORSOrigins)
	s.engine = resource.New(store, s.authz, resource.Config{
		ExplicitPermissions: s.cfg.Objects.ExplicitPermissions,
		SchemaValidation:    s.cfg.Objects.SchemaValidation,
		MaxObjectBytes:      s.cfg.HTTP.MaxBodyBytes,
		PaginateBy:          s.cfg.Objects.PaginateBy,
		MaxFetchSize:        s.cfg.Objects.MaxFetchSize,
		TokenValidity:       s.cfg.Objects.TokenValidity,
		Now:                 opts.Now,
	})
	s.bodyTimeout = s.cfg.HTTP.BodyReadTimeout
	s.iniInfo = s.configInfo()
	if b := s.cfg.HTTP.Backoff; b > 0 {
		s.backoff = []string{strconv.FormatInt(b, 10)}
	}
	eos, err := parseEndOfService(settings)
	if err != nil {
		return nil, err
	}
	s.eos = eos
	if s.opts.Now == nil {
		s.opts.Now = time.Now
	}
	s.caps = map[string]any{}
	s.authPolicies = map[string]auth.Policy{}
	s.AuthPolicy(auth.Basic{Secret: settings.String("userid_hmac_secret")})
	s.RootPermission("bucket:create", "bucket_create_principals")
	s.responses = newResponseCache(s.cfg.HTTP.ResponseCacheMaxBytes)
	s.replays = make(chan struct{}, streamReplays)
	s.heldMax = heldBudget(s.cfg.Push.MaxHeld)
	s.draining = make(chan struct{})
	s.engine.Feed().Subscribe(s.changed)
	if l := storage.LaggingOf(store); l != nil && l.Standby() {
		// A reader on a replica is as fresh as its replica.
		maxLag := time.Duration(settings.Int("replication_max_lag_seconds")) * time.Second
		s.Heartbeat("replication", func(ctx context.Context) bool {
			lag, err := l.Lag(ctx)
			return err == nil && (maxLag <= 0 || lag <= maxLag)
		})
	}
	// The list of buckets gets its timestamp floor once; a read-only node
	// (on a replica) writes nothing.
	if !settings.Bool("readonly") {
		if err := store.Update(context.Background(), func(tx storage.Tx) error {
			_, err := tx.InitTimestamp(context.Background(), storage.Scope{Resource: "bucket"})
			return err
		}); err != nil {
			return nil, fmt.Errorf("initialising storage: %w", err)
		}
	}
	switch format := settings.String("log_format"); format {
	case "json":
		// Kinto's request.summary line of every request.
		s.ObserveRequests(s.logRequest)
	case "text":
	default:
		return nil, fmt.Errorf("log_format: %q is neither text nor json", format)
	}
	s.routes()
	return s, nil
}

// Ready ends the assembly, once every plugin is provisioned: it resolves
// the authentication policies multiauth.policies names, in order. A
// policy no plugin provides is ignored with a warning (its requests stay
// anonymous).
func (s *Server) Ready() error {
	for _, name := range s.settings.List("multiauth.policies") {
		p, ok := s.authPolicies[name]
		if !ok {
			s.log.Warn("authentication policy not supported, ignored", "policy", name)
			continue
		}
		s.policies = append(s.policies, p)
		s.challenges = append(s.challenges, p.Challenge())
	}
	// Policies that share a challenge (Basic) send it once.
	s.challenges = dedupe(s.challenges)
	return nil
}

// Exposed headers, as Kinto lists them in Access-Control-Expose-Headers.
var (
	exposeBase   = []string{"Alert", "Backoff", "Content-Length", "Content-Type", "Retry-After"}
	exposeObject = append(append([]string{}, exposeBase...), "Cache-Control", "ETag", "Expires", "Last-Modified", "Pragma")
	exposeList   = append(append([]string{}, exposeObject...), "Next-Page")
	exposeCount  = append(append([]string{}, exposeList...), "Total-Objects", "Total-Records")
)

// Handler is what every endpoint implements: it writes a successful
// answer itself and returns errors for the renderer.
type Handler func(w http.ResponseWriter, r *http.Request, c *Call) error

// Endpoint is one URL with its methods.
type Endpoint struct {
	Methods map[string]Handler
	// Expose returns the Access-Control-Expose-Headers of a method
	// (BaseExpose, ObjectExpose, ListExpose).
	Expose func(method string) []string
	// Public endpoints never need the caller's identity: their requests
	// are not authenticated at all (a wrong password costs them nothing).
	// Others authenticate before their handler runs, so that no password
	// check happens inside a transaction.
	Public bool
	// Name is Kinto's name of the endpoint, as metrics and logs report it
	// (its Cornice service name: record-object, hello...; "": the pattern
	// without /v1).
	Name string
	// Values are the values a fixed pattern matches, as Kinto's route
	// would match them from its variables (bid, cid, id): the changeset
	// of the monitor is /buckets/{bid}/collections/{cid}/changeset in
	// Kinto.
	Values map[string]string
	// exposed holds the joined expose headers of each method.
	exposed map[string][]string
}

// BaseExpose exposes Kinto's headers of every answer.
func BaseExpose(string) []string { return exposeBase }

// ObjectExpose exposes the headers of an object's answers.
func ObjectExpose(method string) []string {
	if method == http.MethodGet || method == http.MethodHead {
		return exposeObject
	}
	return exposeBase
}

// ListExpose exposes the headers of a list's answers.
func ListExpose(method string) []string {
	switch method {
	case http.MethodGet:
		return exposeList
	case http.MethodHead:
		return exposeCount
	}
	return exposeBase
}

// Handle registers an endpoint. Patterns carry no method: the endpoint
// dispatches methods itself so that every unknown method gets Kinto's 405,
// even where a less specific pattern would accept it.
func (s *Server) Handle(pattern string, e Endpoint) {
	if _, ok := e.Methods[http.MethodGet]; ok {
		if _, ok := e.Methods[http.MethodHead]; !ok {
			e.Methods[http.MethodHead] = e.Methods[http.MethodGet]
		}
	}
	if e.Name == "" {
		e.Name = strings.TrimPrefix(pattern, "/v1")
	}
	e.exposed = map[string][]string{}
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"} {
		e.exposed[m] = []string{strings.Join(e.Expose(m), ", ")}
	}
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		c := s.newCall(r)
		routed(w, &e, r, c)
		if !s.cors.any {
			if origin := r.Header.Get("Origin"); origin != "" && !s.cors.allows(origin) {
				s.renderError(w, r, originNotAllowed(origin))
				return
			}
		}
		if r.Method == http.MethodOptions {
			s.preflight(w, r, e)
			return
		}
		if v, ok := e.exposed[r.Method]; ok {
			w.Header()["Access-Control-Expose-Headers"] = v
		}
		h, ok := e.Methods[r.Method]
		if !ok || (s.readonly && !isRead(r.Method)) {
			w.Header().Set("Allow", allowed(e))
			s.renderError(w, r, kerr.E(kerr.MethodNotAllowed, ""))
			return
		}
		if !e.Public {
			c.User()
		}
		if err := h(w, r, c); err != nil {
			s.renderError(w, r, err)
		}
	})
}

func isRead(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}

func allowed(e Endpoint) string {
	var ms []string
	for _, m := range []string{"DELETE", "GET", "HEAD", "PATCH", "POST", "PUT"} {
		if _, ok := e.Methods[m]; ok {
			ms = append(ms, m)
		}
	}
	return strings.Join(ms, ", ")
}

// routes is the route table: every endpoint of the API in one place.
func (s *Server) routes() {
	s.Handle("/v1/{$}", Endpoint{Name: "hello", Methods: map[string]Handler{"GET": s.hello}, Expose: BaseExpose})
	s.Handle("/v1/__heartbeat__", Endpoint{Name: "heartbeat", Methods: map[string]Handler{"GET": s.heartbeat}, Expose: BaseExpose, Public: true})
	s.Handle("/v1/__lbheartbeat__", Endpoint{Name: "lbheartbeat", Methods: map[string]Handler{"GET": s.lbheartbeat}, Expose: BaseExpose, Public: true})
	s.Handle("/v1/__version__", Endpoint{Name: "version", Methods: map[string]Handler{"GET": s.version}, Expose: BaseExpose, Public: true})
	s.Handle("/v1/contribute.json", Endpoint{Name: "contribute.json", Methods: map[string]Handler{"GET": s.contribute}, Expose: BaseExpose, Public: true})
	// Each sub-request of a batch authenticates itself.
	s.Handle(batchPath, Endpoint{Name: "batch", Methods: map[string]Handler{"POST": s.batch}, Expose: BaseExpose, Public: true})
	for _, k := range kinds {
		list := s.listObjects(k)
		if k.kind == model.Record {
			list = s.pushable(s.cacheable(list, s.recordsListKey, nil, recordsScope), s.recordsNewer, s.streamRecords, s.recordsAccess, recordsScope)
		}
		s.Handle(k.pluralPattern, Endpoint{Name: k.kind.Name + "-plural", Expose: ListExpose, Methods: map[string]Handler{
			"GET": list, "HEAD": s.listObjects(k), "POST": s.createObject(k), "DELETE": s.deleteObjects(k),
		}})
		s.Handle(k.objectPattern, Endpoint{Name: k.kind.Name + "-object", Expose: ObjectExpose, Methods: map[string]Handler{
			"GET": s.getObject(k), "PUT": s.putObject(k), "PATCH": s.patchObject(k), "DELETE": s.deleteObject(k),
		}})
	}
	s.mux.HandleFunc("/", s.unmatched)
}

// ServeHTTP implements http.Handler: common headers, then the route table;
// the observers get the summary of a top-level request once answered.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.observers != nil && !inUnit(r.Context()) {
		s.serveObserved(w, r)
		return
	}
	s.serve(w, r)
}

// serve answers a request (a top-level one, or a batch's sub-request).
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h["Content-Security-Policy"] = cspValue
	h["X-Content-Type-Options"] = nosniffValue
	if origin := r.Header.Get("Origin"); origin != "" && s.cors.allows(origin) {
		s.cors.allowOrigin(h, origin)
	}
	if s.backoff != nil {
		h["Backoff"] = s.backoff
	}
	if s.eos != nil && !inUnit(r.Context()) && s.eos.check(s, w, r, s.opts.Now()) {
		return
	}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.ErrorContext(r.Context(), "panic serving request", "method", r.Method, "path", r.URL.Path, "panic", p)
			s.renderError(w, r, fmt.Errorf("panic: %v", p))
		}
	}()
	if r.Body != nil && r.Body != http.NoBody {
		maxBody, timeout := s.maxBody, s.bodyTimeout
		for _, fn := range s.bodyLimits {
			if n, t, ok := fn(r); ok {
				maxBody, timeout = n, t
				break
			}
		}
		if maxBody > 0 {
			r.Body = http.MaxBytesReader(underlying(w), r.Body, maxBody)
		}
		if timeout > 0 {
			withBodyDeadline(w, r, timeout)
		}
	}
	if s.origins && !inUnit(r.Context()) {
		r = r.WithContext(resource.WithOrigin(r.Context(), resource.Origin{
			RootURL: s.origin(r) + "/v1/", ClientAddress: clientAddress(r), UserAgent: r.UserAgent()}))
	}
	for _, t := range s.trees {
		if strings.HasPrefix(r.URL.Path, t.prefix) {
			name := t.names.Files
			if r.URL.Path == t.prefix {
				name = t.names.Home
			}
			SetEndpoint(w, name, nil)
			t.h.ServeHTTP(w, r)
			return
		}
		if r.URL.Path == t.prefix[:len(t.prefix)-1] {
			SetEndpoint(w, t.names.Redirect, nil)
			s.redirect(w, r, t.prefix, -1)
			return
		}
	}
	// No route ends with a slash but the root: answer these redirects
	// here, before ServeMux's own (relative, uncached) ones.
	if p := r.URL.Path; p == "/v1" || (len(p) > len("/v1/") && strings.HasSuffix(p, "/")) {
		s.unmatched(w, r)
		return
	}
	for _, intercept := range s.intercepts {
		if intercept(w, r) {
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

// Headers of every answer, shared (never modified).
var (
	cspValue     = []string{"default-src 'none'; frame-ancestors 'none'; base-uri 'none';"}
	nosniffValue = []string{"nosniff"}
)

var versionPrefix = regexp.MustCompile(`^/v[0-9]+(/|$)`)

// unmatched answers what no route matched: version redirects, trailing
// slash redirects, unknown versions and Kinto's JSON 404.
func (s *Server) unmatched(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	w.Header().Set("Access-Control-Expose-Headers", strings.Join(exposeBase, ", "))
	if strings.ContainsAny(path, "\r\n\x00") {
		s.renderError(w, r, kerr.E(kerr.MissingResource, ""))
		return
	}
	switch {
	case path == "/v1":
		s.redirect(w, r, "/v1/", -1)
		return
	case !versionPrefix.MatchString(path):
		if s.cfg.HTTP.VersionPrefixRedirect {
			SetEndpoint(w, "redirect_to_version", nil)
			if r.Method == http.MethodOptions {
				w.WriteHeader(http.StatusOK)
				return
			}
			s.redirect(w, r, "/v1"+path, s.cfg.HTTP.VersionPrefixRedirectTTL)
			return
		}
	case !strings.HasPrefix(path, "/v1/"):
		s.renderError(w, r, kerr.E(kerr.VersionNotAvailable, ""))
		return
	case len(path) > len("/v1/") && strings.HasSuffix(path, "/") && s.cfg.HTTP.TrailingSlashRedirect:
		s.redirect(w, r, strings.TrimRight(path, "/"), s.cfg.HTTP.TrailingSlashRedirectTTL)
		return
	}
	s.renderError(w, r, kerr.E(kerr.MissingResource, ""))
}

// redirect answers 307 to path (plus the original query), absolute, with
// cache headers when ttl >= 0.
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, path string, ttl int64) {
	target := s.origin(r) + path
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	if ttl >= 0 {
		s.cacheExpires(w, ttl)
	}
	w.Header().Set("Location", target)
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	w.WriteHeader(http.StatusTemporaryRedirect)
	fmt.Fprintf(w, "307 Temporary Redirect\n\nThe resource has been moved to %s; you should be redirected automatically.\n", target)
}

// cacheExpires sets WebOb's cache_expires headers: max-age=N and Expires,
// or for 0 an explicit no-cache.
func (s *Server) cacheExpires(w http.ResponseWriter, ttl int64) {
	now := s.opts.Now().UTC()
	h := w.Header()
	if ttl > 0 {
		h.Set("Cache-Control", "max-age="+strconv.FormatInt(ttl, 10))
		h.Set("Expires", now.Add(time.Duration(ttl)*time.Second).Format(http.TimeFormat))
		h.Del("Pragma")
		return
	}
	h.Set("Cache-Control", "max-age=0, must-revalidate, no-cache, no-store")
	h.Set("Expires", now.Format(http.TimeFormat))
	h.Set("Pragma", "no-cache")
}

// origin is scheme://host of absolute URLs: the http_scheme and http_host
// settings, or the request's.
func (s *Server) origin(r *http.Request) string {
	scheme := s.cfg.HTTP.Scheme
	if scheme == "" {
		scheme = "http"
		if r.TLS != nil {
			scheme = "https"
		}
	}
	host := s.cfg.HTTP.Host
	if host == "" {
		host = r.Host
	}
	return scheme + "://" + host
}

// preflight answers a CORS pre-flight request.
func (s *Server) preflight(w http.ResponseWriter, r *http.Request, e Endpoint) {
	origin := r.Header.Get("Origin")
	method := r.Header.Get("Access-Control-Request-Method")
	if origin == "" || method == "" {
		name := "Origin"
		if origin != "" {
			name = "Access-Control-Request-Method"
		}
		s.renderError(w, r, kerr.InvalidParam("header", kerr.Name(name), name+" header is required"))
		return
	}
	if _, ok := e.Methods[method]; !ok {
		s.renderError(w, r, kerr.InvalidParam("header", kerr.Name("Access-Control-Request-Method"), "Method not allowed"))
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", allowed(e))
	headers := append(append([]string{}, exposeCount...), "Authorization", "If-Match", "If-None-Match")
	if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
		headers = append(headers, req)
	}
	h.Set("Access-Control-Allow-Headers", strings.Join(headers, ", "))
	h.Set("Access-Control-Max-Age", strconv.FormatInt(s.cfg.HTTP.CORSMaxAge, 10))
	w.WriteHeader(http.StatusOK)
}

// writeJSON writes a JSON answer. Kinto does not escape "/" nor, unlike
// encoding/json's default, "<", ">" and "&".
func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		s.log.Error("encoding response", "err", err)
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"code":500,"errno":999,"error":"Internal Server Error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// call is what a handler knows about its request beyond *http.Request.
type Call struct {
	// r is authenticated with policies at the first need of the caller's
	// identity, so that endpoints that need none (the changes monitor,
	// heartbeats) never pay for a password check.
	r        *http.Request
	policies []auth.Policy
	observe  auth.Observer    // nil without observers
	who      *resource.Caller // nil until identified
	// Params are the query string's parameters, in order; ParamsErr is
	// the 400 of a query string that could not be read.
	Params    []query.Param
	ParamsErr error
}

func (s *Server) newCall(r *http.Request) *Call {
	c := &Call{r: r, policies: s.policies, observe: s.authObserver}
	c.Params, c.ParamsErr = query.ParseRaw(r.URL.RawQuery)
	return c
}

// caller is who makes the request, identified at the first call.
func (c *Call) Caller() *resource.Caller {
	if c.who == nil {
		c.who = resource.NewCaller(auth.Identify(c.policies, c.r, c.observe))
	}
	return c.who
}

// Request is the call's request.
func (c *Call) Request() *http.Request { return c.r }

// user is the caller's user id, "" when anonymous.
func (c *Call) User() string { return c.Caller().UserID }

// principals are the caller's principals (with its groups once loaded).
func (c *Call) Principals() []string { return c.Caller().Principals() }

// loadPrincipals adds the groups the user belongs to.
func (c *Call) LoadPrincipals(ctx context.Context, tx storage.Tx) error {
	return c.Caller().Load(ctx, tx)
}

// denied is the error for a refused permission: 401 to anonymous callers,
// 403 to authenticated ones.
func (c *Call) Denied() error { return c.Caller().Denied() }

// setTimestamp sets ETag and Last-Modified from a millisecond timestamp.
func setTimestamp(w http.ResponseWriter, ts int64) {
	w.Header().Set("ETag", `"`+strconv.FormatInt(ts, 10)+`"`)
	w.Header().Set("Last-Modified", time.UnixMilli(ts).UTC().Format(http.TimeFormat))
}
