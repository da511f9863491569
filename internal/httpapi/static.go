package httpapi

import (
	"cmp"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"strconv"
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
		boundRanges(r, info.Size())
		http.ServeContent(w, r, name, info.ModTime(), content)
	})
}

// maxRanges bounds the ranges of one request, as nginx's max_ranges does:
// beyond, the ranges are ignored and the whole file is answered.
const maxRanges = 16

// boundRanges rewrites the request's Range header so that what
// http.ServeContent does with it stays bounded: overlapping and adjacent
// ranges are merged, and more than maxRanges of them (tens of thousands of
// one-byte ranges cost seconds of CPU each request) make the request a
// plain one. A header it cannot read is left to ServeContent (416).
func boundRanges(r *http.Request, size int64) {
	raw := r.Header.Get("Range")
	spec, ok := strings.CutPrefix(raw, "bytes=")
	if !ok || size <= 0 {
		return
	}
	type span struct{ start, end int64 } // inclusive
	var spans []span
	for part := range strings.SplitSeq(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		first, last, ok := strings.Cut(part, "-")
		if !ok {
			return
		}
		var sp span
		switch {
		case first == "":
			n, err := strconv.ParseInt(last, 10, 64)
			if err != nil || n <= 0 {
				return
			}
			sp = span{max(size-n, 0), size - 1}
		default:
			a, err := strconv.ParseInt(first, 10, 64)
			if err != nil || a < 0 {
				return
			}
			b := size - 1
			if last != "" {
				if b, err = strconv.ParseInt(last, 10, 64); err != nil || b < a {
					return
				}
			}
			if a >= size {
				continue // unsatisfiable alone; others may be
			}
			sp = span{a, min(b, size-1)}
		}
		spans = append(spans, sp)
	}
	if len(spans) == 0 {
		return
	}
	slices.SortFunc(spans, func(x, y span) int { return cmp.Compare(x.start, y.start) })
	merged := spans[:1]
	for _, sp := range spans[1:] {
		last := &merged[len(merged)-1]
		if sp.start <= last.end+1 {
			last.end = max(last.end, sp.end)
			continue
		}
		merged = append(merged, sp)
	}
	if len(merged) > maxRanges {
		r.Header.Del("Range")
		return
	}
	parts := make([]string, len(merged))
	for i, sp := range merged {
		parts[i] = strconv.FormatInt(sp.start, 10) + "-" + strconv.FormatInt(sp.end, 10)
	}
	r.Header.Set("Range", "bytes="+strings.Join(parts, ","))
}
