// Package notify is what kinto_emailer and kinto_slack share: hooks in a
// collection's (else its bucket's) metadata that select changes and
// review events and render a template for each, the variables Kinto gives
// those templates, and a queue that delivers the messages after the
// commit, retrying, without ever holding or failing the write.
package notify

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"kintogo/internal/config"
	"kintogo/internal/httpapi"
	"kintogo/internal/kerr"
	"kintogo/internal/model"
	"kintogo/internal/resource"
	"kintogo/internal/storage"
)

// ResourceChanged is the Python name of the event of a change, as hooks
// select it.
const ResourceChanged = "kinto.core.events.ResourceChanged"

// Build makes the messages of the hooks that a change selected. vars are
// the template variables; tx reads what else a hook needs (groups).
type Build func(ctx context.Context, tx storage.Tx, hooks []map[string]any, vars map[string]any) ([]any, error)

// Check calls check with the configuration under key (when there is one)
// of every bucket or collection created or updated, in the transaction:
// its error refuses the write.
func Check(h *httpapi.Server, key string, check func(conf any, bucketID string) error) {
	h.Engine().Hook(resource.Hooks{InTransaction: []func(context.Context, *resource.Unit, resource.Change) error{
		func(ctx context.Context, u *resource.Unit, ch resource.Change) error {
			if ch.Action == "delete" || ch.Object == nil || (ch.Path.Kind != model.Bucket && ch.Path.Kind != model.Collection) {
				return nil
			}
			conf, ok := ch.Object.Data[key]
			if !ok {
				return nil
			}
			return check(conf, ch.Bucket())
		},
	}})
}

// Watch calls build, in the transaction, for every change of a record or
// a collection and every notice (the signer's review events) whose
// collection or bucket metadata has hooks under key, and hands the
// messages to q once the unit committed; q runs as the server's
// background work.
func Watch(h *httpapi.Server, key string, build Build, q *Queue) {
	h.Background(q.Run)
	h.WriteOrigins()
	settings := h.Settings()
	collect := func(ctx context.Context, u *resource.Unit, event string, ch resource.Change, fields map[string]any) error {
		if ch.Path.Kind != model.Record && ch.Path.Kind != model.Collection || ch.Object == nil {
			return nil
		}
		hooks, err := hooksOf(ctx, u.Tx, key, ch)
		if err != nil || len(hooks) == 0 {
			return err
		}
		msgs, err := build(ctx, u.Tx, hooks, Vars(ctx, settings, event, ch, fields))
		if err != nil || len(msgs) == 0 {
			return err
		}
		u.OnCommit(func() {
			for _, m := range msgs {
				q.Add(m)
			}
		})
		return nil
	}
	h.Engine().Hook(resource.Hooks{
		InTransaction: []func(context.Context, *resource.Unit, resource.Change) error{
			func(ctx context.Context, u *resource.Unit, ch resource.Change) error {
				return collect(ctx, u, ResourceChanged, ch, nil)
			},
		},
		Notice: []func(context.Context, *resource.Unit, resource.Notice) error{
			func(ctx context.Context, u *resource.Unit, n resource.Notice) error {
				return collect(ctx, u, n.Name, n.Change, n.Fields)
			},
		},
	})
}

// hooksOf reads the hooks under key: in the metadata of the changed
// collection (as it was, for a deletion), else of the record's
// collection, else of the bucket (they are not merged).
func hooksOf(ctx context.Context, tx storage.Tx, key string, ch resource.Change) ([]map[string]any, error) {
	bid, cid := ch.Bucket(), ch.Collection()
	var meta map[string]any
	if ch.Path.Kind == model.Collection {
		obj := ch.Object
		if ch.Action == "delete" && ch.Old != nil {
			obj = ch.Old
		}
		meta = obj.Data
	} else {
		coll, err := tx.Get(ctx, storage.Scope{Parent: "/buckets/" + bid, Resource: "collection"}, cid)
		if err != nil && !kerr.Is(err, kerr.NotFound) {
			return nil, err
		}
		if coll != nil {
			meta = coll.Data
		}
	}
	if _, ok := meta[key]; !ok {
		bucket, err := tx.Get(ctx, storage.Scope{Resource: "bucket"}, bid)
		if err != nil && !kerr.Is(err, kerr.NotFound) {
			return nil, err
		}
		meta = nil
		if bucket != nil {
			meta = bucket.Data
		}
	}
	conf, _ := meta[key].(map[string]any)
	list, _ := conf["hooks"].([]any)
	var hooks []map[string]any
	for _, h := range list {
		if m, ok := h.(map[string]any); ok {
			hooks = append(hooks, m)
		}
	}
	return hooks, nil
}

