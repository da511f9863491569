// Package resource is Kinto's resource engine: reads and writes of buckets,
// collections, groups and records with Kinto's rules — permissions and
// their inheritance, preconditions, validation (kinds' own rules, JSON
// schemas, sizes), the permissions of what is written, cascades, paginated
// lists and their tokens — over a storage backend, through units of work
// (unit.go) whose hooks plugins extend.
//
// It knows nothing of HTTP: requests come in as values, errors go out with
// a kind (internal/kerr) that the HTTP layer renders.
package resource

import (
	"sync/atomic"
	"time"

	"kintogo/internal/events"
	"kintogo/internal/permission"
	"kintogo/internal/storage"
)

// Config is what the engine's rules depend on, read once from the
// settings.
type Config struct {
	// ExplicitPermissions adds writers to the write permission of what
	// they write (explicit_permissions).
	ExplicitPermissions bool
	// SchemaValidation validates objects against the JSON schemas of their
	// collection or bucket (experimental_collection_schema_validation).
	SchemaValidation bool
	// MaxObjectBytes bounds what one write may store (max_body_bytes; 0:
	// no bound).
	MaxObjectBytes int64
	// PaginateBy is the default and largest page size (0: none).
	PaginateBy int64
	// MaxFetchSize caps every list (storage_max_fetch_size).
	MaxFetchSize int64
	// TokenValidity is the lifetime of the single-use token of a paginated
	// plural DELETE.
	TokenValidity time.Duration
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// Engine applies Kinto's rules to requests on a storage backend.
type Engine struct {
	store storage.Storage
	authz *permission.Authorizer
	cfg   Config
	hooks Hooks
	// feed delivers what was committed, here and on other nodes.
	feed events.Feed
	// history holds the newest positions of the change log followed
	// (Follow).
	history  *events.History
	follower atomic.Pointer[follower]
}

// New returns an engine over store.
func New(store storage.Storage, authz *permission.Authorizer, cfg Config) *Engine {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxFetchSize <= 0 {
		cfg.MaxFetchSize = 10000
	}
	return &Engine{store: store, authz: authz, cfg: cfg, history: events.NewHistory(historyEvents)}
}

// Feed is where every committed change, this node's and the other
// nodes', is delivered: the one place to subscribe to them.
func (e *Engine) Feed() *events.Feed { return &e.feed }

// History is the newest positions of the change log this node followed,
// every node's commits in the order all nodes share.
func (e *Engine) History() *events.History { return e.history }

// Hook adds hooks to every unit of work. Plugins call it while the server
// is assembled, before any request.
func (e *Engine) Hook(h Hooks) {
	e.hooks.BeforeWrite = append(e.hooks.BeforeWrite, h.BeforeWrite...)
	e.hooks.InTransaction = append(e.hooks.InTransaction, h.InTransaction...)
	e.hooks.Notice = append(e.hooks.Notice, h.Notice...)
}

// Store is the engine's storage.
func (e *Engine) Store() storage.Storage { return e.store }

// Authorizer is the engine's permission rules.
func (e *Engine) Authorizer() *permission.Authorizer { return e.authz }

// Config is the engine's configuration.
func (e *Engine) Config() Config { return e.cfg }

// NowMS is the engine's clock in milliseconds.
func (e *Engine) NowMS() int64 { return e.cfg.Now().UnixMilli() }

// Limit is the page size of a list: asked (0: not asked) capped by
// PaginateBy, then by MaxFetchSize, which is also the size when nothing
// is asked.
func (e *Engine) Limit(asked int64) int {
	limit := asked
	if pb := e.cfg.PaginateBy; pb > 0 && (limit == 0 || limit > pb) {
		limit = pb
	}
	if limit == 0 || limit > e.cfg.MaxFetchSize {
		limit = e.cfg.MaxFetchSize
	}
	return int(limit)
}
