package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"kintogo/internal/events"
	"kintogo/internal/kerr"
	"kintogo/internal/model"
	"kintogo/internal/query"
	"kintogo/internal/resource"
	"kintogo/internal/storage"
)

// Push: clients wait for changes instead of polling. On the monitor and
// changeset endpoints and on a collection's records list:
//
//   - long-poll: `_wait=N` holds the request while nothing newer than
//     `_since` exists, and answers as soon as a change commits (on any
//     node), or at the deadline, exactly what the plain request answers;
//   - Server-Sent Events: with `Accept: text/event-stream`, the same URLs
//     stream one event per changed monitor entry or record, with the
//     timestamp as event id, resumable with Last-Event-ID or `_since`.
//
// A waiting request or a stream holds no queue: it keeps a cursor, sleeps
// until the next commit (Server.nextChange) and then reads what is newer
// than its cursor. A slow client costs nothing but its connection, and is
// disconnected when a write times out; it resumes from its last event id.

// pushSettings are read once per request.
func (s *Server) maxWait() time.Duration {
	return s.cfg.Push.MaxWait
}

func wantsStream(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

// newerFunc reports whether something newer than since exists for the
// request.
type newerFunc func(ctx context.Context, r *http.Request, c *Call, since int64) (bool, error)

// authorizeFunc checks, before a long-poll waits, that the caller may read
// what it waits for: nobody may learn when something it cannot read
// changes.
type authorizeFunc func(ctx context.Context, r *http.Request, c *Call) error

// longPoll waits, for a request with `_wait` and `_since`, until newer
// reports a change or the deadline passes, once authorize (nil: public)
// allowed it. It returns false when the client went away.
func (s *Server) longPoll(r *http.Request, c *Call, newer newerFunc, authorize authorizeFunc, scope events.Scope) (bool, error) {
	raw, ok := query.Get(c.Params, "_wait")
	if !ok {
		return true, nil
	}
	secs, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || secs < 0 {
		return false, kerr.InvalidParam("querystring", kerr.Name("_wait"), strconv.Quote(raw)+" is not a number of seconds")
	}
	since, hasSince := rawInt(c.Params, "_since")
	wait := min(time.Duration(secs)*time.Second, s.maxWait())
	if !hasSince || wait <= 0 {
		return true, nil
	}
	if authorize != nil {
		if err := authorize(r.Context(), r, c); err != nil {
			return false, err
		}
	}
	release, err := s.Hold()
	if err != nil {
		return false, err
	}
	defer release()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	s.waiting.Add(1)
	defer s.waiting.Add(-1)
	for {
		next := s.hub.Wait(scope)
		found, err := newer(r.Context(), r, c, since)
		if err != nil || found {
			return true, nil // the plain request answers (or reports the error)
		}
		select {
		case <-next:
		case <-deadline.C:
			return true, nil
		case <-s.draining:
			return true, nil // the plain answer, now
		case <-r.Context().Done():
			return false, nil
		}
	}
}

// pushable adds long-poll and event streams to a handler; authorize is
// the permission check of a long-poll (nil: public).
func (s *Server) pushable(h Handler, newer newerFunc, stream Handler, authorize authorizeFunc, scopeOf func(r *http.Request) events.Scope) Handler {
	return func(w http.ResponseWriter, r *http.Request, c *Call) error {
		if c.ParamsErr != nil {
			return c.ParamsErr
		}
		if inUnit(r.Context()) {
			// Nothing waits or streams while it holds a transaction (a
			// batch's): such sub-requests answer at once, as without
			// _wait.
			return h(w, r, c)
		}
		if wantsStream(r) && r.Method == http.MethodGet {
			return stream(w, r, c)
		}
		ok, err := s.longPoll(r, c, newer, authorize, scopeOf(r))
		if err != nil || !ok {
			return err
		}
		return h(w, r, c)
	}
}

// recordsAccess is the permission check of a long-poll on a records list:
// the caller's right to read the list, as the list itself checks it.
func (s *Server) recordsAccess(ctx context.Context, r *http.Request, c *Call) error {
	p := model.Path{Kind: model.Record, BucketID: r.PathValue("bid"), CollectionID: r.PathValue("cid")}
	return s.view(ctx, func(tx storage.Tx) error {
		_, _, err := s.engine.ListAccess(ctx, tx, c.Caller(), p)
		return err
	})
}

// recordsScope is the scope of a records list or stream: its collection
// (a record stream's access depends on the collection's and the bucket's
// permissions, whose changes touch it too).
func recordsScope(r *http.Request) events.Scope {
	return events.Scope{Bucket: r.PathValue("bid"), Collection: r.PathValue("cid")}
}

// recordsStorageScope is the storage scope of the records of the path's
// collection (bid, cid).
func recordsStorageScope(r *http.Request) storage.Scope {
	return storage.Scope{Parent: "/buckets/" + r.PathValue("bid") + "/collections/" + r.PathValue("cid"), Resource: model.Record.Name}
}

// recordsNewer: the collection's records timestamp is newer.
func (s *Server) recordsNewer(ctx context.Context, r *http.Request, c *Call, since int64) (bool, error) {
	scope := recordsStorageScope(r)
	var ts int64
	err := s.view(ctx, func(tx storage.Tx) (err error) {
		ts, err = tx.Timestamp(ctx, scope)
		return err
	})
	return ts > since, err
}

// eventStream is an open Server-Sent Events response.
type eventStream struct {
	w  http.ResponseWriter
	rc *http.ResponseController
	s  *Server
}

// openStream starts an event stream, within the configured cap.
func (s *Server) openStream(w http.ResponseWriter) (*eventStream, func(), error) {
	if max := s.cfg.Push.MaxStreams; max > 0 && s.streams.Load() >= max {
		return nil, nil, &kerr.Error{Kind: kerr.Unavailable, Message: "Too many event streams open, please retry later."}
	}
	release, err := s.Hold()
	if err != nil {
		return nil, nil, err
	}
	s.streams.Add(1)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Del("Access-Control-Expose-Headers")
	w.WriteHeader(http.StatusOK)
	es := &eventStream{w: w, rc: http.NewResponseController(w), s: s}
	es.flush()
	return es, func() { s.streams.Add(-1); release() }, nil
}

func (es *eventStream) flush() error {
	es.rc.SetWriteDeadline(time.Now().Add(es.s.cfg.Push.WriteTimeout))
	if err := es.rc.Flush(); err != nil {
		return err
	}
	return nil
}

// send writes one event; a failure (a client too slow or gone) ends the
// stream, and the client resumes from the last id it got.
func (es *eventStream) send(id int64, event string, data any) error {
	sid := ""
	if id > 0 {
		sid = strconv.FormatInt(id, 10)
	}
	return es.sendID(sid, event, data)
}

// sendID is send with an id of any form ("": none).
func (es *eventStream) sendID(id, event string, data any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	es.rc.SetWriteDeadline(time.Now().Add(es.s.cfg.Push.WriteTimeout))
	if id != "" {
		_, err = fmt.Fprintf(es.w, "id: %s\nevent: %s\ndata: %s\n\n", id, event, b)
	} else {
		_, err = fmt.Fprintf(es.w, "event: %s\ndata: %s\n\n", event, b)
	}
	return err
}

func (es *eventStream) comment(text string) error {
	es.rc.SetWriteDeadline(time.Now().Add(es.s.cfg.Push.WriteTimeout))
	_, err := fmt.Fprintf(es.w, ": %s\n\n", text)
	if err == nil {
		err = es.flush()
	}
	return err
}

// cursor is where a stream starts: Last-Event-ID, else `_since`, else now.
func streamCursor(r *http.Request, c *Call, current int64) int64 {
	if id, err := strconv.ParseInt(strings.TrimSpace(r.Header.Get("Last-Event-ID")), 10, 64); err == nil {
		return id
	}
	if since, ok := rawInt(c.Params, "_since"); ok {
		return since
	}
	return current
}

// errStreamEnded ends a stream on purpose (its reader lost access).
var errStreamEnded = errors.New("stream ended")

// serve runs the stream until it ends. Once the stream is open, nothing is
// reported through the error renderer: a stream ended on purpose just
// ends, and a failed write (a client too slow or gone) drops the
// connection, so that the client sees it and reconnects with its last
// event id instead of waiting on a silent socket.
func (es *eventStream) serve(ctx context.Context, scope events.Scope, emit func() error) error {
	return es.serveOn(ctx, func() <-chan struct{} { return es.s.hub.Wait(scope) }, emit)
}

// serveOn is serve, waking up when the channel that next returns closes
// (taken before each emit).
func (es *eventStream) serveOn(ctx context.Context, next func() <-chan struct{}, emit func() error) error {
	if err := es.run(ctx, next, emit); err != nil && !errors.Is(err, errStreamEnded) {
		panic(http.ErrAbortHandler)
	}
	return nil
}

// run is the loop of a stream: emit what is newer than the cursor, then
// sleep until the next commit, a heartbeat or the end of the stream's life.
func (es *eventStream) run(ctx context.Context, wait func() <-chan struct{}, emit func() error) error {
	s := es.s
	heartbeat := time.NewTicker(max(time.Second, s.cfg.Push.Heartbeat))
	defer heartbeat.Stop()
	lifetime := time.NewTimer(s.cfg.Push.MaxStream)
	defer lifetime.Stop()
	for {
		next := wait()
		if err := emit(); err != nil {
			return err
		}
		select {
		case <-next:
		case <-heartbeat.C:
			if err := es.comment("heartbeat"); err != nil {
				return err
			}
		case <-lifetime.C:
			// Clients reconnect by themselves, with Last-Event-ID.
			es.comment("stream lifetime reached, reconnect")
			return nil
		case <-s.draining:
			es.comment("server shutting down, reconnect")
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// streamRecords streams a collection's records: one event per created,
// updated or deleted record the caller may read, its permission checked at
// subscription and again at every change.
func (s *Server) streamRecords(w http.ResponseWriter, r *http.Request, c *Call) error {
	ctx := r.Context()
	p := model.Path{Kind: model.Record, BucketID: r.PathValue("bid"), CollectionID: r.PathValue("cid")}
	q, err := query.Parse(query.Without(c.Params, "_since", "_before", "_to", "_wait", "_expected", "_limit", "_token"), query.Schema{}, s.nowMS())
	if err != nil {
		return err
	}
	// access answers the caller's current right to the list.
	access := func() (storage.ListOptions, int64, error) {
		var opts storage.ListOptions
		var ts int64
		err := s.view(ctx, func(tx storage.Tx) error {
			// Group memberships may have changed since the last check.
			c.Caller().Reload()
			scope, _, err := s.engine.ListAccess(ctx, tx, c.Caller(), p)
			if err != nil {
				return err
			}
			opts = storage.ListOptions{Filters: q.Filters, IncludeDeleted: true, IDs: resource.ScopeIDs(scope),
				Sort: []query.Sort{{Field: query.ModifiedField}}}
			ts, err = tx.Timestamp(ctx, p.Scope())
			return err
		})
		return opts, ts, err
	}
	_, current, err := access()
	if err != nil {
		return err
	}
	cursor := streamCursor(r, c, current)
	es, done, err := s.openStream(w)
	if err != nil {
		return err
	}
	defer done()
	return es.serve(ctx, recordsScope(r), func() error {
		opts, _, err := access()
		if err != nil {
			// Access was lost (or the collection is gone): say why and end.
			ke, _ := err.(*kerr.Error)
			if err := es.send(0, "error", map[string]any{"message": errorText(ke)}); err != nil {
				return err
			}
			if err := es.flush(); err != nil {
				return err
			}
			return errStreamEnded
		}
		// What is newer than the cursor, a page at a time, each written
		// before the next is read: a stream resumed from 0 on a large
		// collection holds one page, and only streamReplays streams of
		// the node hold one at once (a client that does not read keeps
		// its place at most push.write_timeout_seconds).
		filters := opts.Filters
		for {
			opts.Filters = append(append([]query.Filter{}, filters...), query.Filter{Field: query.ModifiedField, Op: query.GT, Value: cursor})
			opts.Limit = streamPage
			n := 0
			err := s.replaying(ctx, func() error {
				var objs []*storage.Object
				if err := s.view(ctx, func(tx storage.Tx) (err error) {
					objs, err = tx.List(ctx, p.Scope(), opts)
					return err
				}); err != nil {
					return err
				}
				for _, o := range objs {
					if err := es.send(o.LastModified, "change", o.Body()); err != nil {
						return err
					}
					cursor = o.LastModified
				}
				n = len(objs)
				if n > 0 {
					return es.flush()
				}
				return nil
			})
			if err != nil || n < streamPage {
				return err
			}
		}
	})
}

// streamPage is how many records a record stream reads at a time.
const streamPage = 100

// streamReplays bounds the record streams reading or writing a page at
// once, on a node.
const streamReplays = 8

// replaying runs read, a stream's reading and writing of a page, once one
// of the node's streamReplays places is free (or fails when ctx ends): the
// memory of the pages in flight is bounded, whatever the number of
// streams catching up.
func (s *Server) replaying(ctx context.Context, read func() error) error {
	select {
	case s.replays <- struct{}{}:
	case <-ctx.Done():
		return storage.Canceled(ctx)
	}
	defer func() { <-s.replays }()
	return read()
}

func errorText(e *kerr.Error) string {
	if e == nil {
		return "stream ended"
	}
	if m, ok := mapping[e.Kind]; ok && m.message != "" {
		return m.message
	}
	return e.Error()
}

// rawInt reads a parameter as an integer, quotes stripped.
func rawInt(params []query.Param, name string) (int64, bool) {
	raw, ok := query.Get(params, name)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.Trim(raw, `"`), 10, 64)
	return n, err == nil
}
