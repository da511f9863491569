// Package plugins defines kintogo's plugins: optional features, each named
// as Kinto names it in `kinto.includes` (kinto.plugins.history,
// kinto_changes, ...), each in a package of its own below this one. A
// plugin provisions itself on the HTTP host while the server is assembled:
// it reads its settings once and registers its routes, capabilities,
// authentication policies, request interceptors and hooks on the resource
// engine. The registry of the plugins kintogo provides is in internal/app.
package plugins

import "kintogo/internal/httpapi"

// Plugin is one optional feature.
type Plugin interface {
	// Name is Kinto's dotted name of the plugin.
	Name() string
	// Provision extends the host with the plugin, before any request; an
	// error (a setting it cannot honour) stops the start.
	Provision(h *httpapi.Server) error
}
