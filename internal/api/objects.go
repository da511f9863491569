package api

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"kintogo/internal/events"
	"kintogo/internal/kerr"
	"kintogo/internal/model"
	"kintogo/internal/permission"
	"kintogo/internal/pyfmt"
	"kintogo/internal/query"
	"kintogo/internal/schema"
	"kintogo/internal/storage"
)

// kindRoute ties a kind to its URL patterns.
type kindRoute struct {
	kind                         *model.Kind
	pluralPattern, objectPattern string
}

var kinds = []kindRoute{
	{model.Bucket, "/v1/buckets", "/v1/buckets/{id}"},
	{model.Collection, "/v1/buckets/{bid}/collections", "/v1/buckets/{bid}/collections/{id}"},
	{model.Group, "/v1/buckets/{bid}/groups", "/v1/buckets/{bid}/groups/{id}"},
	{model.Record, "/v1/buckets/{bid}/collections/{cid}/records", "/v1/buckets/{bid}/collections/{cid}/records/{id}"},
}

func (k kindRoute) path(r *http.Request) model.Path {
	return model.Path{Kind: k.kind, BucketID: r.PathValue("bid"), CollectionID: r.PathValue("cid"), ID: r.PathValue("id")}
}

// objectBody is a single-object answer.
type objectBody struct {
	Data        map[string]any      `json:"data"`
	Permissions map[string][]string `json:"permissions"`
}

var invalidID = kerr.InvalidParam("path", nil, "Invalid object id")

func (s *Server) nowMS() int64 { return s.opts.Now().UnixMilli() }

// checkParent answers 404 (errno 111) when the collection of a records
// endpoint does not exist. Other kinds have no such check (Kinto lets
// callers allowed by settings work under a missing bucket).
func checkParent(ctx context.Context, tx storage.Tx, p model.Path) (*storage.Object, error) {
	if p.Kind != model.Record {
		return nil, nil
	}
	parent := p.ParentPath()
	coll, err := tx.Get(ctx, parent.Scope(), parent.ID)
	if kerr.Is(err, kerr.NotFound) {
		return nil, kerr.ParentNotFound("collection", p.CollectionID)
	}
	return coll, err
}

// visiblePermissions returns an object's ACL when the caller is one of its
// writers, and {} otherwise (inherited rights do not count).
func visiblePermissions(ctx context.Context, tx storage.Tx, uri string, principals []string) (map[string][]string, error) {
	perms, err := tx.Permissions(ctx, uri)
	if err != nil {
		return nil, err
	}
	for _, w := range perms["write"] {
		for _, p := range principals {
			if w == p {
				return perms, nil
			}
		}
	}
	return map[string][]string{}, nil
}

// existingDetails is the details of a 412 on an existing object.
func existingDetails(o *storage.Object) map[string]any {
	return map[string]any{"existing": o.Body()}
}

// preconditionFailed is the 412 of a write or read compared with existing
// (nil when missing) whose timestamp, or else ts, is the answer's ETag.
func preconditionFailed(existing *storage.Object, ts int64) error {
	e := &kerr.Error{Kind: kerr.PreconditionFailed, Timestamp: ts}
	if existing != nil {
		e.Details = existingDetails(existing)
		e.Timestamp = existing.LastModified
	}
	return e
}

// checkObjectPreconditions applies If-Match / If-None-Match to a write on
// an object (nil when missing). A failure carries the timestamp of the
// object it was compared with, or when it is missing its list's.
func checkObjectPreconditions(ctx context.Context, tx storage.Tx, p model.Path, ifMatch, ifNoneMatch precondition, existing *storage.Object) error {
	if !objectPreconditionsFail(ifMatch, ifNoneMatch, existing) {
		return nil
	}
	if existing != nil {
		return preconditionFailed(existing, 0)
	}
	ts, err := tx.Timestamp(ctx, p.Scope())
	if err != nil {
		return err
	}
	return preconditionFailed(nil, ts)
}

func objectPreconditionsFail(ifMatch, ifNoneMatch precondition, existing *storage.Object) bool {
	if existing != nil && ifNoneMatch.any {
		return true
	}
	if ifMatch.set {
		return existing == nil || (!ifMatch.any && ifMatch.ts != existing.LastModified)
	}
	return false
}

// effectiveLimit is the page size: _limit capped by paginate_by, then by
// storage_max_fetch_size, which is also the size when nothing is asked.
func (s *Server) effectiveLimit(asked int64) int {
	limit := asked
	if pb := s.settings.Int("paginate_by"); pb > 0 && (limit == 0 || limit > pb) {
		limit = pb
	}
	maxFetch := s.settings.Int("storage_max_fetch_size")
	if maxFetch <= 0 {
		maxFetch = 10000
	}
	if limit == 0 || limit > maxFetch {
		limit = maxFetch
	}
	return int(limit)
}

// nextPage is the absolute URL of the next page: the same query with
// _limit and _token set.
func (s *Server) nextPage(r *http.Request, params []query.Param, limit int, token string) string {
	params = query.Set(params, "_limit", strconv.Itoa(limit))
	params = query.Set(params, "_token", token)
	return s.origin(r) + r.URL.Path + "?" + query.Encode(params)
}

// project renders a listed object, restricted to the _fields asked for.
func project(o query.Fielder, body map[string]any, fields []string) map[string]any {
	if fields == nil {
		return body
	}
	out := query.Project(body, fields)
	out[query.IDField], _ = o.Field(query.IDField)
	out[query.ModifiedField], _ = o.Field(query.ModifiedField)
	return out
}

