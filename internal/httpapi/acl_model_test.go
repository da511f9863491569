package httpapi_test

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"kintogo/internal/auth"
	"kintogo/internal/storage"
)

// TestPermissionsAgainstModel builds random ACL configurations (users,
// groups with random members, random permissions on a bucket, its
// collections, groups and records) and checks every read, write and list
// of every user against an independent model of Kinto's rules
// (kinto-protocol.md §7.4–7.6): no access the rules forbid, no refusal
// they allow. It runs on every backend (each seed on a fresh store), with
// fewer seeds on the slower ones.
func TestPermissionsAgainstModel(t *testing.T) {
	const secret = "b1d9a3a1bc6c4ad1f5e4b9bb3e1c3a1e0e1f3c6a2d8b7c4e5f6a7b8c9d0e1f2a"
	users := []string{"u0", "u1", "u2", "u3", ""} // "" is anonymous
	uid := func(u string) string { return "basicauth:" + auth.HMACDigest(secret, u+":pw") }
	seeds := map[string]uint64{"memory": 40, "memory-retried": 40, "sqlite": 40, "postgresql": 30}
	for name, open := range backends() {
		t.Run(name, func(t *testing.T) {
			n := seeds[name]
			if n == 0 {
				n = 10
			}
			for seed := uint64(1); seed <= n; seed++ {
				t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
					permissionsModelSeed(t, open(t), seed, users, uid)
				})
			}
		})
	}
}

// permissionsModelSeed is one random configuration of
// TestPermissionsAgainstModel, checked on a server over store.
func permissionsModelSeed(t *testing.T, store storage.Storage, seed uint64, users []string, uid func(string) string) {
	rng := rand.New(rand.NewPCG(seed, seed*7919))
	c := newClient(t, store, nil)
	owner := "owner:pw"
	m := &aclModel{aces: map[string]map[string][]string{}, members: map[string][]string{}}
	pool := []string{"system.Everyone", "system.Authenticated", "/buckets/b/groups/g0", "/buckets/b/groups/g1"}
	for _, u := range users[:4] {
		pool = append(pool, uid(u))
	}
	pick := func() []string {
		out := []string{}
		for _, p := range pool {
			if rng.IntN(7) == 0 {
				out = append(out, p)
			}
		}
		return out
	}
	perms := func(names ...string) map[string]any {
		out := map[string]any{}
		for _, n := range names {
			out[n] = pick()
		}
		return out
	}
	put := func(uri string, data map[string]any, p map[string]any) {
		body := map[string]any{"permissions": p}
		if data != nil {
			body["data"] = data
		}
		c.put("/v1"+uri, owner, body).must(t, 201)
		acl := map[string][]string{}
		for k, v := range p {
			acl[k] = v.([]string)
		}
		acl["write"] = append(acl["write"], uid("owner"))
		m.aces[uri] = acl
	}
	put("/buckets/b", nil, perms("read", "write", "collection:create", "group:create"))
	for g := 0; g < 2; g++ {
		members := []string{}
		for _, u := range users[:4] {
			if rng.IntN(3) == 0 {
				members = append(members, uid(u))
			}
		}
		if rng.IntN(4) == 0 {
			members = append(members, "system.Authenticated")
		}
		uri := fmt.Sprintf("/buckets/b/groups/g%d", g)
		put(uri, map[string]any{"members": members}, perms("read", "write"))
		m.members[uri] = members
	}
	for ci := 0; ci < 2; ci++ {
		coll := fmt.Sprintf("/buckets/b/collections/c%d", ci)
		put(coll, nil, perms("read", "write", "record:create"))
		for ri := 0; ri < 3; ri++ {
			put(fmt.Sprintf("%s/records/r%d", coll, ri), nil, perms("read", "write"))
		}
	}
	for _, u := range users {
		auth := ""
		principals := []string{"system.Everyone"}
		if u != "" {
			auth = u + ":pw"
			principals = append(principals, uid(u), "system.Authenticated")
			for g, ms := range m.members {
				for _, mb := range ms {
					if mb == uid(u) || mb == "system.Authenticated" {
						principals = append(principals, g)
						break
					}
				}
			}
		}
		denied := 403
		if u == "" {
			denied = 401
		}
		check := func(what string, got *response, allowed bool, okStatus int) {
			t.Helper()
			want := denied
			if allowed {
				want = okStatus
			}
			if got.status != want {
				t.Errorf("user %q %s: status %d, model says %d (principals %v)", u, what, got.status, want, principals)
			}
		}
		uris := []string{"/buckets/b", "/buckets/b/groups/g0", "/buckets/b/groups/g1"}
		for ci := 0; ci < 2; ci++ {
			coll := fmt.Sprintf("/buckets/b/collections/c%d", ci)
			uris = append(uris, coll)
			for ri := 0; ri < 3; ri++ {
				uris = append(uris, fmt.Sprintf("%s/records/r%d", coll, ri))
			}
		}
		for _, uri := range uris {
			check("GET "+uri, c.get("/v1"+uri, auth), m.allowed(principals, uri, "read"), 200)
			// A write that an If-Match keeps from changing anything:
			// allowed callers get the 412, refused ones 401/403.
			r := c.do(req{method: "PATCH", path: "/v1" + uri, auth: auth, body: map[string]any{"data": map[string]any{}}, header: map[string]string{"If-Match": `"1"`}})
			check("PATCH "+uri, r, m.allowed(principals, uri, "write"), 412)
		}
		for ci := 0; ci < 2; ci++ {
			coll := fmt.Sprintf("/buckets/b/collections/c%d", ci)
			r := c.get("/v1"+coll+"/records", auth)
			wantIDs, ok := m.listRecords(principals, coll)
			check("list "+coll, r, ok, 200)
			if ok && r.status == 200 {
				var got []string
				for _, o := range r.list("data") {
					got = append(got, o.(map[string]any)["id"].(string))
				}
				sort.Strings(got)
				if strings.Join(got, ",") != strings.Join(wantIDs, ",") {
					t.Errorf("user %q list %s: %v, model says %v", u, coll, got, wantIDs)
				}
			}
		}
	}
}

