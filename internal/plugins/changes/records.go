package changes

import (
	"net/http"

	"kintogo/internal/httpapi"
	"kintogo/internal/kerr"
	"kintogo/internal/model"
	"kintogo/internal/query"
	"kintogo/internal/resource"
)

// monitorPath names the monitor list for cache settings
// (monitor.changes.record_cache_expires_seconds).
var monitorPath = model.Path{Kind: model.Record, BucketID: "monitor", CollectionID: "changes"}

// monitorRecords is GET/HEAD /buckets/monitor/collections/changes/records:
// one entry per monitored collection. It is public, never stale (read in
// the same snapshot as the collections' timestamps) and needs no monitor
// bucket. Filters, sorting and pagination work as on any Kinto list, on the
// entries' fields only.
func (s *plugin) monitorRecords(w http.ResponseWriter, r *http.Request, c *httpapi.Call) error {
	if c.ParamsErr != nil {
		return c.ParamsErr
	}
	pre, err := httpapi.Preconditions(r)
	if err != nil {
		return err
	}
	q, err := query.Parse(c.Params, Schema, s.h.Engine().NowMS())
	if err != nil {
		return err
	}
	entries, err := s.entries(r)
	if err != nil {
		return err
	}
	ts := Timestamp(entries)
	if ts == 0 {
		ts = s.h.Engine().NowMS()
	}
	if err := resource.ReadPreconditions(pre, ts, nil); err != nil {
		if !kerr.Is(err, kerr.NotModified) || !s.empty200 {
			return err
		}
		// The CDN-friendly answer of later plugin versions: a cacheable
		// 200 with nothing new instead of a 304.
		return s.h.WriteList(w, r, c, httpapi.ListReply{Path: monitorPath, Cache: s.monitorCache(c), Query: q, Timestamp: ts})
	}
	selected := make([]*Entry, 0, len(entries))
	for _, e := range entries {
		if query.Match(e, q.Filters) && q.AfterLast(e) {
			selected = append(selected, e)
		}
	}
	query.SortSlice(selected, q.Sort)
	limit := s.h.Engine().Limit(q.Limit)
	next := ""
	if len(selected) > limit {
		selected = selected[:limit]
		next = s.h.NextPage(r, c.Params, limit, query.Token(selected[len(selected)-1], q.Sort, q.Offset+int64(limit)))
	}
	var items any = selected // entries encode as structs: no map to build
	if q.Fields != nil {
		projected := make([]map[string]any, len(selected))
		for i, e := range selected {
			projected[i] = httpapi.Project(e, map[string]any{
				"id": e.ID, "last_modified": e.LastModified, "bucket": e.Bucket, "collection": e.Collection, "host": e.Host,
			}, q.Fields)
		}
		items = projected
	}
	return s.h.WriteList(w, r, c, httpapi.ListReply{Path: monitorPath, Cache: s.monitorCache(c), Query: q, Timestamp: ts, Next: next, Items: items})
}

// monitorCache sets the monitor list's cache headers: the plugin's
// (monitor.changes.record_cache_*), never Kinto's default for records.
func (s *plugin) monitorCache(c *httpapi.Call) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Cache-Control", "no-cache, no-store")
		s.changesetCache(w, "monitor", "changes", c.Params)
	}
}