// cacheHeaders sets the Cache-Control of a successful GET of an object or
// list: authenticated callers always get no-cache; anonymous ones get the
// TTL of the `*_cache_expires_seconds` settings and, for records, of the
// collection's cache_expires (kinto-protocol.md §4.6).
func (s *Server) cacheHeaders(w http.ResponseWriter, c *call, p model.Path, coll *storage.Object) {
	w.Header().Set("Cache-Control", "no-cache, no-store")
	if c.user() != "" {
		return
	}
	ttl, ok := s.settings.IntOK(p.Kind.Name + "_cache_expires_seconds")
	if ok && ttl == 0 {
		ok = false
	}
	if p.Kind == model.Record {
		found := false
		for _, name := range []string{
			p.BucketID + "." + p.CollectionID + ".record_cache_expires_seconds",
			p.BucketID + ".record_cache_expires_seconds",
			"record_cache_expires_seconds",
			p.BucketID + "_" + p.CollectionID + "_record_cache_expires_seconds",
			p.BucketID + "_record_cache_expires_seconds",
		} {
			if v, set := s.settings.IntOK(name); set {
				ttl, found = v, true
				break
			}
		}
		if coll != nil {
			if n, isNum := coll.Data["cache_expires"].(json.Number); isNum {
				if ce, err := n.Int64(); err == nil {
					if !found || ce > ttl {
						ttl = ce
					}
					found = true
				}
			}
		}
		if found {
			s.cacheExpires(w, ttl)
			return
		}
	}
	if ok {
		s.cacheExpires(w, ttl)
	}
}

// listObjects is GET/HEAD on a plural endpoint.
func (s *Server) listObjects(k kindRoute) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		p := k.path(r)
		ctx := r.Context()
		ifMatch, ifNoneMatch, precondErr := preconditions(r)
		var (
			ts, total int64
			items     []map[string]any
			next      string
			coll      *storage.Object
			q         *query.Query
		)
		err := s.view(ctx, func(tx storage.Tx) error {
			scope, parent, err := s.listAccess(ctx, tx, c, p)
			if err != nil {
				return err
			}
			coll = parent
			if err := firstErr(checkAccept(r), precondErr, c.paramsErr); err != nil {
				return err
			}
			if q, err = query.Parse(c.params, query.Schema{}, s.nowMS()); err != nil {
				return err
			}
			if ts, err = tx.Timestamp(ctx, p.Scope()); err != nil {
				return err
			}
			if ts == 0 {
				ts = s.nowMS()
			}
			if err := listPreconditions(w, ifMatch, ifNoneMatch, ts); err != nil {
				return err
			}
			limit := s.effectiveLimit(q.Limit)
			objs, err := tx.List(ctx, p.Scope(), storage.ListOptions{
				Filters: q.Filters, Sort: q.Sort, After: q.After, Limit: limit + 1,
				IncludeDeleted: q.Tombstones, IDs: scopeIDs(scope.All, scope.IDs),
			})
			if err != nil {
				return err
			}
			if len(objs) > limit {
				objs = objs[:limit]
				if r.Method != http.MethodHead {
					next = s.nextPage(r, c.params, limit, query.Token(objs[len(objs)-1], q.Sort, q.Offset+int64(len(objs))))
				}
			}
			if r.Method == http.MethodHead {
				n, err := tx.Count(ctx, p.Scope(), q.Filters, scopeIDs(scope.All, scope.IDs))
				total = int64(n)
				return err
			}
			items = make([]map[string]any, len(objs))
			for i, o := range objs {
				items[i] = project(o, o.Body(), q.Fields)
			}
			return nil
		})
		if err != nil {
			return err
		}
		return s.writeList(w, r, c, listReply{path: p, coll: coll, query: q, ts: ts, next: next, counted: true, total: total, items: items})
	}
}

// listAccess is the check of every read of a list: the caller's right to
// it (the scope of what it may see), then, for records, their collection.
func (s *Server) listAccess(ctx context.Context, tx storage.Tx, c *call, p model.Path) (permission.ListScope, *storage.Object, error) {
	if err := c.loadPrincipals(ctx, tx); err != nil {
		return permission.ListScope{}, nil, err
	}
	scope, ok, err := s.authz.ForList(ctx, tx, p, "read", c.principals())
	if err != nil {
		return scope, nil, err
	}
	if !ok {
		return scope, nil, c.denied()
	}
	coll, err := checkParent(ctx, tx, p)
	return scope, coll, err
}

