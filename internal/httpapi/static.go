package httpapi

import (
	"io/fs"
	"net/http"
	"path"
	"strings"

	"kintogo/internal/kerr"
)

// tree is a subtree of paths served by one handler (HandleTree).
type tree struct {
	prefix string
	names  TreeNames
	h      http.Handler
}

// TreeNames are the endpoint names (metrics, logs) of a tree's requests:
// its prefix, the paths below it, and the redirect of the prefix without
// its slash.
type TreeNames struct{ Home, Files, Redirect string }

// HandleTree serves every path under prefix, which ends with "/", with h,
// before the trailing-slash redirects of the API; the prefix without its
// slash redirects to it. The admin UI and the live view of the feed are
// such trees of static files.
func (s *Server) HandleTree(prefix string, names TreeNames, h http.Handler) {
	if !strings.HasSuffix(prefix, "/") {
		panic("HandleTree: prefix must end with /: " + prefix)
	}
	s.trees = append(s.trees, tree{prefix, names, h})
}

// StaticFiles serves the files of fsys under prefix (a HandleTree
// prefix): the prefix itself is index.html, directories are not listed,
// and only GET and HEAD are allowed. http.ServeFileFS answers ranges,
// Last-Modified and content types by extension; csp is the pages'
// Content-Security-Policy; files whose name matches immutable (hashed
// assets) may be cached for a year, the others are revalidated every time.
// fsys returns nil while there are no files to serve: then missing is.
func (s *Server) StaticFiles(prefix string, fsys func() fs.FS, csp string, immutable func(name string) bool, missing http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			s.renderError(w, r, kerr.E(kerr.MethodNotAllowed, ""))
			return
		}
		w.Header().Set("Content-Security-Policy", csp)
		files := fsys()
		if files == nil {
			missing(w, r)
			return
		}
		name := strings.TrimPrefix(r.URL.Path, prefix)
		if name == "" {
			name = "index.html"
		}
		// fs.FS names are clean, slash-separated and relative: anything
		// else (.., //, a trailing slash) names no file here.
		if !fs.ValidPath(name) || path.Clean(name) != name {
			s.renderError(w, r, kerr.E(kerr.MissingResource, ""))
			return
		}
		info, err := fs.Stat(files, name)
		if err != nil || info.IsDir() {
			s.renderError(w, r, kerr.E(kerr.MissingResource, ""))
			return
		}
		if immutable != nil && immutable(name) {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		http.ServeFileFS(w, r, files, name)
	})
}
