// Package changes computes the changes monitor of the kinto-changes plugin:
// one entry per monitored collection, {id, last_modified, bucket,
// collection, host}, where last_modified is exactly that collection's
// records timestamp. It answers "which of these collections changed?" so a
// client can poll many collections with one request.
// (../shared/reference/kinto-changes.md.)
package changes

import (
	"cmp"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"kintogo/internal/config"
	"kintogo/internal/events"
	"kintogo/internal/query"
	"kintogo/internal/storage"
)

// Version is the version of the changes feed advertised in the capability.
const Version = "4.1.1"

// Monitor lists the monitored collections.
type Monitor struct {
	host      string
	resources []string // as configured, for the capability
	buckets   []string // bucket URIs monitored whole: "/buckets/main"
	every     bool     // "/buckets": every collection of every bucket
	exact     map[string]bool
	prefixes  []string
	excluded  []string // bucket or collection URIs left out
}

// NewMonitor reads the monitored resources and host from the settings. It returns
// an error for a resource URI that is neither a bucket nor a collection URI.
func NewMonitor(s *config.Settings) (*Monitor, error) {
	m := &Monitor{exact: map[string]bool{}, resources: s.List("changes.resources")}
	m.host = s.String("changes.http_host")
	if m.host == "" {
		m.host = s.String("http_host")
	}
	for _, uri := range m.resources {
		parts := strings.Split(strings.TrimPrefix(uri, "/"), "/")
		switch {
		case len(parts) == 1 && parts[0] == "buckets":
			// kintogo's own: the zero-configuration start monitors
			// everything.
			m.every = true
			m.prefixes = append(m.prefixes, "/buckets/")
		case len(parts) == 2 && parts[0] == "buckets" && parts[1] != "":
			m.buckets = append(m.buckets, uri)
			m.prefixes = append(m.prefixes, uri+"/collections/")
		case len(parts) == 4 && parts[0] == "buckets" && parts[2] == "collections" && parts[1] != "" && parts[3] != "":
			m.exact[uri] = true
			m.prefixes = append(m.prefixes, uri)
		default:
			return nil, fmt.Errorf("changes.resources: %q is not a bucket or collection URI (or /buckets, for all)", uri)
		}
	}
	m.excluded = s.List("changes.excluded_collections")
	return m, nil
}

// Host is the host of every entry.
func (m *Monitor) Host() string { return m.host }

// Resources are the configured URIs.
func (m *Monitor) Resources() []string { return append([]string{}, m.resources...) }

// Entry is one monitored collection.
type Entry struct {
	ID           string `json:"id"`
	LastModified int64  `json:"last_modified"`
	Bucket       string `json:"bucket"`
	Collection   string `json:"collection"`
	Host         string `json:"host"`
}

// Field implements query.Fielder, so that filters, sorting and pagination
// apply to entries.
func (e *Entry) Field(path string) (any, bool) {
	switch path {
	case "id":
		return e.ID, true
	case "last_modified":
		return e.LastModified, true
	case "bucket":
		return e.Bucket, true
	case "collection":
		return e.Collection, true
	case "host":
		return e.Host, true
	}
	return nil, false
}

// Schema is the closed set of fields of entries: filtering or sorting on
// another field is a 400.
var Schema = query.Schema{Closed: true, Fields: []string{"bucket", "collection", "host", "deleted"}}