func scopeIDs(all bool, ids []string) []string {
	if all {
		return nil
	}
	return ids
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// notModified is returned by listPreconditions when a 304 was written.
type notModified struct{}

func (notModified) Error() string { return "not modified" }

// listPreconditions applies If-None-Match / If-Match to a plural GET: the
// list always "exists", so If-None-Match: * always fails.
func listPreconditions(w http.ResponseWriter, ifMatch, ifNoneMatch precondition, ts int64) error {
	setTimestamp(w, ts)
	if ifNoneMatch.set && !ifNoneMatch.any && ifNoneMatch.ts == ts {
		return errNotModified
	}
	if ifNoneMatch.any || (ifMatch.set && !ifMatch.any && ifMatch.ts != ts) {
		return preconditionFailed(nil, ts)
	}
	return nil
}

var errNotModified error = notModified{}

// listReply is a successful list answer.
type listReply struct {
	path    model.Path
	coll    *storage.Object // the records' collection, for its cache_expires
	query   *query.Query
	ts      int64
	next    string // Next-Page URL, "" on the last page
	counted bool   // HEAD answers carry Total-Objects
	monitor bool   // the changes monitor: the plugin's cache settings apply
	total   int64
	items   any // a slice, nil for an empty list
}

func (s *Server) writeList(w http.ResponseWriter, r *http.Request, c *call, l listReply) error {
	setTimestamp(w, l.ts)
	if l.monitor {
		w.Header().Set("Cache-Control", "no-cache, no-store")
		s.changesetCache(w, "monitor", "changes", c.params)
	} else {
		s.cacheHeaders(w, c, l.path, l.coll)
	}
	if l.next != "" {
		w.Header().Set("Next-Page", l.next)
	}
	if l.query != nil && l.query.DeprecatedTo {
		w.Header().Set("Alert", `{"code": "soft-eol", "message": "_to is now deprecated, you should use _before instead", "url": "https://kinto.readthedocs.io/en/2.4.0/api/1.x/filtering.html#polling-for-changes"}`)
	}
	if r.Method == http.MethodHead {
		if l.counted {
			n := strconv.FormatInt(l.total, 10)
			w.Header().Set("Total-Objects", n)
			w.Header().Set("Total-Records", n)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	items := l.items
	if items == nil {
		items = []any{}
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"data": items})
	return nil
}

// getObject is GET/HEAD on an object.
func (s *Server) getObject(k kindRoute) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		p := k.path(r)
		ctx := r.Context()
		ifMatch, ifNoneMatch, precondErr := preconditions(r)
		var obj *storage.Object
		var perms map[string][]string
		var coll *storage.Object
		var q *query.Query
		err := s.view(ctx, func(tx storage.Tx) error {
			if err := c.loadPrincipals(ctx, tx); err != nil {
				return err
			}
			if err := s.authorizeObject(ctx, tx, c, p, "read"); err != nil {
				return err
			}
			var err error
			if coll, err = checkParent(ctx, tx, p); err != nil {
				return err
			}
			if err := firstErr(checkAccept(r), precondErr, c.paramsErr); err != nil {
				return err
			}
			if q, err = query.Parse(query.Without(c.params, "_since", "_before", "_to", "_limit", "_sort", "_token"), query.Schema{}, s.nowMS()); err != nil {
				return err
			}
			if obj, err = tx.Get(ctx, p.Scope(), p.ID); err != nil {
				return err
			}
			setTimestamp(w, obj.LastModified)
			if ifNoneMatch.set && !ifNoneMatch.any && ifNoneMatch.ts == obj.LastModified {
				return errNotModified
			}
			if ifNoneMatch.any || (ifMatch.set && !ifMatch.any && ifMatch.ts != obj.LastModified) {
				return preconditionFailed(obj, 0)
			}
			perms, err = visiblePermissions(ctx, tx, p.URI(), c.principals())
			return err
		})
		if err != nil {
			return err
		}
		s.cacheHeaders(w, c, p, coll)
		s.writeJSON(w, http.StatusOK, objectBody{Data: project(obj, obj.Body(), q.Fields), Permissions: perms})
		return nil
	}
}

// authorizeObject checks perm on an object, then its id (Kinto validates
// ids after authorization). A caller refused on a missing object gets a 404
// instead when it may read the parent.
func (s *Server) authorizeObject(ctx context.Context, tx storage.Tx, c *call, p model.Path, perm string) error {
	ok, err := s.authz.Allowed(ctx, tx, p, perm, c.principals())
	if err != nil {
		return err
	}
	if ok {
		if !p.Kind.ValidID(p.ID) {
			return invalidID
		}
		return nil
	}
	if _, err := tx.Get(ctx, p.Scope(), p.ID); kerr.Is(err, kerr.NotFound) {
		if can, err := s.authz.CanReadParent(ctx, tx, p, c.principals()); err != nil || can {
			return err
		}
	}
	return c.denied()
}

// writeInput is a parsed write request body.
type writeInput struct {
	env   *envelope
	err   error // reported after authorization, as Kinto does
	media string
	ops   []any // JSON-Patch operations
}

func readWrite(r *http.Request, k *model.Kind, accepted ...string) writeInput {
	in := writeInput{}
	in.media, in.err = mediaType(r, accepted...)
	if in.err != nil {
		return in
	}
	raw, err := readBody(r)
	if err != nil {
		in.err = err
		return in
	}
	v, err := decodeJSON(raw)
	if err != nil {
		in.err = err
		return in
	}
	if in.media == mediaJSONPatch {
		in.ops, in.err = validatePatchOps(v)
		return in
	}
	in.env, in.err = parseEnvelope(v, k)
	return in
}

// suppliedTimestamp extracts a client-supplied last_modified from data (an
// integer, else ignored) and removes id and last_modified from it. A
// timestamp beyond maxSuppliedTimestamp is refused.
func (s *Server) suppliedTimestamp(data map[string]any) (int64, error) {
	var ts int64
	raw, present := data[query.ModifiedField]
	if n, ok := raw.(json.Number); ok {
		if v, err := n.Int64(); err == nil && v > 0 {
			ts = v
		} else if err != nil && query.Compare(n, int64(math.MaxInt64)) > 0 {
			ts = math.MaxInt64 // beyond int64: refused below
		}
	}
	delete(data, query.ModifiedField)
	delete(data, query.IDField)
	if present && ts > s.maxSuppliedTimestamp() {
		return 0, kerr.InvalidParam("body", kerr.Name("data."+query.ModifiedField), fmt.Sprintf("%s is too far in the future", pyfmt.Str(raw)))
	}
	return ts, nil
}

