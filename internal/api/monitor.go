package api

import (
	"net/http"

	"kintogo/internal/changes"
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
func (s *Server) monitorRecords(w http.ResponseWriter, r *http.Request, c *call) error {
	if c.paramsErr != nil {
		return c.paramsErr
	}
	pre, err := preconditions(r)
	if err != nil {
		return err
	}
	q, err := query.Parse(c.params, changes.Schema, s.nowMS())
	if err != nil {
		return err
	}
	entries, err := s.monitorEntries(r)
	if err != nil {
		return err
	}
	ts := changes.Timestamp(entries)
	if ts == 0 {
		ts = s.nowMS()
	}
	if err := resource.ReadPreconditions(pre, ts, nil); err != nil {
		if !kerr.Is(err, kerr.NotModified) || !s.settings.Bool("changes.empty_200_on_not_modified") {
			return err
		}
		// The CDN-friendly answer of later plugin versions: a cacheable
		// 200 with nothing new instead of a 304.
		return s.writeList(w, r, c, listReply{path: monitorPath, monitor: true, query: q, ts: ts})
	}
	selected := make([]*changes.Entry, 0, len(entries))
	for _, e := range entries {
		if query.Match(e, q.Filters) && q.AfterLast(e) {
			selected = append(selected, e)
		}
	}
	query.SortSlice(selected, q.Sort)
	limit := s.engine.Limit(q.Limit)
	next := ""
	if len(selected) > limit {
		selected = selected[:limit]
		next = s.nextPage(r, c.params, limit, query.Token(selected[len(selected)-1], q.Sort, q.Offset+int64(limit)))
	}
	var items any = selected // entries encode as structs: no map to build
	if q.Fields != nil {
		projected := make([]map[string]any, len(selected))
		for i, e := range selected {
			projected[i] = project(e, map[string]any{
				"id": e.ID, "last_modified": e.LastModified, "bucket": e.Bucket, "collection": e.Collection, "host": e.Host,
			}, q.Fields)
		}
		items = projected
	}
	return s.writeList(w, r, c, listReply{path: monitorPath, monitor: true, query: q, ts: ts, next: next, items: items})
}
