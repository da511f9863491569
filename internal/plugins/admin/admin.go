// Package admin is Kinto's kinto.plugins.admin: the admin UI (kinto-admin)
// served at /v1/admin/, and the permissions endpoint it needs.
//
// kinto-admin's build is not part of kintogo: scripts/admin.sh installs it
// into .admin/ (in the working directory), or kinto.admin_assets_path names
// a folder holding one (index.html, assets/, VERSION). Until one is found,
// /v1/admin/ says how to install it; it is looked for again on each visit,
// so installing it needs no restart.
package admin

import (
	"html/template"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"kintogo/internal/httpapi"
	"kintogo/internal/plugins/permissions"
)

// Plugin is kinto.plugins.admin.
type Plugin struct{}

// Name implements plugins.Plugin.
func (Plugin) Name() string { return "kinto.plugins.admin" }

// Prefix is where the admin UI is served: kinto-admin's build has its
// asset paths fixed there.
const Prefix = "/v1/admin/"

// DefaultDir is where scripts/admin.sh installs kinto-admin, relative to
// the working directory.
const DefaultDir = ".admin"

// InstalledVersion is the kinto-admin version scripts/admin.sh installs,
// advertised while none is installed.
const InstalledVersion = "6.2.0"

// csp is Kinto's policy for the admin UI: its own scripts and styles only.
const csp = "default-src 'self'; img-src data: *; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'"

// Provision implements plugins.Plugin.
func (Plugin) Provision(h *httpapi.Server) error {
	if err := (permissions.Plugin{}).Provision(h); err != nil {
		return err
	}
	a := &assets{dir: h.Settings().String("admin_assets_path")}
	if a.dir == "" {
		a.dir = DefaultDir
	}
	version := InstalledVersion
	if a.files() != nil {
		if raw, err := os.ReadFile(filepath.Join(a.dir, "VERSION")); err == nil {
			version = strings.TrimSpace(string(raw))
		}
	}
	h.Capability("admin", map[string]any{
		"version":     version,
		"description": "Serves the admin console.",
		"url":         "https://github.com/Kinto/kinto-admin/",
	})
	// Hashed assets never change under their name.
	cache := func(name string) string {
		if strings.HasPrefix(name, "assets/") {
			return "public, max-age=31536000, immutable"
		}
		return "no-cache"
	}
	// Kinto's route names.
	names := httpapi.TreeNames{Home: "admin_home", Files: "catchall_static", Redirect: "admin_redirect"}
	h.HandleTree(Prefix, names, h.StaticFiles(Prefix, a.files, httpapi.StaticOptions{Index: "index.html", CSP: csp, CacheControl: cache,
		Missing: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Cache-Control", "no-cache")
			abs, _ := filepath.Abs(a.dir)
			help.Execute(w, map[string]string{"Dir": abs})
		}}))
	return nil
}

// assets finds kinto-admin's build in dir.
type assets struct {
	dir  string
	mu   sync.Mutex
	fsys fs.FS
}

// files returns the build once it holds an index.html, nil before.
func (a *assets) files() fs.FS {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fsys == nil {
		if _, err := os.Stat(filepath.Join(a.dir, "index.html")); err == nil {
			a.fsys = os.DirFS(a.dir)
		}
	}
	return a.fsys
}

// Found reports whether the admin UI's build is installed where the
// settings say (for the start banner).
func Found(adminAssetsPath string) bool {
	if adminAssetsPath == "" {
		adminAssetsPath = DefaultDir
	}
	_, err := os.Stat(filepath.Join(adminAssetsPath, "index.html"))
	return err == nil
}

var help = template.Must(template.New("help").Parse(`<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Kinto Admin is not installed</title></head>
<body>
<h1>Kinto Admin</h1>
<p>The admin UI (<a href="https://github.com/Kinto/kinto-admin/">kinto-admin</a>) is a JavaScript
application that is not part of kintogo's binary, and it is not installed in <code>{{.Dir}}</code>.</p>
<h2>Install it</h2>
<p>In kintogo's source folder, run:</p>
<pre>./scripts/admin.sh</pre>
<p>It fetches kinto-admin 6.2.0 from PyPI (the <code>kinto==25.0.0</code> wheel ships its build) into
<code>.admin/</code>, where <code>kintogo start</code> looks for it when started from that folder.
Or set <code>kinto.admin_assets_path</code> to a folder holding a kinto-admin build made for
<code>/v1/admin/</code>. Then reload this page: no restart is needed.</p>
</body>
</html>
`))