// maxSuppliedTimestamp bounds the timestamps clients may give (to keep a
// replica's, Kinto's last_modified in a body or ?last_modified= of a
// DELETE): a day after the clock, as _since and _before are. Beyond it,
// the scope's timestamp would leave the range clients may poll with, and
// near the int64 limit it could not increase any more.
func (s *Server) maxSuppliedTimestamp() int64 {
	return s.nowMS() + maxFutureDrift.Milliseconds()
}

// maxFutureDrift is how far ahead of the server's clock a timestamp given
// by a client may be.
const maxFutureDrift = 24 * time.Hour

// checkSize refuses an object whose stored form would be larger than a
// request body may be (max_body_bytes): whatever the write (PATCH merging
// into what exists, JSON-Patch copies, the defaults of a batch), nothing
// stored outgrows what one request could send.
func (s *Server) checkSize(data map[string]any) error {
	if s.maxBody <= 0 {
		return nil
	}
	var n byteCounter
	enc := json.NewEncoder(&n)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(data); err != nil {
		return kerr.Wrap(kerr.Invalid, "Object cannot be stored.", err)
	}
	if int64(n) > s.maxBody {
		return &kerr.Error{Kind: kerr.TooLarge, Message: fmt.Sprintf("Resulting object is larger than %d bytes.", s.maxBody)}
	}
	return nil
}

// byteCounter is an io.Writer that only counts.
type byteCounter int64

func (b *byteCounter) Write(p []byte) (int, error) {
	*b += byteCounter(len(p))
	return len(p), nil
}

// storeObject validates data (the kind's rules, its size, then the JSON
// schemas that govern it) and stores it as the object at p, which replaces
// existing (nil for a new object). A client-supplied last_modified is kept
// on creation, and on update only when newer than the existing one.
func (s *Server) storeObject(ctx context.Context, tx storage.Tx, p model.Path, existing *storage.Object, data map[string]any) (*storage.Object, error) {
	supplied, err := s.suppliedTimestamp(data)
	if err != nil {
		return nil, err
	}
	if existing != nil && supplied <= existing.LastModified {
		supplied = 0
	}
	if err := validateData(p.Kind, data); err != nil {
		return nil, err
	}
	if err := s.checkSize(data); err != nil {
		return nil, err
	}
	if err := s.validateAgainstSchemas(ctx, tx, p, withID(data, p.ID)); err != nil {
		return nil, err
	}
	delete(data, query.IDField)
	return tx.Put(ctx, p.Scope(), &storage.Object{ID: p.ID, Data: data, LastModified: supplied})
}

// withID puts the object's id in its data, for validation against schemas
// that declare it; callers remove it again before storing.
func withID(data map[string]any, id string) map[string]any {
	data[query.IDField] = id
	return data
}

