package app

import (
	"fmt"
	"sort"
	"strings"

	"kintogo/internal/config"
	"kintogo/internal/httpapi"
	"kintogo/internal/plugins"
	"kintogo/internal/plugins/accounts"
	"kintogo/internal/plugins/admin"
	"kintogo/internal/plugins/attachment"
	"kintogo/internal/plugins/changes"
	"kintogo/internal/plugins/defaultbucket"
	"kintogo/internal/plugins/emailer"
	"kintogo/internal/plugins/flush"
	"kintogo/internal/plugins/history"
	"kintogo/internal/plugins/openid"
	"kintogo/internal/plugins/permissions"
	"kintogo/internal/plugins/prometheus"
	"kintogo/internal/plugins/signer"
	"kintogo/internal/plugins/slack"
	"kintogo/internal/storage"
)

// registry is every plugin kintogo provides, by the names `kinto.includes`
// gives them (a plugin may answer to several: the changes feed has the
// names of kinto-changes and of remote-settings; a name may include
// several plugins: kinto_remote_settings is the changes feed and the
// signer).
var registry = map[string]func() []plugins.Plugin{
	"kinto.plugins.accounts":        one(accounts.Plugin{}),
	"kinto.plugins.history":         one(history.Plugin{}),
	"kinto.plugins.default_bucket":  one(defaultbucket.Plugin{}),
	"kinto.plugins.flush":           one(flush.Plugin{}),
	"kinto.plugins.prometheus":      one(prometheus.Plugin{}),
	"kinto.plugins.admin":           one(admin.Plugin{}),
	"kinto_attachment":              one(attachment.Plugin{}),
	"kinto_changes":                 one(changes.Plugin{}),
	"kinto_remote_settings.changes": one(changes.Plugin{}),
	"kinto_remote_settings.signer":  one(signer.Plugin{}),
	"kinto_signer":                  one(signer.Plugin{}),
	"kinto_remote_settings":         func() []plugins.Plugin { return []plugins.Plugin{changes.Plugin{}, signer.Plugin{}} },
	"kinto_emailer":                 one(emailer.Plugin{}),
	"kinto_slack":                   one(slack.Plugin{}),
	"kinto.plugins.openid":          one(openid.Plugin{}),
}

func one(p plugins.Plugin) func() []plugins.Plugin {
	return func() []plugins.Plugin { return []plugins.Plugin{p} }
}

// policyPlugins names the plugin that provides an authentication policy,
// for a clear message when multiauth.policies names one whose plugin is
// not included.
var policyPlugins = map[string]string{"account": "kinto.plugins.accounts"}

// Provided lists the plugin names kintogo provides, sorted.
func Provided() []string {
	names := make([]string, 0, len(registry))
	for name := range registry {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// selectPlugins returns the plugins the settings include, in order, each
// once. An unknown name stops the start, as an import error stops Kinto's.
func selectPlugins(s *config.Settings) ([]plugins.Plugin, error) {
	var out []plugins.Plugin
	seen := map[string]bool{}
	add := func(name string) {
		for _, p := range registry[name]() {
			if !seen[p.Name()] {
				seen[p.Name()] = true
				out = append(out, p)
			}
		}
	}
	for _, name := range s.List("includes") {
		if _, ok := registry[name]; !ok {
			return nil, fmt.Errorf("kinto.includes: kintogo provides no plugin %q (it provides %s)", name, strings.Join(Provided(), ", "))
		}
		add(name)
	}
	// A policy of multiauth.policies that uses Kinto's
	// OpenIDConnectPolicy works in Kinto without the plugin's include
	// (pyramid_multiauth imports its class): it brings the plugin here.
	for _, policy := range s.List("multiauth.policies") {
		if use, _ := s.LookupEnv("multiauth.policy." + policy + ".use"); strings.HasSuffix(strings.TrimSpace(use), "OpenIDConnectPolicy") {
			add("kinto.plugins.openid")
		}
	}
	// The permissions endpoint is also a setting of Kinto's core (the
	// admin plugin serves it too).
	if s.Bool("experimental_permissions_endpoint") && !seen[admin.Plugin{}.Name()] {
		out = append(out, permissions.Plugin{})
	}
	return out, nil
}

// Includes tells whether the settings include plugin p, under any of the
// names the registry gives it.
func Includes(s *config.Settings, p plugins.Plugin) bool {
	ps, err := selectPlugins(s)
	if err != nil {
		return false
	}
	for _, q := range ps {
		if q.Name() == p.Name() {
			return true
		}
	}
	return false
}

// NewServer builds the HTTP server over store with the plugins the
// settings include.
func NewServer(s *config.Settings, store storage.Storage, opts httpapi.Options) (*httpapi.Server, error) {
	ps, err := selectPlugins(s)
	if err != nil {
		return nil, err
	}
	srv, err := httpapi.New(s, store, opts)
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		if err := p.Provision(srv); err != nil {
			return nil, fmt.Errorf("%s: %w", p.Name(), err)
		}
	}
	included := map[string]bool{}
	for _, p := range ps {
		included[p.Name()] = true
	}
	for _, name := range s.List("multiauth.policies") {
		if plugin, ok := policyPlugins[name]; ok && !included[plugin] {
			return nil, fmt.Errorf("the %s authentication policy needs %s in kinto.includes", name, plugin)
		}
	}
	return srv, srv.Ready()
}
