package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"

	"kintogo/internal/resource"
	"kintogo/internal/storage"
)

// hello is GET /v1/: project information, public settings, capabilities and
// the caller's identity.
func (s *Server) hello(w http.ResponseWriter, r *http.Request, c *Call) error {
	body := map[string]any{
		"project_name":     s.cfg.Project.Name,
		"project_version":  s.projectVersion(),
		"http_api_version": HTTPAPIVersion,
		"project_docs":     s.cfg.Project.Docs,
		"url":              s.origin(r) + "/v1/",
		"config":           s.iniInfo,
		"settings": map[string]any{
			"batch_max_requests":   s.cfg.Batch.MaxRequests,
			"readonly":             s.readonly,
			"explicit_permissions": s.cfg.Objects.ExplicitPermissions,
		},
		"capabilities": s.capabilities(r),
	}
	if eos := s.settings.String("eos"); eos != "" {
		body["eos"] = eos
	}
	if c.User() != "" {
		err := s.view(r.Context(), func(tx storage.Tx) error { return c.LoadPrincipals(r.Context(), tx) })
		if err != nil {
			return err
		}
		user := map[string]any{"id": c.User(), "principals": c.Principals()}
		for _, fn := range s.helloUser {
			fn(c, user)
		}
		body["user"] = user
	}
	if s.readonly {
		s.cacheExpires(w, 86400)
	}
	s.writeJSON(w, http.StatusOK, body)
	return nil
}

func (s *Server) projectVersion() string {
	if v := s.cfg.Project.Version; v != "" {
		return v
	}
	return s.opts.Version
}

// configInfo describes the INI file, or nil, as read when the server
// starts. Like Kinto, it describes the file at $KINTO_INI, else at
// ./config/kinto.ini, whichever file --ini named: Kinto learns the path
// from its WSGI entry point, not from its command line.
func (s *Server) configInfo() any {
	path := os.Getenv("KINTO_INI")
	if path == "" {
		path = "./config/kinto.ini"
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	info, err := os.Stat(path)
	if err != nil {
		return nil
	}
	sum := sha256.Sum256(raw)
	return map[string]any{
		"path":     path,
		"hash":     hex.EncodeToString(sum[:]),
		"modified": info.ModTime().Format("2006-01-02T15:04:05.999999"),
	}
}

func (s *Server) capabilities(r *http.Request) map[string]any {
	caps := make(map[string]any, len(s.caps)+2)
	for name, v := range s.caps {
		if fn, ok := v.(CapabilityFunc); ok {
			v = fn(r)
		}
		caps[name] = v
	}
	for _, p := range s.policies {
		if p.Name() == "basicauth" {
			caps["basicauth"] = map[string]any{
				"description": "Very basic authentication sessions. Not for production use.",
				"url":         "http://kinto.readthedocs.io/en/stable/api/1.x/authentication.html",
			}
		}
	}
	if s.cfg.Objects.SchemaValidation {
		caps["schema"] = map[string]any{
			"description": "Validates collection records with JSON schemas.",
			"url":         "https://kinto.readthedocs.io/en/latest/api/1.x/collections.html#collection-json-schema",
		}
	}
	return caps
}

// heartbeatScope holds the one object the heartbeat writes.
var heartbeatScope = storage.Scope{Parent: "__heartbeat__", Resource: "__heartbeat__"}

// heartbeat checks the backends within heartbeat_timeout_seconds: 503 when
// one of them fails. Like Kinto, it writes (unless the node is read-only),
// so that a node whose writes are blocked is not reported healthy.
func (s *Server) heartbeat(w http.ResponseWriter, r *http.Request, c *Call) error {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.HTTP.HeartbeatTimeout)
	defer cancel()
	// Objects and permissions share the storage backend: one access of
	// each kind shows both answer. The cache is in-process memory.
	probe := func(tx storage.Tx) (bool, error) {
		var err error
		if s.readonly {
			_, err = tx.Timestamp(ctx, heartbeatScope)
		} else {
			_, err = tx.Put(ctx, heartbeatScope, &storage.Object{ID: "__heartbeat__", Data: map[string]any{"__heartbeat__": true}})
		}
		if err == nil {
			_, err = tx.Permissions(ctx, "/__heartbeat__")
		}
		return err == nil, err
	}
	var ok bool
	var err error
	if s.readonly {
		err = s.view(ctx, func(tx storage.Tx) (err error) { ok, err = probe(tx); return err })
	} else {
		ok, err = resource.Write(ctx, s.engine, func(u *resource.Unit) (bool, error) { return probe(u.Tx) })
	}
	storageOK, permOK := ok, ok
	status := http.StatusOK
	if !storageOK || !permOK {
		status = http.StatusServiceUnavailable
		s.log.Error("heartbeat failed", "storage", storageOK, "permission", permOK, "err", err)
	}
	answer := map[string]bool{"storage": storageOK, "permission": permOK, "cache": true}
	for _, hb := range s.heartbeats {
		done := make(chan bool, 1)
		go func() { done <- hb.check(ctx) }()
		select {
		case ok := <-done:
			answer[hb.name] = ok
		case <-ctx.Done():
			answer[hb.name] = false
		}
		if !answer[hb.name] {
			status = http.StatusServiceUnavailable
			s.log.ErrorContext(ctx, "heartbeat failed", "check", hb.name)
		}
	}
	s.writeJSON(w, status, answer)
	return nil
}

func (s *Server) lbheartbeat(w http.ResponseWriter, r *http.Request, c *Call) error {
	s.writeJSON(w, http.StatusOK, map[string]any{})
	return nil
}

// version serves version.json when it exists, else kintogo's own.
func (s *Server) version(w http.ResponseWriter, r *http.Request, c *Call) error {
	if raw, err := os.ReadFile(s.cfg.Project.VersionJSONPath); err == nil {
		var v any
		if json.Unmarshal(raw, &v) == nil {
			s.writeJSON(w, http.StatusOK, v)
			return nil
		}
	}
	s.writeJSON(w, http.StatusOK, map[string]string{
		"name":    "kintogo",
		"version": s.opts.Version,
		"source":  "https://github.com/kintogo/kintogo",
		"commit":  s.opts.Commit,
		"build":   "kintogo",
	})
	return nil
}

// contributeInfo is GET /v1/contribute.json: the open-source facts of the
// project (Mozilla's contribute.json, which Kinto serves too).
var contributeInfo = struct {
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Repository  map[string]string `json:"repository"`
	Participate map[string]string `json:"participate"`
	Bugs        map[string]string `json:"bugs"`
	Keywords    []string          `json:"keywords"`
}{
	Name:        "kintogo",
	Description: "kintogo is a Kinto-compatible JSON storage server written in Go, with synchronisation, sharing and Kinto's changes feed built in.",
	Repository: map[string]string{
		"url":   "https://github.com/kintogo/kintogo",
		"tests": "https://github.com/kintogo/kintogo/actions",
	},
	Participate: map[string]string{
		"home": "https://github.com/kintogo/kintogo",
		"docs": "https://github.com/kintogo/kintogo#readme",
	},
	Bugs: map[string]string{
		"list":   "https://github.com/kintogo/kintogo/issues",
		"report": "https://github.com/kintogo/kintogo/issues/new",
	},
	Keywords: []string{"JSON", "Go", "Kinto", "REST", "API", "Database", "Synchronisation"},
}

func (s *Server) contribute(w http.ResponseWriter, r *http.Request, c *Call) error {
	s.writeJSON(w, http.StatusOK, contributeInfo)
	return nil
}
