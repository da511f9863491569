package api

import (
	"context"
	"net/http"
	"strings"

	"kintogo/internal/auth"
	"kintogo/internal/kerr"
	"kintogo/internal/model"
)

// The default bucket plugin (kinto.plugins.default_bucket):
// /buckets/default is an alias of a personal bucket per user, created on
// first use, as is a collection of it named in the URL
// (kinto-protocol.md §11.1).

func (s *Server) defaultBucketEnabled() bool { return s.defaultBucket }

// DefaultBucketID is the personal bucket of a user id: the first 32 hex
// digits of HMAC-SHA256(secret, user id), formatted as a UUID.
func DefaultBucketID(secret, userID string) string {
	h := auth.HMACDigest(secret, userID)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

const defaultPrefix = "/v1/buckets/default"

// isDefaultBucketPath reports whether a path goes through the alias.
func isDefaultBucketPath(path string) bool {
	return path == defaultPrefix || strings.HasPrefix(path, defaultPrefix+"/")
}

// serveDefaultBucket creates the caller's bucket (and collection) when
// needed, then serves the request on the real path.
func (s *Server) serveDefaultBucket(w http.ResponseWriter, r *http.Request) {
	c := s.newCall(r)
	w.Header().Set("Access-Control-Expose-Headers", strings.Join(exposeBase, ", "))
	if c.user() == "" {
		s.renderError(w, r, kerr.E(kerr.Unauthenticated, ""))
		return
	}
	if s.readonly && !isRead(r.Method) {
		s.renderError(w, r, kerr.E(kerr.MethodNotAllowed, ""))
		return
	}
	bid := DefaultBucketID(s.bucketSecret, c.user())
	rest := strings.TrimPrefix(r.URL.Path, defaultPrefix)
	if r.Method != http.MethodOptions {
		if err := s.ensureDefaultBucket(r.Context(), c, r.Method, bid, rest); err != nil {
			s.renderError(w, r, err)
			return
		}
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path = "/v1/buckets/" + bid + rest
	r2.URL.RawPath = ""
	w.Header().Del("Access-Control-Expose-Headers")
	s.mux.ServeHTTP(w, r2)
}

// ensureDefaultBucket creates the personal bucket, and the collection the
// path names, unless the request itself is the PUT that creates it.
func (s *Server) ensureDefaultBucket(ctx context.Context, c *call, method, bid, rest string) error {
	bucket := model.Path{Kind: model.Bucket, ID: bid}
	var coll model.Path
	if after, ok := strings.CutPrefix(rest, "/collections/"); ok {
		cid, _, _ := strings.Cut(after, "/")
		if !model.Collection.ValidID(cid) {
			return kerr.InvalidParam("path", nil, "Invalid collection id")
		}
		coll = model.Path{Kind: model.Collection, BucketID: bid, ID: cid}
	}
	var paths []model.Path
	for _, p := range []model.Path{bucket, coll} {
		if p.Kind == nil {
			continue
		}
		// Unless the request itself is the PUT that creates it.
		if method == http.MethodPut && (rest == "" && p.Kind == model.Bucket ||
			p.Kind == model.Collection && strings.TrimSuffix(rest, "/") == "/collections/"+p.ID) {
			continue
		}
		paths = append(paths, p)
	}
	_, err := s.engine.Ensure(ctx, c.caller(), paths...)
	return err
}
