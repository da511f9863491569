// Package changes is the changes feed of kinto-changes and
// remote-settings (kinto_changes, kinto_remote_settings.changes): which of
// many collections changed, in one request. The monitor list
// (/buckets/monitor/collections/changes/records) has one entry per
// monitored collection, whose last_modified is exactly that collection's
// records timestamp; changesets (a collection's metadata and records, or
// the monitor's entries) are what Firefox polls; /__broadcasts__ answers
// the Push service. Polls are answered from memory: a snapshot of the
// monitored collections' timestamps valid for one data generation, and the
// host's answer cache. Long-polls and event streams (the host's push) wait
// for changes instead of polling.
// (../shared/reference/kinto-changes.md.)
package changes

import (
	"embed"
	"io/fs"
	"net/http"
	"time"

	"kintogo/internal/events"
	"kintogo/internal/httpapi"
)

// Plugin is the changes feed.
type Plugin struct{}

// Name implements plugins.Plugin.
func (Plugin) Name() string { return "kinto_changes" }

// plugin is the provisioned changes feed.
type plugin struct {
	h        *httpapi.Server
	monitor  *Monitor
	snapshot *Snapshot
	// decisions are permission decisions of changesetDecision.
	decisions *httpapi.Memo
	// changesetBody is the changeset of callers who may read every
	// record, behind the answer cache.
	changesetBody httpapi.Handler
	readonly      bool
	// changes.since_max_age_days and its redirects' TTL.
	sinceMaxAgeDays, sinceRedirectTTL int64
	// changes.empty_200_on_not_modified.
	empty200 bool
	// push_broadcast_min_debounce_interval_seconds.
	broadcastDebounce time.Duration
	// scheme of the monitor's redirects (http_scheme, default https).
	scheme string
}

// monitorScope is the scope of the monitor's entries: a bucket no client
// can name (ids never start with a NUL).
var monitorScope = events.Scope{Bucket: "\x00monitor"}

func monitorScopeOf(*http.Request) events.Scope { return monitorScope }

// maxDecisions bounds the permission decisions kept per data generation
// (each holds a bucket, a collection and a user id: at most about a
// kilobyte).
const maxDecisions = 16384

// Provision implements plugins.Plugin.
func (Plugin) Provision(h *httpapi.Server) error {
	settings := h.Settings()
	m, err := NewMonitor(settings)
	if err != nil {
		return err
	}
	s := &plugin{h: h, monitor: m, readonly: settings.Bool("readonly"),
		sinceMaxAgeDays:   settings.Int("changes.since_max_age_days"),
		sinceRedirectTTL:  settings.Int("changes.since_max_age_redirect_ttl_seconds"),
		empty200:          settings.Bool("changes.empty_200_on_not_modified"),
		broadcastDebounce: time.Duration(settings.Int("push_broadcast_min_debounce_interval_seconds")) * time.Second,
		scheme:            settings.String("http_scheme"),
		decisions:         httpapi.NewMemo(maxDecisions, 0),
	}
	s.snapshot = NewSnapshot(m, h.Engine().Store(), func() uint64 { return h.Version(monitorScope) })
	s.changesetBody = h.Cacheable(s.changesetOf(nil), changesetKey, httpapi.RecordsScope)
	// The monitor follows the commits (of any node) that change it, and
	// only those wake its polls and streams.
	wake := make(chan struct{}, 1)
	h.OnChange(func(evs []events.Event) {
		if !m.Affects(evs) {
			return
		}
		from := h.Version(monitorScope)
		h.Touch(monitorScope)
		s.snapshot.Apply(evs, from, h.Version(monitorScope))
		select {
		case wake <- struct{}{}:
		default:
		}
	})
	if !s.readonly {
		go s.publisher(wake)
	}

	// Kinto registers no HEAD view on the monitor list: HEAD reuses GET,
	// without counts.
	monitorExpose := func(string) []string { return httpapi.ListExpose(http.MethodGet) }
	h.Handle("/v1/buckets/monitor/collections/changes/records", httpapi.Endpoint{Name: "changes-plural", Expose: monitorExpose, Public: true, Methods: map[string]httpapi.Handler{
		"GET": h.Pushable(s.withMonitorShortcuts(h.Cacheable(s.monitorRecords, httpapi.RawKey, monitorScopeOf), false), s.monitorNewer, s.streamMonitor, nil, monitorScopeOf),
	}})
	// The monitor has no individual entries; its parent objects need not
	// exist. Record URLs under it fall through to the records routes.
	public := func(name string, hd httpapi.Handler) httpapi.Endpoint {
		return httpapi.Endpoint{Name: name, Expose: httpapi.BaseExpose, Methods: map[string]httpapi.Handler{"GET": hd}, Public: true}
	}
	monitorChangeset := public("collection-changeset",
		h.Pushable(s.withMonitorShortcuts(h.Cacheable(s.monitorChangeset, changesetKey, monitorScopeOf), true), s.monitorNewer, s.streamMonitor, nil, monitorScopeOf))
	monitorChangeset.Values = map[string]string{"bid": "monitor", "cid": "changes"}
	h.Handle("/v1/buckets/monitor/collections/changes/changeset", monitorChangeset)
	h.Handle("/v1/buckets/{bid}/collections/{cid}/changeset", httpapi.Endpoint{Name: "collection-changeset", Expose: httpapi.BaseExpose, Methods: map[string]httpapi.Handler{
		"GET": h.Pushable(s.collectionChangeset, h.RecordsNewer, h.StreamRecords, s.changesetAccess, httpapi.RecordsScope),
	}})
	h.Handle("/v1/__broadcasts__", public("broadcast", s.broadcasts))
	// The live view: a page of kintogo's own over the monitor's stream,
	// public like the monitor.
	h.HandleTree(LivePrefix, httpapi.TreeNames{Home: "changes_live", Files: "changes_live_static", Redirect: "changes_live_redirect"}, h.StaticFiles(LivePrefix, func() fs.FS { return liveFiles },
		httpapi.StaticOptions{Index: "index.html", CSP: "default-src 'self'"}))

	// kintogo's own: wait for changes instead of polling. (A capability
	// of its own: clients compare the changes capability exactly.)
	h.Capability("changes_push", map[string]any{
		"description":      "Wait for changes: long-poll with _wait, or Server-Sent Events with Accept: text/event-stream.",
		"url":              "https://github.com/kintogo/kintogo#push",
		"long_poll":        "_wait",
		"max_wait_seconds": settings.Int("push.max_wait_seconds"),
		"event_stream":     "text/event-stream",
	})
	h.Capability("changes", map[string]any{
		"description": "Track modifications of records in Kinto and store the collection timestamps into a specific bucket and collection.",
		"url":         "http://kinto.readthedocs.io/en/latest/tutorials/synchronisation.html#polling-for-remote-changes",
		"version":     Version,
		"collections": m.Resources(),
	})
	return nil
}

// LivePrefix is where the live view of the feed is served.
const LivePrefix = "/v1/changes/"

//go:embed live
var live embed.FS

var liveFiles, _ = fs.Sub(live, "live")