// aclModel is an independent statement of Kinto's permission rules.
type aclModel struct {
	aces    map[string]map[string][]string // uri -> perm -> principals
	members map[string][]string
}

func (m *aclModel) has(principals []string, uri, perm string) bool {
	for _, p := range m.aces[uri][perm] {
		for _, q := range principals {
			if p == q {
				return true
			}
		}
	}
	return false
}

// grants lists the (object, permission) pairs that give perm on uri.
func grants(uri, perm string) [][2]string {
	parts := strings.Split(strings.TrimPrefix(uri, "/"), "/")
	bucket := "/" + parts[0] + "/" + parts[1]
	switch {
	case len(parts) == 2: // bucket
		if perm == "write" {
			return [][2]string{{uri, "write"}}
		}
		return [][2]string{{uri, "write"}, {uri, "read"}, {uri, "collection:create"}, {uri, "group:create"}}
	case parts[2] == "groups":
		if perm == "write" {
			return [][2]string{{bucket, "write"}, {uri, "write"}}
		}
		return [][2]string{{bucket, "write"}, {bucket, "read"}, {uri, "write"}, {uri, "read"}}
	case len(parts) == 4: // collection
		if perm == "write" {
			return [][2]string{{bucket, "write"}, {uri, "write"}}
		}
		return [][2]string{{bucket, "write"}, {bucket, "read"}, {uri, "write"}, {uri, "read"}, {uri, "record:create"}}
	default: // record
		coll := strings.Join(parts[:4], "/")
		coll = "/" + coll
		if perm == "write" {
			return [][2]string{{bucket, "write"}, {coll, "write"}, {uri, "write"}}
		}
		return [][2]string{{bucket, "write"}, {bucket, "read"}, {coll, "write"}, {coll, "read"}, {uri, "write"}, {uri, "read"}}
	}
}

func (m *aclModel) allowed(principals []string, uri, perm string) bool {
	for _, g := range grants(uri, perm) {
		if m.has(principals, g[0], g[1]) {
			return true
		}
	}
	return false
}

// listRecords is what a list of a collection's records shows: everything
// to readers of the list, the readable records to others, an empty list to
// those who may only create, nothing (a refusal) to the rest.
func (m *aclModel) listRecords(principals []string, coll string) ([]string, bool) {
	bucket := coll[:strings.Index(coll, "/collections/")]
	all := m.has(principals, bucket, "write") || m.has(principals, bucket, "read") ||
		m.has(principals, coll, "write") || m.has(principals, coll, "read")
	var ids []string
	for ri := 0; ri < 3; ri++ {
		uri := fmt.Sprintf("%s/records/r%d", coll, ri)
		if all || m.has(principals, uri, "read") || m.has(principals, uri, "write") {
			ids = append(ids, fmt.Sprintf("r%d", ri))
		}
	}
	if all || len(ids) > 0 {
		return ids, true
	}
	if m.has(principals, coll, "record:create") {
		return []string{}, true
	}
	return nil, false
}
