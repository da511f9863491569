package changes

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"kintogo/internal/events"
	"kintogo/internal/httpapi"
	"kintogo/internal/kerr"
	"kintogo/internal/model"
	"kintogo/internal/permission"
	"kintogo/internal/query"
	"kintogo/internal/resource"
	"kintogo/internal/storage"
)

// changesetBody is the answer of the changeset endpoints.
type changesetBody struct {
	Metadata  map[string]any `json:"metadata"`
	Timestamp int64          `json:"timestamp"`
	Changes   any            `json:"changes"`
}

// maxChangesetSince is 2100-01-01: a larger _since is refused.
const maxChangesetSince = 4102444800000

var sinceRE = regexp.MustCompile(`^(?:"[0-9]+"|[0-9]+)$`)

// changesetParams reads the parameters common to both changeset endpoints:
// _expected (required), _since (quotes optional) and _limit.
func (s *plugin) changesetParams(params []query.Param) (since int64, hasSince bool, limit int, err error) {
	if _, ok := query.Get(params, "_expected"); !ok {
		return 0, false, 0, kerr.InvalidParam("querystring", kerr.Name("_expected"), "Required")
	}
	if raw, ok := query.Get(params, "_since"); ok {
		bad := kerr.InvalidParam("querystring", kerr.Name("_since"), "The value should be integer, optionally between double quotes.")
		if !sinceRE.MatchString(raw) {
			return 0, false, 0, bad
		}
		n, perr := strconv.ParseInt(strings.Trim(raw, `"`), 10, 64)
		if perr != nil || n > maxChangesetSince {
			return 0, false, 0, bad
		}
		since, hasSince = n, true
	}
	var asked int64
	if raw, ok := query.Get(params, "_limit"); ok {
		n, perr := strconv.ParseInt(raw, 10, 64)
		if perr != nil || n < 0 {
			return 0, false, 0, kerr.InvalidParam("querystring", kerr.Name("_limit"), strconv.Quote(raw)+" is not a valid limit")
		}
		asked = n
	}
	return since, hasSince, s.h.Engine().Limit(asked), nil
}

// expectedVariant is the cache setting variant `_expected` chooses:
// "minimum_" for 0 or 9999..., "maximum_" for a version, "" without.
func expectedVariant(params []query.Param) string {
	expected, _ := query.Get(params, "_expected")
	switch {
	case expected == "":
		return ""
	case expected == "0" || strings.HasPrefix(expected, "9999"):
		return "minimum_"
	}
	return "maximum_"
}

// changesetCache sets the plugin's Cache-Control: the collection's
// `record_cache_{minimum_,maximum_,}expires_seconds` chosen by _expected,
// then the bucket's and the global record_cache_expires_seconds.
func (s *plugin) changesetCache(w http.ResponseWriter, bid, cid string, params []query.Param) {
	prefix := bid + "." + cid + ".record_cache_"
	ttl, ok := s.h.Settings().IntOK(prefix + "expires_seconds")
	if variant := expectedVariant(params); variant != "" {
		if v, set := s.h.Settings().IntOK(prefix + variant + "expires_seconds"); set {
			ttl, ok = v, true
		}
	}
	if !ok {
		for _, name := range []string{bid + ".record_cache_expires_seconds", "record_cache_expires_seconds"} {
			if v, set := s.h.Settings().IntOK(name); set && v != 0 {
				ttl, ok = v, true
				break
			}
		}
	}
	if ok {
		s.h.CacheExpires(w, ttl)
	}
}

// collectionChangeset is GET /buckets/{bid}/collections/{cid}/changeset: a
// collection's metadata, records timestamp and records (with tombstones
// when _since is given), newest first, for whoever may read the
// collection. It shows exactly the records the caller's GET of /records
// would (an intentional difference from remote-settings, which shows all
// of them to whoever may read the collection's metadata, e.g. with only
// record:create). The permission check runs for every request; the answer
// of callers who may read every record is the same for all of them and
// comes from the response cache.
func (s *plugin) collectionChangeset(w http.ResponseWriter, r *http.Request, c *httpapi.Call) error {
	d, err := s.changesetDecision(r.Context(), r, c)
	if err != nil {
		return err
	}
	if d.scope.All {
		return s.changesetBody(w, r, c)
	}
	return s.changesetOf(d.scope.IDs)(w, r, c)
}