// copyData returns a shallow copy of an object's data.
func copyData(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// schemaFields are the fields of each kind that hold a JSON schema, checked
// against the meta-schema on every write whatever the validation setting.
var schemaFields = map[*model.Kind][]string{
	model.Bucket:     {"collection:schema", "group:schema", "record:schema"},
	model.Collection: {"schema"},
}

// validateData applies the per-kind rules on data (kinto-protocol.md §3.4).
func validateData(k *model.Kind, data map[string]any) error {
	for _, field := range schemaFields[k] {
		if v, ok := data[field]; ok {
			if msg := schema.Check(v); msg != "" {
				return kerr.InvalidParam("body", kerr.Name("data."+field), msg)
			}
		}
	}
	switch k {
	case model.Collection:
		if v, ok := data["cache_expires"]; ok {
			n, isNum := v.(json.Number)
			if _, err := strconv.ParseInt(string(n), 10, 64); !isNum || err != nil {
				return kerr.InvalidParam("body", kerr.Name("data.cache_expires"), fmt.Sprintf("%q is not a number", pyfmt.Str(v)))
			}
		}
	case model.Group:
		raw, ok := data["members"]
		if !ok {
			data["members"] = []any{}
			return nil
		}
		list, ok := raw.([]any)
		if !ok {
			return kerr.InvalidParam("body", kerr.Name("data.members"), fmt.Sprintf("%q is not iterable", pyfmt.Str(raw)))
		}
		for i, m := range list {
			member, ok := m.(string)
			if !ok {
				return kerr.InvalidParam("body", kerr.Name(fmt.Sprintf("data.members.%d", i)), fmt.Sprintf("%s is not a string: {'': ''}", pyfmt.Str(m)))
			}
			if member == "system.Everyone" || strings.HasPrefix(member, "/buckets/") {
				return kerr.InvalidParam("body", kerr.Name("data.members"), fmt.Sprintf("'%s' is not a valid user ID.", member))
			}
		}
	}
	return nil
}

func members(o *storage.Object) []string {
	if o == nil || o.Deleted {
		return nil
	}
	list, _ := o.Data["members"].([]any)
	out := make([]string, 0, len(list))
	for _, m := range list {
		if s, ok := m.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// afterWrite keeps what depends on an object current: the timestamps of a
// new parent's child scopes (so that a new collection's records list has a
// stable ETag and shows in the changes monitor at once), and the group
// principals of a group's members.
func afterWrite(ctx context.Context, tx storage.Tx, p model.Path, old, obj *storage.Object) error {
	if old == nil {
		for _, child := range p.Kind.Children() {
			if _, err := tx.InitTimestamp(ctx, p.ChildScope(child)); err != nil {
				return err
			}
		}
	}
	if p.Kind != model.Group {
		return nil
	}
	before, after := members(old), members(obj)
	in := func(list []string, m string) bool {
		for _, x := range list {
			if x == m {
				return true
			}
		}
		return false
	}
	for _, m := range before {
		if !in(after, m) {
			if err := tx.RemoveUserPrincipal(ctx, m, p.URI()); err != nil {
				return err
			}
		}
	}
	for _, m := range after {
		if !in(before, m) {
			if err := tx.AddUserPrincipal(ctx, m, p.URI()); err != nil {
				return err
			}
		}
	}
	return nil
}

// cascade removes what depended on a deleted object: its children (without
// tombstones), ACEs and group memberships (kinto-protocol.md §3.7).
func cascade(ctx context.Context, tx storage.Tx, p model.Path) error {
	uri := p.URI()
	switch p.Kind {
	case model.Bucket:
		groups, err := tx.List(ctx, p.ChildScope(model.Group), storage.ListOptions{})
		if err != nil {
			return err
		}
		for _, g := range groups {
			if err := tx.RemovePrincipal(ctx, uri+"/groups/"+g.ID); err != nil {
				return err
			}
		}
		if err := tx.PurgeTree(ctx, uri); err != nil {
			return err
		}
		return tx.DeletePermissions(ctx, uri, uri+"/*")
	case model.Collection:
		if err := tx.PurgeTree(ctx, uri); err != nil {
			return err
		}
		return tx.DeletePermissions(ctx, uri, uri+"/*")
	case model.Group:
		if err := tx.RemovePrincipal(ctx, uri); err != nil {
			return err
		}
	}
	return tx.DeletePermissions(ctx, uri)
}

// withWriter adds the caller to the write permission unless
// explicit_permissions is off.
func (s *Server) withWriter(perms map[string][]string, c *call) map[string][]string {
	if perms == nil {
		perms = map[string][]string{}
	}
	if !s.settings.Bool("explicit_permissions") {
		return perms
	}
	for _, w := range perms["write"] {
		if w == c.writer() {
			return perms
		}
	}
	perms["write"] = append(perms["write"], c.writer())
	return perms
}

// committed publishes what a write changed, once it is committed and
// before the writer gets its answer. Inside a batch, the events wait for
// the batch's commit.
func (s *Server) committed(ctx context.Context, action string, p model.Path, objs ...*storage.Object) {
	evs := make([]events.Event, 0, len(objs))
	for _, o := range objs {
		ev := events.Event{Action: action, ResourceName: p.Kind.Name, BucketID: p.BucketID, CollectionID: p.CollectionID, ID: o.ID, Timestamp: o.LastModified}
		switch p.Kind {
		case model.Bucket:
			ev.BucketID = o.ID
		case model.Collection:
			ev.CollectionID = o.ID
		}
		evs = append(evs, ev)
	}
	if b := batchOf(ctx); b != nil {
		b.events = append(b.events, evs...)
		return
	}
	s.bus.Publish(evs...)
}

// prepare starts every write: the caller's group principals, the locks
// that must come first (lockFirst), then the parent collection of a
// records endpoint, which must exist before any authorization (Kinto
// checks it while building the route context).
func (s *Server) prepare(ctx context.Context, tx storage.Tx, c *call, p model.Path) error {
	if err := c.loadPrincipals(ctx, tx); err != nil {
		return err
	}
	if err := s.lockFirst(ctx, tx, p); err != nil {
		return err
	}
	_, err := checkParent(ctx, tx, p)
	return err
}

// lockFirst takes, before a write locks the scope of what it writes, the
// locks it will need later: with the history plugin, every write ends by
// adding an entry to its bucket's history, so it locks that history
// first. Writers of one bucket then take their locks in the same order,
// and a batch writing several collections cannot deadlock with a single
// writer of one of them (on PostgreSQL, where writers of different scopes
// run in parallel).
func (s *Server) lockFirst(ctx context.Context, tx storage.Tx, p model.Path) error {
	if !s.historyEnabled() {
		return nil
	}
	bucketID := p.BucketID
	if p.Kind == model.Bucket {
		bucketID = p.ID
	}
	if bucketID == "" {
		return nil
	}
	return tx.LockScope(ctx, historyScope(bucketID))
}

// storePermissions stores an object's ACL with the writer added, and
// returns what the caller may see of it.
func (s *Server) storePermissions(ctx context.Context, tx storage.Tx, c *call, uri string, perms map[string][]string) (map[string][]string, error) {
	if err := tx.SetPermissions(ctx, uri, s.withWriter(perms, c)); err != nil {
		return nil, err
	}
	return visiblePermissions(ctx, tx, uri, c.principals())
}

// writeObject answers with one object, its ETag and its visible ACL.
func (s *Server) writeObject(w http.ResponseWriter, status int, o *storage.Object, perms map[string][]string) {
	setTimestamp(w, o.LastModified)
	s.writeJSON(w, status, objectBody{Data: o.Body(), Permissions: perms})
}

// replacePermissions gives perms to every permission of the kind, clearing
// those not listed (PUT with permissions, merge-patch, JSON-Patch).
func replacePermissions(k *model.Kind, perms map[string][]string) map[string][]string {
	out := map[string][]string{}
	for _, name := range k.Perms {
		out[name] = append([]string{}, perms[name]...)
	}
	return out
}

// written is what a write of one object produced: the object (or its
// tombstone), the ACL the caller may see, and whether it was created.
type written struct {
	obj     *storage.Object
	perms   map[string][]string
	created bool
}

// createObject is POST on a plural endpoint.
func (s *Server) createObject(k kindRoute) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		p := k.path(r)
		ctx := r.Context()
		in := readWrite(r, k.kind, mediaJSON)
		ifMatch, ifNoneMatch, precondErr := preconditions(r)
		res, err := update(s, ctx, func(tx storage.Tx) (written, error) {
			if err := s.prepare(ctx, tx, c, p); err != nil {
				return written{}, err
			}
			var id any
			var existing *storage.Object
			if in.env != nil && in.env.data != nil {
				id = in.env.data[query.IDField]
				if sid, ok := id.(string); ok && k.kind.ValidID(sid) {
					o, err := tx.Get(ctx, p.Scope(), sid)
					if err != nil && !kerr.Is(err, kerr.NotFound) {
						return written{}, err
					}
					existing = o
				}
			}
			var allowed bool
			var err error
			if existing != nil {
				allowed, err = s.authz.Allowed(ctx, tx, p.WithID(existing.ID), "read", c.principals())
			} else {
				allowed, err = s.authz.CanCreate(ctx, tx, p, c.principals())
			}
			if err != nil {
				return written{}, err
			}
			if !allowed {
				return written{}, c.denied()
			}
			if err := firstErr(checkAccept(r), in.err, precondErr); err != nil {
				return written{}, err
			}
			if id != nil {
				if sid, ok := id.(string); !ok || !k.kind.ValidID(sid) {
					return written{}, invalidID
				}
			}
			if err := checkObjectPreconditions(ctx, tx, p, ifMatch, ifNoneMatch, existing); err != nil {
				return written{}, err
			}
			if existing != nil {
				perms, err := visiblePermissions(ctx, tx, p.WithID(existing.ID).URI(), c.principals())
				return written{obj: existing, perms: perms}, err
			}
			data := copyData(in.env.data)
			newID, _ := id.(string)
			if newID == "" {
				newID = k.kind.NewID()
			}
			target := p.WithID(newID)
			out, err := s.storeObject(ctx, tx, target, nil, data)
			if err != nil {
				return written{}, err
			}
			if err := afterWrite(ctx, tx, target, nil, out); err != nil {
				return written{}, err
			}
			perms, err := s.storePermissions(ctx, tx, c, target.URI(), in.env.permissions)
			if err != nil {
				return written{}, err
			}
			return written{obj: out, perms: perms, created: true}, s.recordHistory(ctx, tx, c, "create", p, out)
		})
		if err != nil {
			return err
		}
		status := http.StatusOK
		if res.created {
			status = http.StatusCreated
			s.committed(ctx, "create", p, res.obj)
		}
		s.writeObject(w, status, res.obj, res.perms)
		return nil
	}
}

// putObject is PUT on an object: create or replace.
func (s *Server) putObject(k kindRoute) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		p := k.path(r)
		ctx := r.Context()
		in := readWrite(r, k.kind, mediaJSON)
		ifMatch, ifNoneMatch, precondErr := preconditions(r)
		res, err := update(s, ctx, func(tx storage.Tx) (written, error) {
			if err := s.prepare(ctx, tx, c, p); err != nil {
				return written{}, err
			}
			existing, err := tx.Get(ctx, p.Scope(), p.ID)
			if err != nil && !kerr.Is(err, kerr.NotFound) {
				return written{}, err
			}
			var allowed bool
			if existing != nil && !ifNoneMatch.any {
				allowed, err = s.authz.Allowed(ctx, tx, p, "write", c.principals())
			} else {
				allowed, err = s.authz.CanCreate(ctx, tx, p, c.principals())
			}
			if err != nil {
				return written{}, err
			}
			if !allowed {
				return written{}, c.denied()
			}
			if !p.Kind.ValidID(p.ID) {
				return written{}, invalidID
			}
			if err := firstErr(checkAccept(r), in.err, precondErr, checkObjectPreconditions(ctx, tx, p, ifMatch, ifNoneMatch, existing)); err != nil {
				return written{}, err
			}
			var data map[string]any
			switch {
			case in.env.data != nil:
				data = copyData(in.env.data)
			case existing != nil:
				data = copyData(existing.Data)
			default:
				data = map[string]any{}
			}
			if id, ok := data[query.IDField]; ok && id != p.ID {
				return written{}, kerr.InvalidParam("body", kerr.Name("id"), "Object id does not match existing object")
			}
			out, err := s.storeObject(ctx, tx, p, existing, data)
			if err != nil {
				return written{}, err
			}
			if err := afterWrite(ctx, tx, p, existing, out); err != nil {
				return written{}, err
			}
			var perms map[string][]string
			if in.env.hasPerms {
				perms = replacePermissions(k.kind, in.env.permissions)
			} else if perms, err = tx.Permissions(ctx, p.URI()); err != nil {
				return written{}, err
			}
			if perms, err = s.storePermissions(ctx, tx, c, p.URI(), perms); err != nil {
				return written{}, err
			}
			res := written{obj: out, perms: perms, created: existing == nil}
			return res, s.recordHistory(ctx, tx, c, res.action(), p, out)
		})
		if err != nil {
			return err
		}
		s.committed(ctx, res.action(), p, res.obj)
		status := http.StatusOK
		if res.created {
			status = http.StatusCreated
		}
		s.writeObject(w, status, res.obj, res.perms)
		return nil
	}
}

