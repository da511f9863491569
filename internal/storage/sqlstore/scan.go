package sqlstore

import (
	"encoding/json"
	"strings"

	"kintogo/internal/storage"
)

// scanObjects reads rows of (id, last_modified, deleted, data as JSON text)
// into objects; tombstones get no data.
func scanObjects(rows Rows) ([]*storage.Object, error) {
	var size int64
	return scanObjectsSized(rows, &size)
}

// scanObjectsSized is scanObjects adding to size an estimate of the
// objects' memory.
func scanObjectsSized(rows Rows, size *int64) ([]*storage.Object, error) {
	var all []*storage.Object
	for rows.Next() {
		o := &storage.Object{}
		var raw string
		if err := rows.Scan(&o.ID, &o.LastModified, &o.Deleted, &raw); err != nil {
			return nil, err
		}
		*size += decodedSize(len(raw) + len(o.ID))
		if !o.Deleted {
			var err error
			if o.Data, err = decodeData(raw); err != nil {
				return nil, err
			}
		}
		all = append(all, o)
	}
	return all, rows.Err()
}

// scanGroups reads rows of (key, value) strings into key -> values,
// keeping the keys keep accepts (nil keeps all).
func scanGroups(rows Rows, keep func(key string) bool) (map[string][]string, error) {
	out := map[string][]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		if keep == nil || keep(k) {
			out[k] = append(out[k], v)
		}
	}
	return out, rows.Err()
}

// scanTimestamps reads rows of (parent, timestamp) into parent -> timestamp.
func scanTimestamps(rows Rows) (map[string]int64, error) {
	out := map[string]int64{}
	for rows.Next() {
		var parent string
		var ts int64
		if err := rows.Scan(&parent, &ts); err != nil {
			return nil, err
		}
		out[parent] = ts
	}
	return out, rows.Err()
}

// scanStrings reads rows of one string; no rows is an empty, non-nil
// slice.
func scanStrings(rows Rows) ([]string, error) {
	out := []string{}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// decodeData decodes stored JSON data, numbers kept exact (json.Number).
func decodeData(raw string) (map[string]any, error) {
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}
