package sqlstore

import (
	"slices"
	"strings"

	"kintogo/internal/storage"
)

// memo keeps, for the rest of one read-write transaction, the reads its
// later work is likely to repeat: a group of writes into one list (see
// GroupCommitter, Groups) or a batch asks each time for the caller's
// groups, the list's parent and the permission to create in it. An entry
// is dropped by the transaction's own writes that could change it, and
// everything when a savepoint is undone (what the memo learnt there may be
// undone too). On SQLite, whose writer is alone, a memoized read is what
// the database would answer. On PostgreSQL (READ COMMITTED), a statement
// may see what another transaction committed since the previous one: a
// memoized read answers as of its first reading instead, so that a
// permission revoked, a group left or a parent deleted by another writer
// meanwhile takes effect for the next transaction, at most one group of
// writes later (milliseconds), as it would for a write that had read just
// before the change.
type memo struct {
	principals map[string][]string
	objects    map[objectKey]*storage.Object // nil: not found
	hasAny     map[string]hasAnyEntry
}

type objectKey struct {
	scope storage.Scope
	id    string
}

type hasAnyEntry struct {
	found bool
	uris  []string
}

// forget drops everything (a savepoint undone, a flush).
func (t *tx) forget() {
	t.memo = memo{}
	t.held = nil
}

func principalsKey(userID string, authenticated bool) string {
	if authenticated {
		return "1" + userID
	}
	return "0" + userID
}

func (m *memo) rememberPrincipals(key string, p []string) {
	if m.principals == nil {
		m.principals = map[string][]string{}
	}
	m.principals[key] = slices.Clone(p)
}

func (m *memo) rememberObject(k objectKey, o *storage.Object) {
	if m.objects == nil {
		m.objects = map[objectKey]*storage.Object{}
	}
	m.objects[k] = o
}

func hasAnyKey(aces []storage.ACE, principals []string) string {
	var b strings.Builder
	for _, a := range aces {
		b.WriteString(a.URI)
		b.WriteByte(0)
		b.WriteString(a.Permission)
		b.WriteByte(0)
	}
	b.WriteByte(1)
	for _, p := range principals {
		b.WriteString(p)
		b.WriteByte(0)
	}
	return b.String()
}

func (m *memo) rememberHasAny(key string, aces []storage.ACE, found bool) {
	if m.hasAny == nil {
		m.hasAny = map[string]hasAnyEntry{}
	}
	uris := make([]string, len(aces))
	for i, a := range aces {
		uris[i] = a.URI
	}
	m.hasAny[key] = hasAnyEntry{found: found, uris: uris}
}

// aclChanged drops the permission answers that involve uri.
func (m *memo) aclChanged(uri string) {
	for k, e := range m.hasAny {
		if slices.Contains(e.uris, uri) {
			delete(m.hasAny, k)
		}
	}
}