// action is the event of a write that stored an object.
func (wr written) action() string {
	if wr.created {
		return "create"
	}
	return "update"
}

// suppliedDeletion reads the ?last_modified= a client gives the tombstone
// of a DELETE (0 when absent).
func (s *Server) suppliedDeletion(params []query.Param) (int64, error) {
	v, ok := query.Get(params, query.ModifiedField)
	if !ok {
		return 0, nil
	}
	n, err := strconv.ParseInt(strings.Trim(v, `"`), 10, 64)
	if err != nil || n < 0 {
		return 0, kerr.InvalidParam("querystring", kerr.Name(query.ModifiedField), fmt.Sprintf("%q is not a number", v))
	}
	if n > s.maxSuppliedTimestamp() {
		return 0, kerr.InvalidParam("querystring", kerr.Name(query.ModifiedField), fmt.Sprintf("%q is too far in the future", v))
	}
	return n, nil
}

// deleteObject is DELETE on an object: a tombstone, and cascades.
func (s *Server) deleteObject(k kindRoute) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		p := k.path(r)
		ctx := r.Context()
		ifMatch, ifNoneMatch, precondErr := preconditions(r)
		tomb, err := update(s, ctx, func(tx storage.Tx) (*storage.Object, error) {
			if err := s.prepare(ctx, tx, c, p); err != nil {
				return nil, err
			}
			if err := s.authorizeObject(ctx, tx, c, p, "write"); err != nil {
				return nil, err
			}
			if err := firstErr(checkAccept(r), precondErr, c.paramsErr); err != nil {
				return nil, err
			}
			existing, err := tx.Get(ctx, p.Scope(), p.ID)
			if err != nil {
				return nil, err
			}
			if err := checkObjectPreconditions(ctx, tx, p, ifMatch, ifNoneMatch, existing); err != nil {
				return nil, err
			}
			supplied, err := s.suppliedDeletion(c.params)
			if err != nil {
				return nil, err
			}
			tomb, err := tx.Delete(ctx, p.Scope(), p.ID, supplied)
			if err != nil {
				return nil, err
			}
			if err := cascade(ctx, tx, p); err != nil {
				return nil, err
			}
			if p.Kind == model.Bucket {
				return tomb, nil // its history went with it
			}
			return tomb, s.recordHistory(ctx, tx, c, "delete", p, tomb)
		})
		if err != nil {
			return err
		}
		s.committed(ctx, "delete", p, tomb)
		setTimestamp(w, tomb.LastModified)
		s.writeJSON(w, http.StatusOK, map[string]any{"data": tomb.Body()})
		return nil
	}
}

