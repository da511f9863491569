// Package permissions is Kinto's permissions endpoint: GET /v1/permissions
// lists every object on which the caller holds a permission
// (experimental_permissions_endpoint, or kinto.plugins.admin).
package permissions

import (
	"context"
	"net/http"
	"sort"
	"strings"

	"kintogo/internal/httpapi"
	"kintogo/internal/model"
	"kintogo/internal/query"
	"kintogo/internal/storage"
)

// Plugin is the permissions endpoint.
type Plugin struct{}

// Name implements plugins.Plugin: the endpoint is a setting of Kinto's
// core (experimental_permissions_endpoint), and part of the admin plugin.
func (Plugin) Name() string { return "experimental_permissions_endpoint" }

// Provision implements plugins.Plugin.
func (Plugin) Provision(h *httpapi.Server) error {
	s := &plugin{h: h}
	h.Handle("/v1/permissions", httpapi.Endpoint{Name: "permissions-plural", Expose: httpapi.ListExpose, Methods: map[string]httpapi.Handler{"GET": s.listPermissions}})
	h.Capability("permissions_endpoint", map[string]any{
		"description": "The permissions endpoint can be used to list all user objects permissions.",
		"url":         "https://kinto.readthedocs.io/en/latest/configuration/settings.html#activating-the-permissions-endpoint",
	})
	return nil
}

type plugin struct{ h *httpapi.Server }

func (s *plugin) settingGrants(name string, c *httpapi.Call) bool {
	return s.h.Engine().Authorizer().SettingGrants(name, c.Principals())
}

// permissionsPath names /permissions for cache settings.
var permissionsPath = model.Path{Kind: &model.Kind{Name: "permissions", Plural: "permissions"}}

// permissionEntry is one object of GET /permissions.
type permissionEntry map[string]any

// Field implements query.Fielder.
func (e permissionEntry) Field(path string) (any, bool) { return query.Lookup(e, path) }

// permissionsSchema is the closed set of fields of /permissions entries.
var permissionsSchema = query.Schema{Closed: true, Fields: []string{
	"uri", "resource_name", "permissions", "bucket_id", "collection_id", "group_id", "record_id", "account_id",
}}

// impliedPermissions are the permissions a permission gives on the same
// object, as /permissions shows them.
var impliedPermissions = map[string]map[string][]string{
	"bucket": {
		"write":             {"write", "read", "read:attributes", "collection:create", "group:create"},
		"read":              {"read", "read:attributes"},
		"collection:create": {"collection:create", "read:attributes"},
		"group:create":      {"group:create", "read:attributes"},
	},
	"collection": {
		"write":         {"write", "read", "read:attributes", "record:create"},
		"read":          {"read", "read:attributes"},
		"record:create": {"record:create", "read:attributes"},
	},
}

// describeURI returns the entry of an object URI (nil for URIs that name no
// object kintogo knows).
func describeURI(uri string) permissionEntry {
	parts := strings.Split(strings.TrimPrefix(uri, "/"), "/")
	e := permissionEntry{"uri": uri}
	switch {
	case len(parts) == 2 && parts[0] == "buckets":
		e["resource_name"], e["id"], e["bucket_id"] = "bucket", parts[1], parts[1]
	case len(parts) == 2 && parts[0] == "accounts":
		e["resource_name"], e["id"], e["account_id"] = "account", parts[1], parts[1]
	case len(parts) == 4 && parts[0] == "buckets" && parts[2] == "collections":
		e["resource_name"], e["id"], e["bucket_id"], e["collection_id"] = "collection", parts[3], parts[1], parts[3]
	case len(parts) == 4 && parts[0] == "buckets" && parts[2] == "groups":
		e["resource_name"], e["id"], e["bucket_id"], e["group_id"] = "group", parts[3], parts[1], parts[3]
	case len(parts) == 6 && parts[0] == "buckets" && parts[2] == "collections" && parts[4] == "records":
		e["resource_name"], e["id"], e["bucket_id"], e["collection_id"], e["record_id"] = "record", parts[5], parts[1], parts[3], parts[5]
	default:
		return nil
	}
	return e
}