// Vars are the variables of a template, as Kinto's plugins give them:
// the event's payload (action, resource_name, uri, user_id, timestamp,
// bucket_id, collection_id, record_id, id, and a review event's fields),
// the event's name, root_url, client_address, user_agent and settings
// (project_name, project_version). A missing collection_id or record_id
// renders as itself ("{record_id}"), as Kinto leaves them.
func Vars(ctx context.Context, s *config.Settings, event string, ch resource.Change, fields map[string]any) map[string]any {
	o := resource.OriginOf(ctx)
	var user any
	if ch.Caller != nil && ch.Caller.UserID != "" {
		user = ch.Caller.UserID
	}
	vars := map[string]any{
		"event": event, "action": ch.Action, "resource_name": ch.Path.Kind.Name, "uri": ch.Path.URI(),
		"user_id": user, "timestamp": ch.Object.LastModified, "bucket_id": ch.Bucket(),
		"collection_id": "{collection_id}", "record_id": "{record_id}", "id": ch.Path.ID,
		"root_url": o.RootURL, "client_address": o.ClientAddress, "user_agent": o.UserAgent,
		"settings": map[string]any{"project_name": s.String("project_name"), "project_version": s.String("project_version")},
	}
	if cid := ch.Collection(); cid != "" {
		vars["collection_id"] = cid
	}
	vars[ch.Path.Kind.Name+"_id"] = ch.Path.ID
	for k, v := range fields {
		vars[k] = v
	}
	return vars
}

// filters are the fields a hook may select on.
var filters = []string{"event", "action", "resource_name", "id", "record_id", "collection_id"}

// Matches reports whether a hook selects an event: each of its filters
// equals the variable (or, starting with ^, is a regular expression
// matching its start), when the event has it.
func Matches(hook, vars map[string]any) bool {
	for _, f := range filters {
		want, ok := hook[f]
		if !ok {
			continue
		}
		have, ok := vars[f]
		if !ok {
			continue
		}
		w, _ := want.(string)
		h, _ := have.(string)
		if strings.HasPrefix(w, "^") {
			re, err := regexp.Compile(w)
			if err != nil || !re.MatchString(h) || re.FindStringIndex(h)[0] != 0 {
				return false
			}
			continue
		}
		if w != h {
			return false
		}
	}
	return true
}

// Queue delivers messages one at a time, in the background: a delivery
// that fails is tried again (after 1, 5, 30 seconds...), and given up
// (logged) after attempts tries. At most max messages wait; beyond, new
// ones are dropped and logged. A write never waits for it.
type Queue struct {
	name     string
	send     func(ctx context.Context, msg any) error
	log      *slog.Logger
	ch       chan any
	attempts int
	backoff  []time.Duration
}

// NewQueue returns a queue delivering with send once it runs (Run: the
// server's background work, so that it stops with the server).
func NewQueue(name string, log *slog.Logger, max, attempts int, backoff []time.Duration, send func(ctx context.Context, msg any) error) *Queue {
	return &Queue{name: name, send: send, log: log, ch: make(chan any, max), attempts: attempts, backoff: backoff}
}

// Add queues a message.
func (q *Queue) Add(msg any) {
	select {
	case q.ch <- msg:
	default:
		q.log.Error(q.name+": too many messages waiting; one is dropped", "waiting", cap(q.ch))
	}
}

// Run delivers the messages until ctx ends.
func (q *Queue) Run(ctx context.Context) {
	for {
		var msg any
		select {
		case <-ctx.Done():
			return
		case msg = <-q.ch:
		}
		for attempt := 1; ; attempt++ {
			err := q.send(ctx, msg)
			if err == nil {
				break
			}
			if attempt >= q.attempts || ctx.Err() != nil {
				q.log.Error(q.name+": could not deliver a message; given up", "attempts", attempt, "err", err)
				break
			}
			wait := q.backoff[min(attempt-1, len(q.backoff)-1)]
			q.log.Warn(q.name+": could not deliver a message; trying again", "attempt", attempt, "in", wait, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
	}
}