// deletedList is what a plural DELETE produced.
type deletedList struct {
	tombs []*storage.Object
	ts    int64
	next  string
}

// deleteObjects is DELETE on a plural endpoint: every object the caller may
// delete that matches the filters.
func (s *Server) deleteObjects(k kindRoute) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		p := k.path(r)
		ctx := r.Context()
		ifMatch, ifNoneMatch, precondErr := preconditions(r)
		res, err := update(s, ctx, func(tx storage.Tx) (deletedList, error) {
			var res deletedList
			if err := s.prepare(ctx, tx, c, p); err != nil {
				return res, err
			}
			scope, ok, err := s.authz.ForList(ctx, tx, p, "write", c.principals())
			if err != nil {
				return res, err
			}
			if !ok {
				return res, c.denied()
			}
			if err := firstErr(checkAccept(r), precondErr, c.paramsErr); err != nil {
				return res, err
			}
			q, err := query.Parse(c.params, query.Schema{}, s.nowMS())
			if err != nil {
				return res, err
			}
			if q.After != nil {
				if err := s.useDeleteToken(ctx, tx, q.Nonce); err != nil {
					return res, err
				}
			}
			if res.ts, err = tx.Timestamp(ctx, p.Scope()); err != nil {
				return res, err
			}
			if ifNoneMatch.set || (ifMatch.set && !ifMatch.any && ifMatch.ts != res.ts) {
				return res, preconditionFailed(nil, res.ts)
			}
			limit := s.effectiveLimit(q.Limit)
			objs, err := tx.List(ctx, p.Scope(), storage.ListOptions{
				Filters: q.Filters, Sort: q.Sort, After: q.After, Limit: limit + 1, IDs: scopeIDs(scope.All, scope.IDs),
			})
			if err != nil {
				return res, err
			}
			if len(objs) > limit {
				objs = objs[:limit]
				tok, nonce := query.TokenWithNonce(objs[len(objs)-1], q.Sort, q.Offset+int64(len(objs)))
				if err := s.issueDeleteToken(ctx, tx, nonce); err != nil {
					return res, err
				}
				res.next = s.nextPage(r, c.params, limit, tok)
			}
			for _, o := range objs {
				tomb, err := tx.Delete(ctx, p.Scope(), o.ID, 0)
				if err != nil {
					return res, err
				}
				if err := cascade(ctx, tx, p.WithID(o.ID)); err != nil {
					return res, err
				}
				if p.Kind != model.Bucket {
					if err := s.recordHistory(ctx, tx, c, "delete", p, tomb); err != nil {
						return res, err
					}
				}
				res.tombs = append(res.tombs, tomb)
				res.ts = max(res.ts, tomb.LastModified)
			}
			return res, nil
		})
		if err != nil {
			return err
		}
		s.committed(ctx, "delete", p, res.tombs...)
		ts := res.ts
		if ts == 0 {
			ts = s.nowMS()
		}
		setTimestamp(w, ts)
		if res.next != "" {
			w.Header().Set("Next-Page", res.next)
		}
		tombs := res.tombs
		sort.SliceStable(tombs, func(i, j int) bool { return tombs[i].LastModified > tombs[j].LastModified })
		data := make([]map[string]any, len(tombs))
		for i, t := range tombs {
			data[i] = t.Body()
		}
		s.writeJSON(w, http.StatusOK, map[string]any{"data": data})
		return nil
	}
}

