package api

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"kintogo/internal/changes"
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
func (s *Server) changesetParams(params []query.Param) (since int64, hasSince bool, limit int, err error) {
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
	return since, hasSince, s.engine.Limit(asked), nil
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
func (s *Server) changesetCache(w http.ResponseWriter, bid, cid string, params []query.Param) {
	prefix := bid + "." + cid + ".record_cache_"
	ttl, ok := s.settings.IntOK(prefix + "expires_seconds")
	if variant := expectedVariant(params); variant != "" {
		if v, set := s.settings.IntOK(prefix + variant + "expires_seconds"); set {
			ttl, ok = v, true
		}
	}
	if !ok {
		for _, name := range []string{bid + ".record_cache_expires_seconds", "record_cache_expires_seconds"} {
			if v, set := s.settings.IntOK(name); set && v != 0 {
				ttl, ok = v, true
				break
			}
		}
	}
	if ok {
		s.cacheExpires(w, ttl)
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
func (s *Server) collectionChangeset(w http.ResponseWriter, r *http.Request, c *call) error {
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
func (s *Server) changesetAccess(ctx context.Context, r *http.Request, c *call) error {
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
// for the current data generation (changes of permissions, groups or
// objects are commits, which move it).
func (s *Server) changesetDecision(ctx context.Context, r *http.Request, c *call) (changesetGrant, error) {
	coll := model.Path{Kind: model.Collection, BucketID: r.PathValue("bid"), ID: r.PathValue("cid")}
	records := model.Path{Kind: model.Record, BucketID: coll.BucketID, CollectionID: coll.ID}
	inBatch := inUnit(ctx) // a batch may have changed permissions, uncommitted
	gen := s.generation()
	key := "changeset\x00" + coll.BucketID + "/" + coll.ID + "\x00" + c.user()
	if v, ok := s.decisions.get(gen, key); ok && !inBatch {
		d := v.(changesetGrant)
		if !d.allowed {
			return d, c.denied()
		}
		return d, nil
	}
	var d changesetGrant
	err := s.view(ctx, func(tx storage.Tx) error {
		if err := c.loadPrincipals(ctx, tx); err != nil {
			return err
		}
		ok, err := s.authz.Allowed(ctx, tx, coll, "read", c.principals())
		if err != nil || !ok {
			return err
		}
		scope, ok, err := s.authz.ForList(ctx, tx, records, "read", c.principals())
		d = changesetGrant{allowed: ok, scope: scope}
		return err
	})
	if err != nil {
		return d, err
	}
	if !inBatch && (!d.allowed || d.scope.All) {
		s.decisions.put(gen, key, d, 16)
	}
	if !d.allowed {
		return d, c.denied()
	}
	return d, nil
}

// changesetOf answers an authorized changeset request, with the records of
// ids only when ids is not nil.
func (s *Server) changesetOf(ids []string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		ctx := r.Context()
		coll := model.Path{Kind: model.Collection, BucketID: r.PathValue("bid"), ID: r.PathValue("cid")}
		records := model.Path{Kind: model.Record, BucketID: coll.BucketID, CollectionID: coll.ID}
		if c.paramsErr != nil {
			return c.paramsErr
		}
		since, hasSince, limit, err := s.changesetParams(c.params)
		if err != nil {
			return err
		}
		var body changesetBody
		var metaTS int64
		err = s.view(ctx, func(tx storage.Tx) error {
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
		s.changesetCache(w, coll.BucketID, coll.ID, c.params)
		s.writeJSON(w, http.StatusOK, body)
		return nil
	}
}

func httpDate(ms int64) string { return time.UnixMilli(ms).UTC().Format(http.TimeFormat) }

// rawInt reads a parameter as an integer, quotes stripped.
func rawInt(params []query.Param, name string) (int64, bool) {
	raw, ok := query.Get(params, name)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.Trim(raw, `"`), 10, 64)
	return n, err == nil
}

// withMonitorShortcuts answers, before h and its response cache, the
// monitor requests that need no data (monitorShortcuts) and, on the
// changeset, a quoted _expected (push versions are quoted: a 307 merges
// them with unquoted ones for CDNs). These answers depend on the exact
// _expected, which the cache key of changesets leaves out.
func (s *Server) withMonitorShortcuts(h handlerFunc, changeset bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		if c.paramsErr != nil {
			return c.paramsErr
		}
		if expected, ok := query.Get(c.params, "_expected"); changeset && ok && strings.Contains(expected, `"`) {
			s.redirectMonitor(w, r, query.Set(c.params, "_expected", strings.ReplaceAll(expected, `"`, "")), -1)
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
func (s *Server) monitorShortcuts(w http.ResponseWriter, r *http.Request, c *call) bool {
	since, hasSince := rawInt(c.params, "_since")
	if !hasSince {
		return false
	}
	ttl := s.sinceRedirectTTL
	if expected, ok := rawInt(c.params, "_expected"); ok && expected > 0 && expected < since {
		if ttl >= 0 {
			s.cacheExpires(w, ttl)
		}
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	maxAge := s.sinceMaxAgeDays
	if maxAge >= 0 && since < s.opts.Now().Add(-time.Duration(maxAge)*24*time.Hour).UnixMilli() {
		s.redirectMonitor(w, r, query.Without(c.params, "_since"), ttl)
		return true
	}
	return false
}

// redirectMonitor answers 307 to the same monitor URL with other
// parameters, on the changes feed's public host and scheme.
func (s *Server) redirectMonitor(w http.ResponseWriter, r *http.Request, params []query.Param, ttl int64) {
	host := s.monitor.Host()
	if host == "" {
		host = r.Host
	}
	scheme := s.settings.String("http_scheme")
	if scheme == "" {
		scheme = "https"
	}
	target := scheme + "://" + host + r.URL.Path
	if len(params) > 0 {
		target += "?" + query.Encode(params)
	}
	if ttl >= 0 {
		s.cacheExpires(w, ttl)
	}
	w.Header().Set("Location", target)
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	w.WriteHeader(http.StatusTemporaryRedirect)
}

// monitorChangeset is GET /buckets/monitor/collections/changes/changeset:
// the monitor entries in a changeset, public.
func (s *Server) monitorChangeset(w http.ResponseWriter, r *http.Request, c *call) error {
	if c.paramsErr != nil {
		return c.paramsErr
	}
	since, hasSince, limit, err := s.changesetParams(c.params)
	if err != nil {
		return err
	}
	entries, err := s.monitorEntries(r)
	if err != nil {
		return err
	}
	bucket, hasBucket := query.Get(c.params, "bucket")
	collection, hasCollection := query.Get(c.params, "collection")
	selected := make([]*changes.Entry, 0, len(entries))
	for _, e := range entries {
		if (hasSince && e.LastModified <= since) || (hasBucket && e.Bucket != bucket) || (hasCollection && e.Collection != collection) {
			continue
		}
		selected = append(selected, e)
	}
	if len(selected) > limit {
		selected = selected[:limit]
	}
	ts := changes.Timestamp(entries)
	if ts == 0 {
		ts = s.nowMS()
	}
	w.Header().Set("Last-Modified", httpDate(ts))
	s.changesetCache(w, "monitor", "changes", c.params)
	s.writeJSON(w, http.StatusOK, changesetBody{Metadata: map[string]any{"bucket": "monitor"}, Timestamp: ts, Changes: selected})
	return nil
}

// monitorEntries returns the monitor's entries, newest first, from the
// in-memory snapshot. The slice is shared: do not modify it.
func (s *Server) monitorEntries(r *http.Request) ([]*changes.Entry, error) {
	if u := resource.UnitOf(r.Context()); u != nil {
		return s.monitor.Entries(r.Context(), u.Tx)
	}
	entries, _, err := s.snapshot.Entries(r.Context())
	return entries, err
}
