package api

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// broadcaster remembers the last version /__broadcasts__ published.
type broadcaster struct {
	mu          sync.Mutex
	version     int64
	publishedAt time.Time
}

// broadcasts is GET /__broadcasts__, pulled by the Push service: the
// version of the monitor (its newest timestamp, preview collections left
// out), debounced so that a burst of changes publishes few versions:
// a new version is published when the last one is older than the minimum
// interval and either the change is larger than that interval or has
// settled for that long.
func (s *Server) broadcasts(w http.ResponseWriter, r *http.Request, c *call) error {
	min := time.Duration(s.settings.Int("push_broadcast_min_debounce_interval_seconds")) * time.Second
	now := s.opts.Now()
	b := &s.broadcast
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.publishedAt.IsZero() || now.Sub(b.publishedAt) > min {
		entries, err := s.monitorEntries(r)
		if err != nil {
			return err
		}
		var current int64
		for _, e := range entries {
			if !strings.Contains(e.Bucket+"/"+e.Collection, "-preview") {
				current = max(current, e.LastModified)
			}
		}
		if current == 0 {
			current = now.UnixMilli()
		}
		switch {
		case b.publishedAt.IsZero():
			b.version, b.publishedAt = current, now
		case current > b.version:
			jump := time.Duration(current-b.version) * time.Millisecond
			age := now.Sub(time.UnixMilli(current))
			if jump > min || age > min {
				b.version, b.publishedAt = current, now
			}
		}
	}
	s.writeJSON(w, http.StatusOK, map[string]any{
		"broadcasts": map[string]string{"remote-settings/monitor_changes": `"` + strconv.FormatInt(b.version, 10) + `"`},
		"code":       200,
	})
	return nil
}
