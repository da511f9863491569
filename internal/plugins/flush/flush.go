// Package flush is Kinto's kinto.plugins.flush: POST /v1/__flush__ deletes
// everything (for tests and throw-away servers).
package flush

import (
	"net/http"

	"kintogo/internal/httpapi"
)

// Plugin is kinto.plugins.flush.
type Plugin struct{}

// Name implements plugins.Plugin.
func (Plugin) Name() string { return "kinto.plugins.flush" }

// Provision implements plugins.Plugin.
func (Plugin) Provision(h *httpapi.Server) error {
	// Kinto requires no permission to flush.
	h.Handle("/v1/__flush__", httpapi.Endpoint{Name: "flush", Expose: httpapi.BaseExpose, Public: true, Methods: map[string]httpapi.Handler{
		"POST": func(w http.ResponseWriter, r *http.Request, c *httpapi.Call) error {
			if err := h.Engine().Flush(r.Context()); err != nil {
				return err
			}
			h.WriteJSON(w, http.StatusAccepted, map[string]any{})
			return nil
		},
	}})
	h.Capability("flush_endpoint", map[string]any{
		"description": "The __flush__ endpoint can be used to remove all data from all backends.",
		"url":         "https://kinto.readthedocs.io/en/latest/api/1.x/flush.html",
	})
	return nil
}
