package changes

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"kintogo/internal/httpapi"
	"kintogo/internal/kerr"
	"kintogo/internal/resource"
	"kintogo/internal/storage"
)

// The published broadcast is stored like an object, so that every node
// sharing the database publishes the same version.
var (
	broadcastScope = storage.Scope{Parent: "/__broadcasts__", Resource: "broadcast"}
	broadcastID    = "monitor_changes"
)

// published is the last published broadcast.
type published struct {
	version int64
	at      time.Time
}

func readPublished(ctx context.Context, tx storage.Tx) (published, bool, error) {
	o, err := tx.Get(ctx, broadcastScope, broadcastID)
	if kerr.Is(err, kerr.NotFound) {
		return published{}, false, nil
	}
	if err != nil {
		return published{}, false, err
	}
	v, _ := o.Data["version"].(json.Number).Int64()
	at, _ := o.Data["published_at"].(json.Number).Int64()
	return published{version: v, at: time.UnixMilli(at)}, true, nil
}

// broadcasts is GET /__broadcasts__, pulled by the Push service: the
// version of the monitor (its newest timestamp, preview collections left
// out), debounced so that a burst of changes publishes few versions. A new
// version is published when the last one is older than the minimum
// interval and the change is either larger than that interval or has
// settled for that long (remote-settings' rules).
//
// Every node answers the version published in the database, which the
// writable nodes publish as commits arrive and as they settle (publisher),
// whatever node the Push service asks: the nodes of a cluster, readers on
// a standby included, answer the same version (remote-settings' ADR 007
// found a version per worker).
func (s *plugin) broadcasts(w http.ResponseWriter, r *http.Request, c *httpapi.Call) error {
	last, err := s.evaluate(r.Context(), r)
	if err != nil {
		return err
	}
	s.h.WriteJSON(w, http.StatusOK, map[string]any{
		"broadcasts": map[string]string{"remote-settings/monitor_changes": `"` + strconv.FormatInt(last.version, 10) + `"`},
		"code":       200,
	})
	return nil
}

// evaluate applies the debounce rules now: on a writable node it
// publishes the monitor's version when they allow; it returns what is
// published (on a read-only node where nothing was ever published, the
// current version).
func (s *plugin) evaluate(ctx context.Context, r *http.Request) (published, error) {
	min := s.broadcastDebounce
	now := s.h.Now()
	var last published
	var found bool
	err := s.h.View(ctx, func(tx storage.Tx) (err error) {
		last, found, err = readPublished(ctx, tx)
		return err
	})
	if err != nil {
		return last, err
	}
	if found && (s.readonly || now.Sub(last.at) <= min) {
		return last, nil
	}
	current, err := s.broadcastVersion(r)
	if err != nil {
		return last, err
	}
	if current == 0 {
		current = now.UnixMilli()
	}
	publish := !found
	if found && current > last.version {
		jump := time.Duration(current-last.version) * time.Millisecond
		publish = jump > min || now.Sub(time.UnixMilli(current)) > min
	}
	switch {
	case !publish:
		return last, nil
	case s.readonly:
		// Nothing published yet, and nothing this node can store.
		return published{version: current, at: now}, nil
	}
	return s.publish(ctx, current, now)
}

// broadcastVersion is the monitor's newest timestamp, preview collections
// left out (0: none).
func (s *plugin) broadcastVersion(r *http.Request) (int64, error) {
	entries, err := s.entries(r)
	if err != nil {
		return 0, err
	}
	var current int64
	for _, e := range entries {
		if !strings.Contains(e.Bucket+"/"+e.Collection, "-preview") {
			current = max(current, e.LastModified)
		}
	}
	return current, nil
}

// publisher publishes the versions the debounce rules allow as they allow
// them, on a writable node: after the commits that change the monitor
// (any node's) and when a pending change has settled, so that the
// published version does not depend on when the Push service asks, nor
// whom. It runs until the process ends.
func (s *plugin) publisher(wake <-chan struct{}) {
	r := (&http.Request{}).WithContext(context.Background())
	timer := time.NewTimer(time.Hour)
	for {
		select {
		case <-wake:
		case <-timer.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		last, err := s.evaluate(ctx, r)
		var current int64
		if err == nil {
			current, err = s.broadcastVersion(r.WithContext(ctx))
		}
		cancel()
		// Next look: when the pending change may be published (the
		// rules of evaluate), at most every publisherPeriod.
		next := time.Hour
		if err != nil {
			next = 5 * time.Second
		} else if current > last.version {
			min := s.broadcastDebounce
			at := last.at.Add(min)
			if time.Duration(current-last.version)*time.Millisecond <= min {
				at = maxTime(at, time.UnixMilli(current).Add(min))
			}
			next = time.Until(at) + time.Millisecond
		}
		timer.Reset(max(next, publisherPeriod))
		time.Sleep(publisherPeriod)
	}
}

// publisherPeriod is the least time between two evaluations of the
// publisher: commits in bursts cost one.
const publisherPeriod = 100 * time.Millisecond

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// publish stores a new version, unless another request (or node) published
// a newer one meanwhile, and returns what is published.
func (s *plugin) publish(ctx context.Context, version int64, now time.Time) (published, error) {
	return resource.Write(ctx, s.h.Engine(), func(u *resource.Unit) (published, error) {
		tx := u.Tx
		last, found, err := readPublished(ctx, tx)
		if err != nil {
			return published{}, err
		}
		if found && last.version >= version {
			return last, nil
		}
		_, err = tx.Put(ctx, broadcastScope, &storage.Object{ID: broadcastID, Data: map[string]any{
			"version": json.Number(strconv.FormatInt(version, 10)), "published_at": json.Number(strconv.FormatInt(now.UnixMilli(), 10)),
		}})
		return published{version: version, at: now}, err
	})
}
