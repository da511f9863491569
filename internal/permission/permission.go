// Package permission decides who may do what, with Kinto's rules: the
// inheritance of permissions down the bucket > collection > record tree,
// permissions granted by settings (`<kind>_<perm>_principals`), and the
// scoping of lists to the objects a caller may see.
// (../shared/reference/kinto-protocol.md §7.4–7.6.)
package permission

import (
	"context"
	"strings"

	"kintogo/internal/config"
	"kintogo/internal/model"
	"kintogo/internal/storage"
)

// Principals of well-known groups of callers.
const (
	Everyone      = "system.Everyone"
	Authenticated = "system.Authenticated"
)

// Grants returns the (URI, permission) pairs any of which grants perm on
// the object at p: its own ACEs and those inherited from its ancestors.
// perm is "read", "write" or "<child>:create".
func Grants(p model.Path, perm string) []storage.ACE {
	bucket := "/buckets/" + p.BucketID
	if p.Kind == model.Bucket {
		bucket = p.URI()
	}
	uri := p.URI()
	ace := func(u, perm string) storage.ACE { return storage.ACE{URI: u, Permission: perm} }
	switch p.Kind {
	case model.Bucket:
		switch perm {
		case "write":
			return []storage.ACE{ace(uri, "write")}
		case "read":
			return []storage.ACE{ace(uri, "write"), ace(uri, "read"), ace(uri, "collection:create"), ace(uri, "group:create")}
		default: // collection:create, group:create
			return []storage.ACE{ace(uri, "write"), ace(uri, perm)}
		}
	case model.Group:
		if perm == "write" {
			return []storage.ACE{ace(bucket, "write"), ace(uri, "write")}
		}
		return []storage.ACE{ace(bucket, "write"), ace(bucket, "read"), ace(uri, "write"), ace(uri, "read")}
	case model.Collection:
		switch perm {
		case "write":
			return []storage.ACE{ace(bucket, "write"), ace(uri, "write")}
		case "read":
			return []storage.ACE{ace(bucket, "write"), ace(bucket, "read"), ace(uri, "write"), ace(uri, "read"), ace(uri, "record:create")}
		default: // record:create
			return []storage.ACE{ace(bucket, "write"), ace(uri, "write"), ace(uri, "record:create")}
		}
	case model.Record:
		coll := p.ParentURI()
		if perm == "write" {
			return []storage.ACE{ace(bucket, "write"), ace(coll, "write"), ace(uri, "write")}
		}
		return []storage.ACE{ace(bucket, "write"), ace(bucket, "read"), ace(coll, "write"), ace(coll, "read"), ace(uri, "write"), ace(uri, "read")}
	}
	return nil
}

// ListGrants returns the pairs that grant perm ("read" or "write") on every
// object of the list at p (p.ID is ignored): the parent's permissions that
// flow down to all its children of that kind.
func ListGrants(p model.Path, perm string) []storage.ACE {
	var out []storage.ACE
	for _, a := range Grants(p.WithID("\x00"), perm) {
		if !strings.HasSuffix(a.URI, "/\x00") {
			out = append(out, a)
		}
	}
	return out
}

// objectPerms are the permissions on an object that give a caller access to
// it in a list (so that it shows up in a scoped list).
func objectPerms(k *model.Kind, perm string) []string {
	if perm == "write" {
		return []string{"write"}
	}
	switch k {
	case model.Bucket:
		return []string{"read", "write", "collection:create", "group:create"}
	case model.Collection:
		return []string{"read", "write", "record:create"}
	}
	return []string{"read", "write"}
}

// Authorizer answers permission questions for one kintogo instance.
type Authorizer struct {
	settings *config.Settings
}

// New returns an authorizer using the settings grants of s.
func New(s *config.Settings) *Authorizer { return &Authorizer{settings: s} }

// settingName is the setting consulted for an inherited pair while
// authorizing kind: `<kind>:create` pairs use `<kind>_create_principals`,
// every other pair `<requested kind>_<perm>_principals` (Kinto's rule).
func settingName(requested string, perm string) string {
	if child, ok := strings.CutSuffix(perm, ":create"); ok {
		return child + "_create_principals"
	}
	return requested + "_" + perm + "_principals"
}

