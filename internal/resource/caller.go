package resource

import (
	"context"

	"kintogo/internal/kerr"
	"kintogo/internal/permission"
	"kintogo/internal/storage"
)

// Caller is who makes a request: a user id ("" when anonymous) and its
// principals. The groups the user belongs to are loaded from storage at the
// first need, in the transaction of that need.
type Caller struct {
	UserID string
	// Plugin is true for a plugin writing as its own principal
	// (PluginCaller).
	Plugin     bool
	principals []string
	loaded     bool
}

// anonymous is the principals of every anonymous caller (len == cap, so
// that an append never writes into it).
var anonymous = []string{permission.Everyone}

// NewCaller returns the caller with that user id ("" for anonymous).
func NewCaller(userID string) *Caller {
	return &Caller{UserID: userID, principals: basePrincipals(userID)}
}

// Anonymous returns an anonymous caller.
func Anonymous() *Caller { return NewCaller("") }

func basePrincipals(userID string) []string {
	if userID == "" {
		return anonymous
	}
	return []string{userID, permission.Everyone, permission.Authenticated}
}

// Principals are the caller's principals: its user id, the system ones
// and, once Load ran, its groups.
func (c *Caller) Principals() []string { return c.principals }

// Load adds the groups the user belongs to, once.
func (c *Caller) Load(ctx context.Context, tx storage.Tx) error {
	if c.loaded || c.UserID == "" {
		return nil
	}
	groups, err := tx.UserPrincipals(ctx, c.UserID, true)
	if err != nil {
		return err
	}
	c.loaded = true
	c.principals = append(c.principals, groups...)
	return nil
}

// Reload forgets the groups loaded so far, for a long-lived request (an
// event stream) whose memberships may have changed.
func (c *Caller) Reload() {
	c.loaded = false
	c.principals = basePrincipals(c.UserID)
}

// Writer is the principal recorded as writer of what the caller writes.
func (c *Caller) Writer() string {
	if c.UserID == "" {
		return permission.Everyone
	}
	return c.UserID
}

// Denied is the error of a refused permission: Unauthenticated for an
// anonymous caller (401), Forbidden for an authenticated one (403).
func (c *Caller) Denied() error {
	if c.UserID == "" {
		return kerr.E(kerr.Unauthenticated, "")
	}
	return kerr.E(kerr.Forbidden, "")
}