// listPermissions is GET/HEAD /permissions: every object on which the
// caller holds an explicit permission, with the permissions it implies on
// that object, plus the root permissions granted by settings.
func (s *plugin) listPermissions(w http.ResponseWriter, r *http.Request, c *httpapi.Call) error {
	ctx := r.Context()
	if err := httpapi.FirstErr(httpapi.CheckAccept(r), c.ParamsErr); err != nil {
		return err
	}
	q, err := query.Parse(c.Params, permissionsSchema, s.h.Engine().NowMS())
	if err != nil {
		return err
	}
	// last_modified means nothing here: its filters and sorts are dropped.
	filters := q.Filters[:0]
	for _, f := range q.Filters {
		if f.Field != query.ModifiedField {
			filters = append(filters, f)
		}
	}
	var sorts []query.Sort
	for _, so := range q.Sort {
		if so.Field != query.ModifiedField {
			sorts = append(sorts, so)
		}
	}
	if len(sorts) == 0 {
		sorts = []query.Sort{{Field: "uri", Desc: true}}
	}
	var entries []permissionEntry
	err = s.h.View(ctx, func(tx storage.Tx) error {
		if err := c.LoadPrincipals(ctx, tx); err != nil {
			return err
		}
		root := s.h.RootPermissions(c)
		if len(root) > 0 {
			sort.Strings(root)
			entries = append(entries, permissionEntry{"uri": "/", "resource_name": "root", "permissions": toAny(root)})
		}
		granted, err := s.settingsGrantedObjects(ctx, tx, c)
		if err != nil {
			return err
		}
		all := []string{"read", "write", "collection:create", "group:create", "record:create"}
		for _, scan := range []struct {
			prefix string
			depth  int
		}{{"/buckets/", 1}, {"/buckets/", 3}, {"/buckets/", 5}, {"/accounts/", 1}} {
			found, err := tx.Accessible(ctx, scan.prefix, scan.depth, all, c.Principals())
			if err != nil {
				return err
			}
			for uri, perms := range found {
				perms = append(perms, granted[uri]...)
				delete(granted, uri)
				e := describeURI(uri)
				if e == nil {
					continue
				}
				e["permissions"] = toAny(expandPermissions(e["resource_name"].(string), perms))
				entries = append(entries, e)
			}
		}
		for uri, perms := range granted {
			if e := describeURI(uri); e != nil {
				e["permissions"] = toAny(expandPermissions(e["resource_name"].(string), perms))
				entries = append(entries, e)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	selected := make([]permissionEntry, 0, len(entries))
	for _, e := range entries {
		if query.Match(e, filters) && q.AfterLast(e) {
			selected = append(selected, e)
		}
	}
	query.SortSlice(selected, sorts)
	q.Sort = sorts
	limit := s.h.Engine().Limit(q.Limit)
	next := ""
	if len(selected) > limit {
		selected = selected[:limit]
		next = s.h.NextPage(r, c.Params, limit, query.Token(selected[len(selected)-1], sorts, q.Offset+int64(limit)))
	}
	items := make([]map[string]any, len(selected))
	for i, e := range selected {
		if q.Fields != nil {
			items[i] = query.Project(e, q.Fields)
			items[i]["id"] = e["id"]
			continue
		}
		items[i] = e
	}
	return s.h.WriteList(w, r, c, httpapi.ListReply{Path: permissionsPath, Query: q, Next: next, Counted: true, Total: int64(len(selected)), Items: items})
}

func toAny(list []string) []any {
	out := make([]any, len(list))
	for i, s := range list {
		out[i] = s
	}
	return out
}

// expandPermissions adds to permissions of an object those they imply on
// the same object, sorted.
func expandPermissions(kind string, perms []string) []string {
	set := map[string]bool{}
	for _, p := range perms {
		implied, ok := impliedPermissions[kind][p]
		if !ok {
			implied = []string{p}
			if p == "write" {
				implied = []string{"write", "read"}
			}
		}
		for _, i := range implied {
			set[i] = true
		}
	}
	list := make([]string, 0, len(set))
	for p := range set {
		list = append(list, p)
	}
	sort.Strings(list)
	return list
}

// settingsGrantedObjects lists the buckets, collections and groups on
// which a `<kind>_<perm>_principals` setting grants the caller something:
// every existing object of that kind.
func (s *plugin) settingsGrantedObjects(ctx context.Context, tx storage.Tx, c *httpapi.Call) (map[string][]string, error) {
	out := map[string][]string{}
	perms := func(kind string) []string {
		var ps []string
		for _, p := range []string{"read", "write"} {
			if s.settingGrants(kind+"_"+p+"_principals", c) {
				ps = append(ps, p)
			}
		}
		return ps
	}
	bucketPerms, collPerms, groupPerms := perms("bucket"), perms("collection"), perms("group")
	if len(bucketPerms)+len(collPerms)+len(groupPerms) == 0 {
		return out, nil
	}
	buckets, err := tx.List(ctx, storage.Scope{Resource: model.Bucket.Name}, storage.ListOptions{})
	if err != nil {
		return nil, err
	}
	for _, b := range buckets {
		bucket := model.Path{Kind: model.Bucket, ID: b.ID}
		if len(bucketPerms) > 0 {
			out[bucket.URI()] = bucketPerms
		}
		for _, child := range []struct {
			kind  *model.Kind
			perms []string
		}{{model.Collection, collPerms}, {model.Group, groupPerms}} {
			if len(child.perms) == 0 {
				continue
			}
			objs, err := tx.List(ctx, bucket.ChildScope(child.kind), storage.ListOptions{})
			if err != nil {
				return nil, err
			}
			for _, o := range objs {
				out[model.Path{Kind: child.kind, BucketID: b.ID, ID: o.ID}.URI()] = child.perms
			}
		}
	}
	return out, nil
}
