package httpapi

import (
	"fmt"
	"io"
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

// StaticOptions say how StaticFiles answers.
type StaticOptions struct {
	// Index is the file the prefix itself serves ("": none, a 404).
	Index string
	// CSP is the Content-Security-Policy of the answers ("": the API's).
	CSP string
	// CacheControl gives a file's Cache-Control (nil: no-cache, revalidated
	// every time).
	CacheControl func(name string) string
	// ContentType gives a file's content type ("" or nil: by extension).
	ContentType func(name string) string
	// ETag makes the file's size and modification time its ETag.
	ETag bool
	// Missing answers while files returns nil.
	Missing http.HandlerFunc
}

// StaticFiles serves the files of files() under prefix (a HandleTree
// prefix): directories are not listed, and only GET and HEAD are allowed;
// http.ServeContent answers ranges, Last-Modified and conditional
// requests. files returns nil while there is nothing to serve.
func (s *Server) StaticFiles(prefix string, files func() fs.FS, o StaticOptions) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			s.renderError(w, r, kerr.E(kerr.MethodNotAllowed, ""))
			return
		}
		h := w.Header()
		if o.CSP != "" {
			h.Set("Content-Security-Policy", o.CSP)
		}
		fsys := files()
		if fsys == nil {
			o.Missing(w, r)
			return
		}
		name := strings.TrimPrefix(r.URL.Path, prefix)
		if name == "" {
			name = o.Index
		}
		// fs.FS names are clean, slash-separated and relative: anything
		// else (.., //, a trailing slash) names no file here.
		if name == "" || !fs.ValidPath(name) || path.Clean(name) != name {
			s.renderError(w, r, kerr.E(kerr.MissingResource, ""))
			return
		}
		f, err := fsys.Open(name)
		if err != nil {
			s.renderError(w, r, kerr.E(kerr.MissingResource, ""))
			return
		}
		defer f.Close()
		info, err := f.Stat()
		content, seekable := f.(io.ReadSeeker)
		if err != nil || info.IsDir() || !seekable {
			s.renderError(w, r, kerr.E(kerr.MissingResource, ""))
			return
		}
		if o.ContentType != nil {
			if ct := o.ContentType(name); ct != "" {
				h.Set("Content-Type", ct)
			}
		}
		if o.ETag {
			h.Set("ETag", fmt.Sprintf(`"%x-%x"`, info.Size(), info.ModTime().UnixNano()))
		}
		cache := "no-cache"
		if o.CacheControl != nil {
			cache = o.CacheControl(name)
		}
		h.Set("Cache-Control", cache)
		http.ServeContent(w, r, name, info.ModTime(), content)
	})
}
