// Package model describes Kinto's kinds of objects (buckets, collections,
// groups, records): where each lives in the URL and storage hierarchy, which
// ids and permissions it accepts, and how ids are generated. It is the
// shared vocabulary of the other packages (permissions, the resource
// engine, plugins, HTTP).
package model

import (
	"crypto/rand"
	"regexp"

	"github.com/google/uuid"

	"kintogo/internal/storage"
)

// Kind is one kind of object.
type Kind struct {
	Name   string // storage resource name and event resource_name: "bucket"
	Plural string // URL segment of the list: "buckets"
	// Perms are the permission names an object of this kind accepts, in
	// the order Kinto lists them in errors.
	Perms []string
	// Parent is the kind whose objects contain this one (nil for buckets).
	Parent *Kind
	// NewID generates an id for a POST without one.
	NewID func() string
}

var idPattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_-]*$`)

// MaxIDLength bounds ids, so that no id can exceed what a database index
// accepts (Kinto sets no limit; PostgreSQL fails on index rows past ~2.7 kB).
const MaxIDLength = 255

// ValidID reports whether id is acceptable for an object of this kind.
func (k *Kind) ValidID(id string) bool {
	if k == Account {
		return len(id) <= MaxIDLength && accountIDPattern.MatchString(id)
	}
	return len(id) <= MaxIDLength && idPattern.MatchString(id)
}

// The kinds of Kinto's object tree.
var (
	Bucket     = &Kind{Name: "bucket", Plural: "buckets", Perms: []string{"read", "write", "collection:create", "group:create"}, NewID: nameID}
	Collection = &Kind{Name: "collection", Plural: "collections", Perms: []string{"read", "write", "record:create"}, Parent: Bucket, NewID: nameID}
	Group      = &Kind{Name: "group", Plural: "groups", Perms: []string{"read", "write"}, Parent: Bucket, NewID: nameID}
	Record     = &Kind{Name: "record", Plural: "records", Perms: []string{"read", "write"}, Parent: Collection, NewID: uuid.NewString}
	// Account is the accounts plugin's kind: outside the bucket tree, each
	// account stored under its own username as parent.
	Account = &Kind{Name: "account", Plural: "accounts", Perms: []string{"read", "write"}}
)

var accountIDPattern = regexp.MustCompile(`^[a-zA-Z0-9][+.@a-zA-Z0-9_-]*$`)

// Children are the kinds directly contained in objects of kind k.
func (k *Kind) Children() []*Kind {
	switch k {
	case Bucket:
		return []*Kind{Collection, Group}
	case Collection:
		return []*Kind{Record}
	}
	return nil
}

// AllowsPerm reports whether perm is a permission name of this kind.
func (k *Kind) AllowsPerm(perm string) bool {
	for _, p := range k.Perms {
		if p == perm {
			return true
		}
	}
	return false
}

const (
	idFirst = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	idRest  = idFirst + "_-"
)

// nameID is Kinto's NameGenerator: 8 characters, the first alphanumeric.
func nameID() string {
	b := make([]byte, 8)
	rand.Read(b)
	out := make([]byte, 8)
	out[0] = idFirst[int(b[0])%len(idFirst)]
	for i := 1; i < 8; i++ {
		out[i] = idRest[int(b[i])%len(idRest)]
	}
	return string(out)
}

// Path locates one object, or the list of objects of a kind under a parent
// when ID is empty.
type Path struct {
	Kind         *Kind
	BucketID     string // set for every kind but buckets
	CollectionID string // set for records
	ID           string
}

// ParentURI is the URI of the object containing this one ("" for buckets):
// the storage parent id.
func (p Path) ParentURI() string {
	switch p.Kind.Parent {
	case Bucket:
		return "/buckets/" + p.BucketID
	case Collection:
		return "/buckets/" + p.BucketID + "/collections/" + p.CollectionID
	}
	return ""
}

// PluralURI is the URI of the list containing this object.
func (p Path) PluralURI() string { return p.ParentURI() + "/" + p.Kind.Plural }

// URI is the object's URI, its ACL key: /buckets/b/collections/c.
func (p Path) URI() string { return p.PluralURI() + "/" + p.ID }

// Scope is the storage scope of the object (or list).
func (p Path) Scope() storage.Scope {
	return storage.Scope{Parent: p.ParentURI(), Resource: p.Kind.Name}
}

// WithID returns the path of the object id in the same list.
func (p Path) WithID(id string) Path { p.ID = id; return p }

// In is the ids of the bucket and of the collection the object at p is,
// or lies in ("" when none).
func (p Path) In() (bucket, collection string) {
	switch p.Kind {
	case Bucket:
		return p.ID, ""
	case Collection:
		return p.BucketID, p.ID
	}
	return p.BucketID, p.CollectionID
}

// ParentPath is the path of the containing object (its Kind is nil for
// buckets, whose parent is the root).
func (p Path) ParentPath() Path {
	switch p.Kind.Parent {
	case Bucket:
		return Path{Kind: Bucket, ID: p.BucketID}
	case Collection:
		return Path{Kind: Collection, BucketID: p.BucketID, ID: p.CollectionID}
	}
	return Path{}
}

// ChildScope is the storage scope of the children of kind child under the
// object at p.
func (p Path) ChildScope(child *Kind) storage.Scope {
	return storage.Scope{Parent: p.URI(), Resource: child.Name}
}
