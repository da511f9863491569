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
func (s *plugin) broadcasts(w http.ResponseWriter, r *http.Request, c *httpapi.Call) error {
	ctx := r.Context()
	min := s.broadcastDebounce
	now := s.h.Now()
	var last published
	var found bool
	err := s.h.View(ctx, func(tx storage.Tx) (err error) {
		last, found, err = readPublished(ctx, tx)
		return err
	})
	if err != nil {
		return err
	}
	if !found || now.Sub(last.at) > min {
		entries, err := s.entries(r)
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
		publish := !found
		if found && current > last.version {
			jump := time.Duration(current-last.version) * time.Millisecond
			publish = jump > min || now.Sub(time.UnixMilli(current)) > min
		}
		if publish && s.readonly {
			// A read-only node cannot store what it publishes: it answers
			// what the writable nodes published, or the current version.
			if !found {
				last = published{version: current, at: now}
			}
		} else if publish {
			last, err = s.publish(ctx, current, now)
			if err != nil {
				return err
			}
		}
	}
	s.h.WriteJSON(w, http.StatusOK, map[string]any{
		"broadcasts": map[string]string{"remote-settings/monitor_changes": `"` + strconv.FormatInt(last.version, 10) + `"`},
		"code":       200,
	})
	return nil
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
