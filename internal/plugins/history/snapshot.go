package history

import (
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"kintogo/internal/httpapi"
	"kintogo/internal/kerr"
	"kintogo/internal/model"
	"kintogo/internal/pyfmt"
	"kintogo/internal/query"
	"kintogo/internal/storage"
)

// snapshotBatch is how many records' history one query looks for.
const snapshotBatch = 100

// snapshot is GET/HEAD /buckets/{bid}/snapshot/collections/{cid}@{timestamp}
// (Kinto's history_snapshot): the collection's records as they were at
// the timestamp, newest first. Records unchanged since are read as they
// are; those changed or deleted since are their newest history entry
// not newer than the timestamp; those created since are left out.
// Readers and writers of the bucket or of the collection may ask (by
// their permissions, as Kinto checks them); the collection need not exist
// any more. At most storage_max_fetch_size records are answered: a
// larger collection gets a 400 saying so (Kinto reads it all).
func (s *plugin) snapshot(w http.ResponseWriter, r *http.Request, c *httpapi.Call) error {
	ctx := r.Context()
	bid := r.PathValue("bid")
	cid, rawTS, ok := strings.Cut(r.PathValue("at"), "@")
	if !ok {
		return kerr.E(kerr.MissingResource, "")
	}
	if !model.Bucket.ValidID(bid) {
		return kerr.ParentNotFound("bucket", bid)
	}
	if !model.Collection.ValidID(cid) {
		return kerr.ParentNotFound("collection", cid)
	}
	ts, err := strconv.ParseInt(rawTS, 10, 64)
	if err != nil || ts < 0 {
		msg := "Invalid timestamp " + pyfmt.Repr(rawTS)
		return kerr.InvalidParam("path", kerr.Name("timestamp"), msg)
	}
	bucket := model.Path{Kind: model.Bucket, ID: bid}
	coll := model.Path{Kind: model.Collection, BucketID: bid, ID: cid}
	max := int(s.h.Settings().Int("storage_max_fetch_size"))
	var out []version
	err = s.h.View(ctx, func(tx storage.Tx) error {
		if err := c.LoadPrincipals(ctx, tx); err != nil {
			return err
		}
		may, err := tx.HasAny(ctx, []storage.ACE{
			{URI: bucket.URI(), Permission: "read"}, {URI: bucket.URI(), Permission: "write"},
			{URI: coll.URI(), Permission: "read"}, {URI: coll.URI(), Permission: "write"},
		}, c.Principals())
		if err != nil {
			return err
		}
		if !may {
			return c.Denied()
		}
		records, err := tx.List(ctx, storage.Scope{Parent: coll.URI(), Resource: "record"},
			storage.ListOptions{IncludeDeleted: true, Limit: max + 1})
		if err != nil {
			return err
		}
		if len(records) > max {
			return kerr.InvalidParam("path", kerr.Name("collection_id"),
				"The collection has more than "+strconv.Itoa(max)+" records (storage_max_fetch_size): its snapshots are not served")
		}
		var changed []any
		for _, rec := range records {
			switch {
			case rec.LastModified > ts:
				changed = append(changed, rec.ID)
			case !rec.Deleted:
				out = append(out, version{rec.LastModified, rec.Body()})
			}
		}
		// The newest entry of each changed record not newer than ts, a
		// batch of records at a time, at most max entries a query (a
		// batch that fills it asks again record by record).
		for batch := range slices.Chunk(changed, snapshotBatch) {
			found, err := s.lastVersions(ctx, tx, bid, cid, batch, ts, max)
			if err != nil {
				return err
			}
			out = append(out, found...)
		}
		return nil
	})
	if err != nil {
		return err
	}
	slices.SortStableFunc(out, func(a, b version) int { return cmp.Compare(b.lastModified, a.lastModified) })
	data := make([]map[string]any, len(out))
	for i, v := range out {
		data[i] = v.body
	}
	s.h.WriteJSON(w, http.StatusOK, map[string]any{"data": data})
	return nil
}

// version is a record as a snapshot answers it.
type version struct {
	lastModified int64
	body         map[string]any
}

// lastVersions returns, for each record id of ids that has one, the
// record of its newest history entry whose record is not newer than ts.
func (s *plugin) lastVersions(ctx context.Context, tx storage.Tx, bid, cid string, ids []any, ts int64, max int) ([]version, error) {
	filters := query.Compile([]query.Filter{
		{Field: "resource_name", Op: query.EQ, Value: "record"},
		{Field: "collection_id", Op: query.EQ, Value: cid},
		{Field: "record_id", Op: query.IN, Value: ids},
		{Field: "target.data.last_modified", Op: query.MAX, Value: ts},
	})
	entries, err := tx.List(ctx, historyScope(bid), storage.ListOptions{Filters: filters,
		Sort: []query.Sort{{Field: query.ModifiedField, Desc: true}}, Limit: max})
	if err != nil {
		return nil, err
	}
	if len(entries) == max && len(ids) > 1 {
		// Perhaps cut short: one record at a time, each a query of at
		// most max entries of which the first is the one.
		var out []version
		for _, id := range ids {
			found, err := s.lastVersions(ctx, tx, bid, cid, []any{id}, ts, 1)
			if err != nil {
				return nil, err
			}
			out = append(out, found...)
		}
		return out, nil
	}
	seen := map[string]bool{}
	var out []version
	for _, e := range entries {
		rid, _ := e.Data["record_id"].(string)
		if seen[rid] {
			continue
		}
		seen[rid] = true
		target, _ := e.Data["target"].(map[string]any)
		data, _ := target["data"].(map[string]any)
		if data == nil || data[query.DeletedField] == true {
			// Deleted at ts (Kinto answers the tombstone when the
			// record was created again since).
			continue
		}
		lm := asInt(data[query.ModifiedField])
		out = append(out, version{lm, data})
	}
	return out, nil
}

// asInt is a stored JSON number as an integer (0 for anything else).
func asInt(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case int:
		return int64(n)
	case float64:
		return int64(n)
	case json.Number:
		i, _ := n.Int64()
		return i
	}
	return 0
}