func intersects(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

// SettingGrants reports whether the list setting name (such as
// account_create_principals) names one of the principals.
func (a *Authorizer) SettingGrants(name string, principals []string) bool {
	return intersects(a.settings.List(name), principals)
}

// bySettings reports whether a settings grant gives one of the pairs.
func (a *Authorizer) bySettings(requested string, aces []storage.ACE, principals []string) bool {
	seen := map[string]bool{}
	for _, ace := range aces {
		name := settingName(requested, ace.Permission)
		if seen[name] {
			continue
		}
		seen[name] = true
		if a.SettingGrants(name, principals) {
			return true
		}
	}
	return false
}

// Allowed reports whether the principals hold perm on the object at p.
func (a *Authorizer) Allowed(ctx context.Context, tx storage.Tx, p model.Path, perm string, principals []string) (bool, error) {
	aces := Grants(p, perm)
	if a.bySettings(p.Kind.Name, aces, principals) {
		return true, nil
	}
	return tx.HasAny(ctx, aces, principals)
}

// CanCreate reports whether the principals may create an object of kind
// p.Kind under p's parent.
func (a *Authorizer) CanCreate(ctx context.Context, tx storage.Tx, p model.Path, principals []string) (bool, error) {
	perm := p.Kind.Name + ":create"
	if p.Kind == model.Bucket {
		return a.SettingGrants("bucket_create_principals", principals), nil
	}
	parent := p.ParentPath()
	aces := Grants(parent, perm)
	if a.bySettings(p.Kind.Name, aces, principals) {
		return true, nil
	}
	return tx.HasAny(ctx, aces, principals)
}

// ListScope says which objects of a list a caller may see or change.
type ListScope struct {
	// All is true when the caller holds the permission on the whole list.
	All bool
	// IDs are the objects the caller may access when All is false; empty
	// when it may only create (an empty list rather than a 403).
	IDs []string
}

// ForList decides access to the list at p for perm ("read" for GET/HEAD,
// "write" for DELETE). ok is false when the caller may not use the list at
// all (a 401 or 403): neither on the whole list, nor on one of its objects,
// nor allowed to create in it.
func (a *Authorizer) ForList(ctx context.Context, tx storage.Tx, p model.Path, perm string, principals []string) (scope ListScope, ok bool, err error) {
	aces := ListGrants(p, perm)
	if a.bySettings(p.Kind.Name, aces, principals) || a.kindGrant(p.Kind, perm, principals) {
		return ListScope{All: true}, true, nil
	}
	if has, err := tx.HasAny(ctx, aces, principals); err != nil || has {
		return ListScope{All: has}, has, err
	}
	prefix := p.PluralURI() + "/"
	acc, err := tx.Accessible(ctx, prefix, 1, objectPerms(p.Kind, perm), principals)
	if err != nil {
		return ListScope{}, false, err
	}
	if len(acc) > 0 {
		ids := make([]string, 0, len(acc))
		for uri := range acc {
			ids = append(ids, strings.TrimPrefix(uri, prefix))
		}
		return ListScope{IDs: ids}, true, nil
	}
	// Who may create objects of the list may use it: it shows (or deletes)
	// nothing they cannot access.
	if can, err := a.CanCreate(ctx, tx, p, principals); err != nil || can {
		return ListScope{IDs: []string{}}, can, err
	}
	return ListScope{}, false, nil
}

// kindGrant reports whether a `<kind>_<perm>_principals` setting grants perm
// on every object of the kind (write implies read).
func (a *Authorizer) kindGrant(k *model.Kind, perm string, principals []string) bool {
	if a.SettingGrants(k.Name+"_write_principals", principals) {
		return true
	}
	return perm == "read" && a.SettingGrants(k.Name+"_read_principals", principals)
}

// CanReadParent reports whether the caller may read the object containing
// p: when it may, asking for a missing object answers 404 rather than 403.
func (a *Authorizer) CanReadParent(ctx context.Context, tx storage.Tx, p model.Path, principals []string) (bool, error) {
	if p.Kind == model.Bucket {
		return a.kindGrant(model.Bucket, "read", principals), nil
	}
	// Kinto's "read" here, not the "read:attributes" of a GET of the
	// parent itself: the right to create in it does not count, or its
	// holders would tell missing children (404) from existing ones (403).
	parent := p.ParentPath()
	var aces []storage.ACE
	for _, ace := range Grants(parent, "read") {
		if !strings.HasSuffix(ace.Permission, ":create") {
			aces = append(aces, ace)
		}
	}
	if a.bySettings(parent.Kind.Name, aces, principals) {
		return true, nil
	}
	return tx.HasAny(ctx, aces, principals)
}
