package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"kintogo/internal/kerr"
	"kintogo/internal/model"
	"kintogo/internal/query"
	"kintogo/internal/resource"
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

func (s *Server) nowMS() int64 { return s.opts.Now().UnixMilli() }

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
func (s *Server) cacheHeaders(w http.ResponseWriter, c *Call, p model.Path, coll *storage.Object) {
	w.Header().Set("Cache-Control", "no-cache, no-store")
	if c.User() != "" {
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

// request is the engine request of an HTTP request on path p: its caller,
// preconditions, and the errors of the request itself, which the engine
// reports once the caller is authorized (Kinto's order).
func (s *Server) request(r *http.Request, c *Call, p model.Path, invalid ...error) resource.Request {
	pre, precondErr := preconditions(r)
	errs := append([]error{checkAccept(r), precondErr}, invalid...)
	return resource.Request{Path: p, Caller: c.Caller(), Pre: pre, Invalid: firstErr(errs...)}
}

// recordsListKey keys the answer of a records list: the exact request
// (rawKey), the caller (the scope's version covers the principals it
// has: a group's change changes every scope), the origin of its Next-Page
// link, and, where other nodes write to the same storage, the records'
// timestamp read from it, so that their writes are served at once rather
// than when this node reads them from the change log. "" (do not
// cache) when that read fails: the list will report the error.
func (s *Server) recordsListKey(r *http.Request, c *Call) string {
	key := rawKey(r, c) + "\x00" + c.User() + "\x00" + s.origin(r)
	if !s.shared {
		return key
	}
	var ts int64
	err := s.view(r.Context(), func(tx storage.Tx) (err error) {
		ts, err = tx.Timestamp(r.Context(), recordsStorageScope(r))
		return err
	})
	if err != nil {
		return ""
	}
	return key + "\x00" + strconv.FormatInt(ts, 10)
}

// listObjects is GET/HEAD on a plural endpoint.
func (s *Server) listObjects(k kindRoute) Handler {
	return func(w http.ResponseWriter, r *http.Request, c *Call) error {
		p := k.path(r)
		q, qErr := s.parseQuery(c, query.Schema{})
		req := resource.ListRequest{Request: s.request(r, c, p, qErr), Query: q, Count: r.Method == http.MethodHead}
		l, err := s.engine.List(r.Context(), req)
		if err != nil {
			return err
		}
		if l.Unwritten {
			volatile(w)
		}
		reply := ListReply{Path: p, Collection: l.Collection, Query: q, Timestamp: l.Timestamp, Counted: true, Total: l.Total}
		if l.Next != "" {
			reply.Next = s.nextPage(r, c.Params, s.engine.Limit(q.Limit), l.Next)
		}
		if r.Method != http.MethodHead {
			items := make([]map[string]any, len(l.Objects))
			for i, o := range l.Objects {
				items[i] = project(o, o.Body(), q.Fields)
			}
			reply.Items = items
		}
		return s.writeList(w, r, c, reply)
	}
}

// parseQuery parses the request's list parameters (the error of a
// malformed query string first).
func (s *Server) parseQuery(c *Call, schema query.Schema, without ...string) (*query.Query, error) {
	if c.ParamsErr != nil {
		return nil, c.ParamsErr
	}
	return query.Parse(query.Without(c.Params, without...), schema, s.nowMS())
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func (s *Server) writeList(w http.ResponseWriter, r *http.Request, c *Call, l ListReply) error {
	setTimestamp(w, l.Timestamp)
	if l.Cache != nil {
		l.Cache(w)
	} else {
		s.cacheHeaders(w, c, l.Path, l.Collection)
	}
	if l.Next != "" {
		w.Header().Set("Next-Page", l.Next)
	}
	if l.Query != nil && l.Query.DeprecatedTo && w.Header().Get("Alert") == "" {
		// (The end of service's Alert wins, as Kinto sets it last.)
		w.Header().Set("Alert", `{"code": "soft-eol", "message": "_to is now deprecated, you should use _before instead", "url": "https://kinto.readthedocs.io/en/2.4.0/api/1.x/filtering.html#polling-for-changes"}`)
	}
	if r.Method == http.MethodHead {
		if l.Counted {
			n := strconv.FormatInt(l.Total, 10)
			w.Header().Set("Total-Objects", n)
			w.Header().Set("Total-Records", n)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	items := l.Items
	if items == nil {
		items = []any{}
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"data": items})
	return nil
}

// getObject is GET/HEAD on an object.
func (s *Server) getObject(k kindRoute) Handler {
	return func(w http.ResponseWriter, r *http.Request, c *Call) error {
		p := k.path(r)
		q, qErr := s.parseQuery(c, query.Schema{}, "_since", "_before", "_to", "_limit", "_sort", "_token")
		f, err := s.engine.Get(r.Context(), s.request(r, c, p, qErr))
		if err != nil {
			return err
		}
		setTimestamp(w, f.Object.LastModified)
		s.cacheHeaders(w, c, p, f.Collection)
		data := project(f.Object, f.Object.Body(), q.Fields)
		if len(q.Fields) > 0 {
			// Kinto keeps only the fields asked for, which drops the
			// permissions kept beside them.
			s.writeJSON(w, http.StatusOK, map[string]any{"data": data})
			return nil
		}
		s.writeJSON(w, http.StatusOK, objectBody{Data: data, Permissions: f.Perms})
		return nil
	}
}

// writeInput is a parsed write request body.
type writeInput struct {
	body  *resource.Body
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
		in.ops, in.err = resource.ValidatePatchOps(v)
		return in
	}
	in.body, in.err = parseEnvelope(v, k)
	return in
}

// writeRequest is the engine request of a write: the body's errors come
// after checkAccept's and before the preconditions', as in Kinto.
func (s *Server) writeRequest(r *http.Request, c *Call, p model.Path, in writeInput, invalid ...error) resource.WriteRequest {
	pre, precondErr := preconditions(r)
	req := resource.WriteRequest{Request: resource.Request{Path: p, Caller: c.Caller(), Pre: pre,
		Invalid: firstErr(append([]error{checkAccept(r), in.err, precondErr}, invalid...)...)}, Body: in.body, Ops: in.ops}
	switch in.media {
	case mediaMergePatch:
		req.Patch = resource.Merge
	case mediaJSONPatch:
		req.Patch = resource.JSONPatch
	}
	return req
}

// writeObject answers with one object, its ETag and its visible ACL.
func (s *Server) writeObject(w http.ResponseWriter, status int, o *storage.Object, perms map[string][]string) {
	setTimestamp(w, o.LastModified)
	s.writeJSON(w, status, objectBody{Data: o.Body(), Permissions: perms})
}

// writtenStatus is 201 for a creation, else 200.
func writtenStatus(wr resource.Written) int {
	if wr.Created {
		return http.StatusCreated
	}
	return http.StatusOK
}

// createObject is POST on a plural endpoint.
func (s *Server) createObject(k kindRoute) Handler {
	return func(w http.ResponseWriter, r *http.Request, c *Call) error {
		in := readWrite(r, k.kind, mediaJSON)
		res, err := s.engine.Create(r.Context(), s.writeRequest(r, c, k.path(r), in))
		if err != nil {
			return err
		}
		s.writeObject(w, writtenStatus(res), res.Object, res.Perms)
		return nil
	}
}

// putObject is PUT on an object: create or replace.
func (s *Server) putObject(k kindRoute) Handler {
	return func(w http.ResponseWriter, r *http.Request, c *Call) error {
		in := readWrite(r, k.kind, mediaJSON)
		res, err := s.engine.Put(r.Context(), s.writeRequest(r, c, k.path(r), in))
		if err != nil {
			return err
		}
		s.writeObject(w, writtenStatus(res), res.Object, res.Perms)
		return nil
	}
}

// patchObject is PATCH on an object, with plain JSON (shallow merge),
// JSON merge-patch or JSON-Patch bodies; Response-Behavior light and diff
// answer only the fields that changed.
func (s *Server) patchObject(k kindRoute) Handler {
	return func(w http.ResponseWriter, r *http.Request, c *Call) error {
		in := readWrite(r, k.kind, mediaJSON, mediaMergePatch, mediaJSONPatch)
		behavior := r.Header.Get("Response-Behavior")
		var behaviorErr error
		switch behavior {
		case "", "full", "light", "diff":
		default:
			behaviorErr = kerr.InvalidParam("header", kerr.Name("Response-Behavior"), fmt.Sprintf("%q is not one of full, light, diff", behavior))
		}
		res, err := s.engine.Patch(r.Context(), s.writeRequest(r, c, k.path(r), in, behaviorErr))
		if err != nil {
			return err
		}
		if behavior == "light" || behavior == "diff" {
			setTimestamp(w, res.Object.LastModified)
			s.writeJSON(w, http.StatusOK, map[string]any{"data": resource.ChangedFields(res.Before, res.Object, res.Sent, behavior == "diff")})
			return nil
		}
		s.writeObject(w, http.StatusOK, res.Object, res.Perms)
		return nil
	}
}

// deleteObject is DELETE on an object: a tombstone, and cascades.
func (s *Server) deleteObject(k kindRoute) Handler {
	return func(w http.ResponseWriter, r *http.Request, c *Call) error {
		supplied, _ := query.Get(c.Params, query.ModifiedField)
		tomb, err := s.engine.Delete(r.Context(), s.request(r, c, k.path(r), c.ParamsErr), supplied)
		if err != nil {
			return err
		}
		setTimestamp(w, tomb.LastModified)
		s.writeJSON(w, http.StatusOK, map[string]any{"data": tomb.Body()})
		return nil
	}
}

// deleteObjects is DELETE on a plural endpoint: every object the caller may
// delete that matches the filters (one page of them).
func (s *Server) deleteObjects(k kindRoute) Handler {
	return func(w http.ResponseWriter, r *http.Request, c *Call) error {
		q, qErr := s.parseQuery(c, query.Schema{})
		req := resource.ListRequest{Request: s.request(r, c, k.path(r), qErr), Query: q}
		res, err := s.engine.DeleteList(r.Context(), req)
		if err != nil {
			return err
		}
		setTimestamp(w, res.Timestamp)
		if res.Next != "" {
			w.Header().Set("Next-Page", s.nextPage(r, c.Params, s.engine.Limit(q.Limit), res.Next))
		}
		data := make([]map[string]any, len(res.Tombstones))
		for i, t := range res.Tombstones {
			data[i] = t.Body()
		}
		s.writeJSON(w, http.StatusOK, map[string]any{"data": data})
		return nil
	}
}
