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

// snapshot is GET/HEAD /buckets/{bid}/snapshot/collections/{cid}@{timestamp}
// (Kinto's history_snapshot): the collection's records as they were at
// the timestamp, newest first. Records unchanged since are read as they
// are; those changed or deleted since are their newest history entry
// not newer than the timestamp; those created since are left out.
// Readers and writers of the bucket or of the collection may ask (by
// their permissions, as Kinto checks them); the collection need not exist
// any more. At most storage_max_fetch_size records are answered, from at
// most snapshotBudget pages of history: more gets a 400 saying so (Kinto
// reads it all).
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
		changed := map[string]bool{}
		for _, rec := range records {
			switch {
			case rec.LastModified > ts:
				changed[rec.ID] = true
			case !rec.Deleted:
				out = append(out, version{rec.LastModified, rec.Body()})
			}
		}
		if len(changed) == 0 {
			return nil
		}
		found, err := s.versionsAt(ctx, tx, bid, cid, changed, ts, max)
		out = append(out, found...)
		return err
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

// snapshotBudget bounds the history entries one snapshot reads, as a
// multiple of storage_max_fetch_size: a collection changed that much
// since the timestamp is refused rather than rebuilt.
const snapshotBudget = 10

// versionsAt returns, for each changed record that has one, the record of
// its newest history entry not newer than ts: the collection's record
// entries are read newest first, a page of max at a time, until every
// changed record has its version, or the history ends, or
// snapshotBudget pages were read (a 400).
func (s *plugin) versionsAt(ctx context.Context, tx storage.Tx, bid, cid string, changed map[string]bool, ts int64, max int) ([]version, error) {
	filters := query.Compile([]query.Filter{
		{Field: "resource_name", Op: query.EQ, Value: "record"},
		{Field: "collection_id", Op: query.EQ, Value: cid},
		{Field: "target.data.last_modified", Op: query.MAX, Value: ts},
	})
	opts := storage.ListOptions{Filters: filters, Limit: max,
		Sort: []query.Sort{{Field: query.ModifiedField, Desc: true}, {Field: query.IDField, Desc: true}}}
	seen := map[string]bool{}
	var out []version
	for pages := 0; ; pages++ {
		if pages == snapshotBudget {
			return nil, kerr.InvalidParam("path", kerr.Name("timestamp"), "The collection changed too much since this timestamp: its snapshot is not served (at most "+
				strconv.Itoa(snapshotBudget*max)+" history entries are read)")
		}
		if err := storage.Canceled(ctx); err != nil {
			return nil, err
		}
		entries, err := tx.List(ctx, historyScope(bid), opts)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			rid, _ := e.Data["record_id"].(string)
			if !changed[rid] || seen[rid] {
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
			out = append(out, version{asInt(data[query.ModifiedField]), data})
		}
		if len(seen) == len(changed) || len(entries) < max {
			return out, nil
		}
		last := entries[len(entries)-1]
		opts.After = map[string]any{query.ModifiedField: last.LastModified, query.IDField: last.ID}
	}
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