// changesetAccess is the permission check of a long-poll on a changeset.
func (s *plugin) changesetAccess(ctx context.Context, r *http.Request, c *httpapi.Call) error {
	_, err := s.changesetDecision(ctx, r, c)
	return err
}

// changesetGrant is the caller's right on a collection's changeset: to
// read the collection, and which of its records.
type changesetGrant struct {
	allowed bool
	scope   permission.ListScope
}

// changesetDecision decides the caller's right on a changeset like
// GET /records does (read on the collection, then the records it may
// see). Decisions of callers who may read everything or nothing are kept
// for the current version of the collection's scope (changes of its
// permissions, of its bucket's, of groups move it).
func (s *plugin) changesetDecision(ctx context.Context, r *http.Request, c *httpapi.Call) (changesetGrant, error) {
	coll := model.Path{Kind: model.Collection, BucketID: r.PathValue("bid"), ID: r.PathValue("cid")}
	records := model.Path{Kind: model.Record, BucketID: coll.BucketID, CollectionID: coll.ID}
	inBatch := httpapi.InUnit(ctx) // a batch may have changed permissions, uncommitted
	version := s.h.Version(events.Scope{Bucket: coll.BucketID, Collection: coll.ID})
	key := "changeset\x00" + coll.BucketID + "/" + coll.ID + "\x00" + c.User()
	if v, ok := s.decisions.Get(version, key); ok && !inBatch {
		d := v.(changesetGrant)
		if !d.allowed {
			return d, c.Denied()
		}
		return d, nil
	}
	var d changesetGrant
	err := s.h.View(ctx, func(tx storage.Tx) error {
		if err := c.LoadPrincipals(ctx, tx); err != nil {
			return err
		}
		ok, err := s.h.Engine().Authorizer().Allowed(ctx, tx, coll, "read", c.Principals())
		if err != nil || !ok {
			return err
		}
		scope, ok, err := s.h.Engine().Authorizer().ForList(ctx, tx, records, "read", c.Principals())
		d = changesetGrant{allowed: ok, scope: scope}
		return err
	})
	if err != nil {
		return d, err
	}
	if !inBatch && (!d.allowed || d.scope.All) {
		s.decisions.Put(version, key, d, 16)
	}
	if !d.allowed {
		return d, c.Denied()
	}
	return d, nil
}

// changesetOf answers an authorized changeset request, with the records of
// ids only when ids is not nil.
func (s *plugin) changesetOf(ids []string) httpapi.Handler {
	return func(w http.ResponseWriter, r *http.Request, c *httpapi.Call) error {
		ctx := r.Context()
		coll := model.Path{Kind: model.Collection, BucketID: r.PathValue("bid"), ID: r.PathValue("cid")}
		records := model.Path{Kind: model.Record, BucketID: coll.BucketID, CollectionID: coll.ID}
		if c.ParamsErr != nil {
			return c.ParamsErr
		}
		since, hasSince, limit, err := s.changesetParams(c.Params)
		if err != nil {
			return err
		}
		var body changesetBody
		var metaTS int64
		err = s.h.View(ctx, func(tx storage.Tx) error {
			meta, err := tx.Get(ctx, coll.Scope(), coll.ID)
			if kerr.Is(err, kerr.NotFound) {
				return kerr.E(kerr.MissingResource, "")
			}
			if err != nil {
				return err
			}
			opts := storage.ListOptions{Sort: []query.Sort{{Field: query.ModifiedField, Desc: true}}, Limit: limit, IDs: ids}
			if hasSince {
				opts.Filters = []query.Filter{{Field: query.ModifiedField, Op: query.GT, Value: since}}
				opts.IncludeDeleted = true
			}
			objs, err := tx.List(ctx, records.Scope(), opts)
			if err != nil {
				return err
			}
			ts, err := tx.Timestamp(ctx, records.Scope())
			if err != nil {
				return err
			}
			metadata := meta.Body()
			metadata["bucket"] = coll.BucketID
			if objs == nil {
				objs = []*storage.Object{} // "changes": [], never null
			}
			body = changesetBody{Metadata: metadata, Timestamp: ts, Changes: objs}
			metaTS = meta.LastModified
			return nil
		})
		if err != nil {
			return err
		}
		// Last-Modified is the metadata's, so that CDNs revalidate after a
		// signature refresh that changes no record.
		w.Header().Set("Last-Modified", httpDate(metaTS))
		s.changesetCache(w, coll.BucketID, coll.ID, c.Params)
		s.h.WriteJSON(w, http.StatusOK, body)
		return nil
	}
}