// validateAgainstSchemas validates the data of a write against the JSON
// schemas that govern it, when experimental_collection_schema_validation is
// on: a record against its collection's `schema` then its bucket's
// `record:schema`, a collection or group against the bucket's
// `collection:schema` or `group:schema`. A record that passes its
// collection's schema records the schema's version in its `schema` field.
func (s *Server) validateAgainstSchemas(ctx context.Context, tx storage.Tx, p model.Path, data map[string]any) error {
	if !s.settings.Bool("experimental_collection_schema_validation") || p.Kind == model.Bucket {
		return nil
	}
	bucket, err := tx.Get(ctx, storage.Scope{Resource: model.Bucket.Name}, p.BucketID)
	if kerr.Is(err, kerr.NotFound) {
		return kerr.ParentNotFound("bucket", p.BucketID)
	}
	if err != nil {
		return err
	}
	if p.Kind == model.Record {
		delete(data, "schema")
		coll, err := tx.Get(ctx, p.ParentPath().Scope(), p.CollectionID)
		if err != nil {
			return err
		}
		if sch, ok := coll.Data["schema"]; ok {
			if err := validateWith(sch, data); err != nil {
				return err
			}
			if m, ok := sch.(map[string]any); ok && len(m) > 0 {
				data["schema"] = json.Number(strconv.FormatInt(coll.LastModified, 10))
			}
		}
	}
	if sch, ok := bucket.Data[p.Kind.Name+":schema"]; ok {
		return validateWith(sch, data)
	}
	return nil
}

// validateWith validates data against a stored schema the way Kinto does:
// server fields (last_modified, schema, and id unless the schema declares
// it) are neither validated nor required.
func validateWith(sch any, data map[string]any) error {
	m, ok := sch.(map[string]any)
	if !ok || len(m) == 0 {
		return nil
	}
	declaresID := false
	if props, ok := m["properties"].(map[string]any); ok {
		_, declaresID = props["id"]
	}
	instance := copyData(data)
	delete(instance, "schema")
	delete(instance, query.ModifiedField)
	if !declaresID {
		delete(instance, query.IDField)
	}
	cleaned := copyData(m)
	if req, ok := m["required"].([]any); ok {
		kept := []any{}
		for _, r := range req {
			if r == "schema" || r == query.ModifiedField || (r == query.IDField && !declaresID) {
				continue
			}
			kept = append(kept, r)
		}
		cleaned["required"] = kept
	}
	if f, ok := schema.Validate(cleaned, instance); !ok {
		return kerr.InvalidParam("body", kerr.Name(f.Field), f.Message)
	}
	return nil
}

// Tokens of paginated plural DELETEs are single-use: their nonces are
// stored (in the database, so that any node honours them) until used or
// expired. Each lives under its own parent so that it can be removed
// without leaving a tombstone.
const deleteTokens = "/__tokens__/"

func tokenScope(nonce string) storage.Scope {
	return storage.Scope{Parent: deleteTokens + nonce, Resource: "delete-token"}
}

func (s *Server) issueDeleteToken(ctx context.Context, tx storage.Tx, nonce string) error {
	validity := time.Duration(s.settings.Int("pagination_token_validity_seconds")) * time.Second
	// Forget the tokens that expired unused.
	issued, err := tx.Timestamps(ctx, "delete-token", []string{deleteTokens})
	if err != nil {
		return err
	}
	oldest := s.opts.Now().Add(-validity).UnixMilli()
	for parent, at := range issued {
		if at < oldest {
			if err := tx.PurgeTree(ctx, parent); err != nil {
				return err
			}
		}
	}
	_, err = tx.Put(ctx, tokenScope(nonce), &storage.Object{ID: "token", Data: map[string]any{
		"expires": json.Number(strconv.FormatInt(s.opts.Now().Add(validity).UnixMilli(), 10)),
	}})
	return err
}

func (s *Server) useDeleteToken(ctx context.Context, tx storage.Tx, nonce string) error {
	bad := kerr.InvalidParam("querystring", kerr.Name("_token"), "_token was already used or has expired.")
	o, err := tx.Get(ctx, tokenScope(nonce), "token")
	if kerr.Is(err, kerr.NotFound) {
		return bad
	}
	if err != nil {
		return err
	}
	if err := tx.PurgeTree(ctx, tokenScope(nonce).Parent); err != nil {
		return err
	}
	if expires, _ := o.Data["expires"].(json.Number).Int64(); s.nowMS() > expires {
		return bad
	}
	return nil
}
