// Package defaultbucket is Kinto's kinto.plugins.default_bucket:
// /buckets/default is an alias of a personal bucket per user, created on
// first use, as is a collection of it named in the URL
// (kinto-protocol.md §11.1).
package defaultbucket

import (
	"context"
	"net/http"
	"strings"

	"kintogo/internal/auth"
	"kintogo/internal/httpapi"
	"kintogo/internal/kerr"
	"kintogo/internal/model"
)

// Plugin is kinto.plugins.default_bucket.
type Plugin struct{}

// Name implements plugins.Plugin.
func (Plugin) Name() string { return "kinto.plugins.default_bucket" }

// Provision implements plugins.Plugin. Personal bucket ids are keyed
// with default_bucket_hmac_secret exactly as Kinto keys them: with the
// empty string when it is not set (Kinto's default), not with
// userid_hmac_secret, so that the same credentials find the same bucket
// on both. Unset, anyone can compute the bucket id of a known user id
// (accounts'): the start says so.
func (Plugin) Provision(h *httpapi.Server) error {
	s := &plugin{h: h, readonly: h.Settings().Bool("readonly")}
	s.secret = h.Settings().String("default_bucket_hmac_secret")
	if s.secret == "" {
		h.Logger().Warn("kinto.default_bucket_hmac_secret is not set: personal bucket ids are keyed with an empty secret, " +
			"as Kinto does, so anyone may compute the bucket id of a known user id; set it (kintogo before 0.2 used " +
			"kinto.userid_hmac_secret when it was unset: set it to that value to keep the personal buckets made then)")
	}
	h.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if !isDefaultBucketPath(r.URL.Path) {
			return false
		}
		s.serve(w, r)
		return true
	})
	h.HelloUser(func(c *httpapi.Call, user map[string]any) {
		user["bucket"] = DefaultBucketID(s.secret, c.User())
	})
	h.Capability("default_bucket", map[string]any{
		"description": "The default bucket is an alias for a personal bucket where collections are created implicitly.",
		"url":         "https://kinto.readthedocs.io/en/latest/api/1.x/buckets.html#personal-bucket-default",
	})
	return nil
}

// plugin is the provisioned default bucket plugin.
type plugin struct {
	h        *httpapi.Server
	secret   string // key of personal bucket ids
	readonly bool
}

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

// serve creates the caller's bucket (and collection) when needed, then
// serves the request on the real path.
func (s *plugin) serve(w http.ResponseWriter, r *http.Request) {
	c := s.h.NewCall(r)
	// Kinto's routes of the alias; the route the request reaches names it
	// again.
	route := "default_bucket_collection"
	if r.URL.Path == defaultPrefix {
		route = "default_bucket"
	}
	httpapi.SetEndpoint(w, route, c)
	w.Header().Set("Access-Control-Expose-Headers", strings.Join(httpapi.BaseExpose(""), ", "))
	if c.User() == "" {
		s.h.RenderError(w, r, kerr.E(kerr.Unauthenticated, ""))
		return
	}
	read := r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions
	if s.readonly && !read {
		s.h.RenderError(w, r, kerr.E(kerr.MethodNotAllowed, ""))
		return
	}
	bid := DefaultBucketID(s.secret, c.User())
	rest := strings.TrimPrefix(r.URL.Path, defaultPrefix)
	if r.Method != http.MethodOptions {
		if err := s.ensure(r.Context(), c, r.Method, bid, rest); err != nil {
			s.h.RenderError(w, r, err)
			return
		}
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path = "/v1/buckets/" + bid + rest
	r2.URL.RawPath = ""
	w.Header().Del("Access-Control-Expose-Headers")
	s.h.Route(w, r2)
}

// ensure creates the personal bucket, and the collection the
// path names, unless the request itself is the PUT that creates it.
func (s *plugin) ensure(ctx context.Context, c *httpapi.Call, method, bid, rest string) error {
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
	_, err := s.h.Engine().Ensure(ctx, c.Caller(), paths...)
	return err
}