func httpDate(ms int64) string { return time.UnixMilli(ms).UTC().Format(http.TimeFormat) }

// withMonitorShortcuts answers, before h and its response cache, the
// monitor requests that need no data (monitorShortcuts) and, on the
// changeset, a quoted _expected (push versions are quoted: a 307 merges
// them with unquoted ones for CDNs). These answers depend on the exact
// _expected, which the cache key of changesets leaves out.
func (s *plugin) withMonitorShortcuts(h httpapi.Handler, changeset bool) httpapi.Handler {
	return func(w http.ResponseWriter, r *http.Request, c *httpapi.Call) error {
		if c.ParamsErr != nil {
			return c.ParamsErr
		}
		if expected, ok := query.Get(c.Params, "_expected"); changeset && ok && strings.Contains(expected, `"`) {
			s.redirectMonitor(w, r, query.Set(c.Params, "_expected", strings.ReplaceAll(expected, `"`, "")), -1)
			return nil
		}
		if s.monitorShortcuts(w, r, c) {
			return nil
		}
		return h(w, r, c)
	}
}

// monitorShortcuts answers the monitor requests that need no data: a
// client going back in time (0 < _expected < _since: a cacheable 204) and
// a _since older than changes.since_max_age_days (a cacheable 307 to the
// same URL without it, so that CDNs see few distinct URLs).
func (s *plugin) monitorShortcuts(w http.ResponseWriter, r *http.Request, c *httpapi.Call) bool {
	since, hasSince := httpapi.RawInt(c.Params, "_since")
	if !hasSince {
		return false
	}
	ttl := s.sinceRedirectTTL
	if expected, ok := httpapi.RawInt(c.Params, "_expected"); ok && expected > 0 && expected < since {
		if ttl >= 0 {
			s.h.CacheExpires(w, ttl)
		}
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	maxAge := s.sinceMaxAgeDays
	if maxAge >= 0 && since < s.h.Now().Add(-time.Duration(maxAge)*24*time.Hour).UnixMilli() {
		s.redirectMonitor(w, r, query.Without(c.Params, "_since"), ttl)
		return true
	}
	return false
}

// redirectMonitor answers 307 to the same monitor URL with other
// parameters, on the changes feed's public host and scheme.
func (s *plugin) redirectMonitor(w http.ResponseWriter, r *http.Request, params []query.Param, ttl int64) {
	host := s.monitor.Host()
	if host == "" {
		host = r.Host
	}
	scheme := s.scheme
	if scheme == "" {
		scheme = "https"
	}
	target := scheme + "://" + host + r.URL.Path
	if len(params) > 0 {
		target += "?" + query.Encode(params)
	}
	if ttl >= 0 {
		s.h.CacheExpires(w, ttl)
	}
	w.Header().Set("Location", target)
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	w.WriteHeader(http.StatusTemporaryRedirect)
}

// monitorChangeset is GET /buckets/monitor/collections/changes/changeset:
// the monitor entries in a changeset, public.
func (s *plugin) monitorChangeset(w http.ResponseWriter, r *http.Request, c *httpapi.Call) error {
	if c.ParamsErr != nil {
		return c.ParamsErr
	}
	since, hasSince, limit, err := s.changesetParams(c.Params)
	if err != nil {
		return err
	}
	entries, err := s.entries(r)
	if err != nil {
		return err
	}
	bucket, hasBucket := query.Get(c.Params, "bucket")
	collection, hasCollection := query.Get(c.Params, "collection")
	selected := make([]*Entry, 0, len(entries))
	for _, e := range entries {
		if (hasSince && e.LastModified <= since) || (hasBucket && e.Bucket != bucket) || (hasCollection && e.Collection != collection) {
			continue
		}
		selected = append(selected, e)
	}
	if len(selected) > limit {
		selected = selected[:limit]
	}
	ts := Timestamp(entries)
	if ts == 0 {
		ts = s.h.Engine().NowMS()
	}
	w.Header().Set("Last-Modified", httpDate(ts))
	s.changesetCache(w, "monitor", "changes", c.Params)
	s.h.WriteJSON(w, http.StatusOK, changesetBody{Metadata: map[string]any{"bucket": "monitor"}, Timestamp: ts, Changes: selected})
	return nil
}

// entries returns the monitor's entries, newest first, from the
// in-memory snapshot. The slice is shared: do not modify it.
func (s *plugin) entries(r *http.Request) ([]*Entry, error) {
	if u := resource.UnitOf(r.Context()); u != nil {
		return s.monitor.Entries(r.Context(), u.Tx)
	}
	return s.snapshot.Entries(r.Context())
}

// monitorNewer: an entry matching the request's bucket/collection is newer.
func (s *plugin) monitorNewer(ctx context.Context, r *http.Request, c *httpapi.Call, since int64) (bool, error) {
	entries, err := s.entries(r)
	if err != nil {
		return false, err
	}
	bucket, hasBucket := query.Get(c.Params, "bucket")
	collection, hasCollection := query.Get(c.Params, "collection")
	for _, e := range entries {
		if e.LastModified > since && (!hasBucket || e.Bucket == bucket) && (!hasCollection || e.Collection == collection) {
			return true, nil
		}
	}
	return false, nil
}

// streamMonitor streams the monitor, publicly: one event per changed
// entry, in the order of the change log. An event's id is its place in
// the log, "P.k" for the k-th entry changed at position P, the same on
// every node: a stream resumed with Last-Event-ID, on any node, goes on
// exactly after the last event it got. A stream that starts with _since
// (or with a timestamp as Last-Event-ID, as before) first gets the entries
// newer than it, the last one with the id "P." (everything up to P).
func (s *plugin) streamMonitor(w http.ResponseWriter, r *http.Request, c *httpapi.Call) error {
	q, err := query.Parse(query.Without(c.Params, "_since", "_before", "_to", "_wait"), Schema, s.h.Engine().NowMS())
	if err != nil {
		return err
	}
	history := s.h.Engine().History()
	// pos is the last position fully sent; of position partial, the
	// entries up to index done were sent.
	partial, done, positioned := parseStreamID(r.Header.Get("Last-Event-ID"))
	pos := partial
	if done >= 0 {
		pos = partial - 1
	}
	if !positioned || partial > history.Head() {
		// The history follows the log asynchronously: read it now, so
		// that a new stream starts after every commit made before it (not
		// with the last ones, sent as if new), and a position another node
		// gave, which this one has not read yet, is known rather than
		// started over.
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		s.h.Engine().CatchUp(ctx)
		cancel()
	}
	var catchUp []*Entry
	if !positioned {
		pos, partial, done = history.Head(), 0, -1
		if since, ok := legacyCursor(r, c); ok {
			entries, err := s.entries(r)
			if err != nil {
				return err
			}
			for _, e := range entries {
				if e.LastModified > since && query.Match(e, q.Filters) {
					catchUp = append(catchUp, e)
				}
			}
			sort.Slice(catchUp, func(i, j int) bool { return catchUp[i].LastModified < catchUp[j].LastModified })
		}
	}
	es, end, err := s.h.OpenStream(w)
	if err != nil {
		return err
	}
	defer end()
	// sent is the newest timestamp sent of each entry: what a catch-up
	// sent from the current state is not sent again by its position.
	sent := map[[2]string]int64{}
	send := func(id string, e *Entry) error {
		sent[[2]string{e.Bucket, e.Collection}] = e.LastModified
		return es.SendID(id, "change", e)
	}
	// sendState sends entries of the state as of position at, the last
	// with the id "at." (everything up to it).
	sendState := func(entries []*Entry, at int64) error {
		for i, e := range entries {
			id := ""
			if i == len(entries)-1 {
				id = strconv.FormatInt(at, 10) + "."
			}
			if err := send(id, e); err != nil {
				return err
			}
		}
		return es.Flush()
	}
	return es.ServeOn(r.Context(), history.Wait, func() error {
		if catchUp != nil {
			if err := sendState(catchUp, pos); err != nil {
				return err
			}
			catchUp = nil
		}
		batches, head, ok := history.Since(pos)
		if !ok {
			// Older than what this node keeps (or another database's):
			// the current entries, as a new start.
			entries, err := s.entries(r)
			if err != nil {
				return err
			}
			var all []*Entry
			for _, e := range entries {
				if query.Match(e, q.Filters) && e.LastModified > sent[[2]string{e.Bucket, e.Collection}] {
					all = append(all, e)
				}
			}
			pos, partial, done = head, 0, -1
			return sendState(all, head)
		}
		wrote := false
		for _, b := range batches {
			for i, e := range s.changedEntries(b.Events) {
				if b.Position == partial && i <= done || !query.Match(e, q.Filters) {
					continue
				}
				if e.LastModified <= sent[[2]string{e.Bucket, e.Collection}] {
					continue
				}
				if err := send(strconv.FormatInt(b.Position, 10)+"."+strconv.Itoa(i), e); err != nil {
					return err
				}
				wrote = true
			}
			pos = b.Position
		}
		if wrote {
			return es.Flush()
		}
		return nil
	})
}

// changedEntries are the monitored entries that events changed, each with
// its newest timestamp, in the order of their bucket and collection: a
// list every node computes alike from the same position of the log.
func (s *plugin) changedEntries(evs []events.Event) []*Entry {
	var out []*Entry
	for _, ev := range evs {
		if ev.ResourceName != "record" || !s.monitor.monitors("/buckets/"+ev.BucketID+"/collections/"+ev.CollectionID) {
			continue
		}
		i := slices.IndexFunc(out, func(e *Entry) bool { return e.Bucket == ev.BucketID && e.Collection == ev.CollectionID })
		if i >= 0 {
			out[i].LastModified = max(out[i].LastModified, ev.Timestamp)
			continue
		}
		out = append(out, &Entry{ID: EntryID(s.monitor.Host(), ev.BucketID, ev.CollectionID), LastModified: ev.Timestamp,
			Bucket: ev.BucketID, Collection: ev.CollectionID, Host: s.monitor.Host()})
	}
	slices.SortFunc(out, func(a, b *Entry) int {
		if a.Bucket != b.Bucket {
			return strings.Compare(a.Bucket, b.Bucket)
		}
		return strings.Compare(a.Collection, b.Collection)
	})
	return out
}

// parseStreamID reads a Last-Event-ID of the monitor's stream: "P.k" (the
// k-th entry of position P) or "P." (all of P); positioned is false for
// anything else (a timestamp, as ids were before, or none). done is the
// index of the last entry of P received, -1 when all were.
func parseStreamID(id string) (pos int64, done int, positioned bool) {
	p, k, ok := strings.Cut(strings.TrimSpace(id), ".")
	if !ok {
		return 0, 0, false
	}
	pos, err := strconv.ParseInt(p, 10, 64)
	if err != nil || pos < 0 {
		return 0, 0, false
	}
	if k == "" {
		return pos, -1, true
	}
	n, err := strconv.Atoi(k)
	if err != nil || n < 0 {
		return 0, 0, false
	}
	return pos, n, true
}

// legacyCursor is a stream's start as a timestamp: a numeric
// Last-Event-ID, else _since.
func legacyCursor(r *http.Request, c *httpapi.Call) (int64, bool) {
	if id, err := strconv.ParseInt(strings.TrimSpace(r.Header.Get("Last-Event-ID")), 10, 64); err == nil {
		return id, true
	}
	return httpapi.RawInt(c.Params, "_since")
}

// changesetKey: what a changeset answer depends on. `_expected` only
// chooses between the Cache-Control variants (clients put any version in
// it to bust CDN caches: it must not multiply the entries), other unknown
// parameters are ignored by the endpoint.
func changesetKey(r *http.Request, c *httpapi.Call) string {
	var b strings.Builder
	b.Grow(len(r.Method) + len(r.URL.Path) + len(r.URL.RawQuery) + 32)
	b.WriteString(r.Method)
	b.WriteByte(' ')
	b.WriteString(r.URL.Path)
	for _, name := range []string{"_since", "_limit", "bucket", "collection"} {
		if v, ok := query.Get(c.Params, name); ok {
			b.WriteByte(0)
			b.WriteString(name)
			b.WriteByte('=')
			b.WriteString(v)
		}
	}
	b.WriteString("\x00_expected=")
	b.WriteString(expectedVariant(c.Params))
	return b.String()
}