// EntryID is the entry's id: the md5 of host + collection URI, formatted
// as a UUID (not a version 4 one).
func EntryID(host, bucket, collection string) string {
	sum := md5.Sum([]byte(host + "/buckets/" + bucket + "/collections/" + collection))
	h := hex.EncodeToString(sum[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// Entries returns the entries of every existing monitored collection,
// newest first (ties by bucket, then collection). A collection exists for
// the monitor from its creation (its records scope gets a timestamp then)
// until its deletion (which purges that timestamp).
func (m *Monitor) Entries(ctx context.Context, tx storage.Tx) ([]*Entry, error) {
	stamps, err := tx.Timestamps(ctx, "record", m.prefixes)
	if err != nil {
		return nil, err
	}
	entries := make([]*Entry, 0, len(stamps))
	for parent, ts := range stamps {
		if !m.monitors(parent) {
			continue
		}
		rest := strings.TrimPrefix(parent, "/buckets/")
		bid, cid, _ := strings.Cut(rest, "/collections/")
		entries = append(entries, &Entry{ID: EntryID(m.host, bid, cid), LastModified: ts, Bucket: bid, Collection: cid, Host: m.host})
	}
	slices.SortFunc(entries, compareEntries)
	return entries, nil
}

// monitors reports whether a collection URI is monitored: exactly listed, or
// a direct child of a listed bucket, and not excluded (an excluded bucket
// URI excludes all its collections).
func (m *Monitor) monitors(collURI string) bool {
	for _, ex := range m.excluded {
		if storage.UnderURI(collURI, ex) {
			return false
		}
	}
	if m.exact[collURI] {
		return true
	}
	if m.every {
		rest, ok := strings.CutPrefix(collURI, "/buckets/")
		bid, cid, ok2 := strings.Cut(rest, "/collections/")
		return ok && ok2 && bid != "" && cid != "" && !strings.Contains(bid, "/") && !strings.Contains(cid, "/")
	}
	for _, b := range m.buckets {
		rest, ok := strings.CutPrefix(collURI, b+"/collections/")
		if ok && rest != "" && !strings.Contains(rest, "/") {
			return true
		}
	}
	return false
}

// Timestamp is the monitor's own timestamp: the newest entry's, or 0 when
// there is none (the caller answers with the current time then).
func Timestamp(entries []*Entry) int64 {
	var ts int64
	for _, e := range entries {
		ts = max(ts, e.LastModified)
	}
	return ts
}

// Snapshot keeps the monitor's entries in memory, so that polls cost no
// storage query. It is valid for one version of the monitor's scope: the
// changes of records of monitored collections update it in place (Apply),
// other changes that may alter the set of entries (a monitored collection
// created or deleted, a bucket deleted, a flush) drop it, and the next
// poll rebuilds it with one storage read, which polls that arrive together
// share.
type Snapshot struct {
	monitor *Monitor
	store   storage.Storage
	version func() uint64

	mu      sync.Mutex
	entries []*Entry
	at      uint64 // the version the entries are valid for
	valid   bool
	flight  singleflight.Group
}

// NewSnapshot returns a snapshot of m's entries in store. version is the
// version of the monitor's scope, which every change of the entries
// moves.
func NewSnapshot(m *Monitor, store storage.Storage, version func() uint64) *Snapshot {
	return &Snapshot{monitor: m, store: store, version: version}
}

// Entries returns the current entries, newest first. The slice is shared:
// callers must not modify it.
func (s *Snapshot) Entries(ctx context.Context) ([]*Entry, error) {
	version := s.version()
	s.mu.Lock()
	if s.valid && s.at == version {
		entries := s.entries
		s.mu.Unlock()
		return entries, nil
	}
	s.mu.Unlock()
	v, err, _ := s.flight.Do(strconv.FormatUint(version, 10), func() (any, error) {
		// Shared: it must not fail because the first poller went away.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		var entries []*Entry
		err := s.store.View(ctx, func(tx storage.Tx) (err error) {
			entries, err = s.monitor.Entries(ctx, tx)
			return err
		})
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		// Keep it only if nothing changed meanwhile: a read that began
		// before a commit must not pass for the state after it.
		if s.version() == version {
			s.entries, s.at, s.valid = entries, version, true
		}
		s.mu.Unlock()
		return entries, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]*Entry), nil
}

// Affects reports whether events may change the monitor: records of
// monitored collections, monitored collections themselves, buckets that
// hold some, flushes and unknown changes (nil).
func (m *Monitor) Affects(evs []events.Event) bool {
	if evs == nil {
		return true
	}
	for _, ev := range evs {
		switch ev.ResourceName {
		case "record", "collection":
			if m.monitors("/buckets/" + ev.BucketID + "/collections/" + ev.CollectionID) {
				return true
			}
		case "bucket":
			if m.covers(ev.BucketID) {
				return true
			}
		case "":
			return true // a flush
		}
	}
	return false
}

// covers reports whether a bucket holds monitored collections.
func (m *Monitor) covers(bucketID string) bool {
	if m.every {
		return true
	}
	b := "/buckets/" + bucketID
	for _, p := range m.prefixes {
		if p == b+"/collections/" || strings.HasPrefix(p, b+"/collections/") {
			return true
		}
	}
	return false
}

// Apply brings the snapshot, valid for version from, to the state after
// evs, at version to: a record's change moves its collection's entry to
// its timestamp; any other change of the monitor drops the snapshot (the
// next poll rebuilds it). A snapshot that is not at version from any more
// is dropped.
func (s *Snapshot) Apply(evs []events.Event, from, to uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.valid || s.at != from || evs == nil {
		s.valid = false
		return
	}
	entries := s.entries
	copied := false
	for _, ev := range evs {
		switch ev.ResourceName {
		case "record":
			coll := "/buckets/" + ev.BucketID + "/collections/" + ev.CollectionID
			if !s.monitor.monitors(coll) {
				continue
			}
			i := slices.IndexFunc(entries, func(e *Entry) bool { return e.Bucket == ev.BucketID && e.Collection == ev.CollectionID })
			if i < 0 {
				s.valid = false
				return
			}
			if ev.Timestamp <= entries[i].LastModified {
				continue // a scope's timestamp never moves backwards
			}
			if !copied {
				entries, copied = slices.Clone(entries), true
			}
			moved := *entries[i]
			moved.LastModified = ev.Timestamp
			entries = slices.Delete(entries, i, i+1)
			at, _ := slices.BinarySearchFunc(entries, &moved, compareEntries)
			entries = slices.Insert(entries, at, &moved)
		case "group", "account":
		default:
			if s.monitor.Affects([]events.Event{ev}) {
				s.valid = false
				return
			}
		}
	}
	s.entries, s.at = entries, to
}

// compareEntries is the monitor's order: newest first, then by bucket and
// collection.
func compareEntries(a, b *Entry) int {
	if a.LastModified != b.LastModified {
		return cmp.Compare(b.LastModified, a.LastModified)
	}
	if a.Bucket != b.Bucket {
		return strings.Compare(a.Bucket, b.Bucket)
	}
	return strings.Compare(a.Collection, b.Collection)
}
