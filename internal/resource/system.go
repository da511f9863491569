package resource

import (
	"context"
	"strings"

	"kintogo/internal/kerr"
	"kintogo/internal/model"
	"kintogo/internal/query"
	"kintogo/internal/storage"
)

// Writes of a plugin acting as its own principal, inside a unit of work
// (the signer copying a workspace to its destination): no permission
// check, no precondition and no schema validation (what is copied was
// validated where it was written), but the same storage, timestamps,
// cascades and group memberships as any write, and a change for the
// unit's hooks (history, the changes feed, push), made by the caller
// given. Plugins ignore their own changes where Kinto's plugins do.

// Store writes data as the object at p, creating or replacing it, and
// returns it with what it replaced (nil for a creation). A last_modified
// in data is dropped: the object gets the scope's next timestamp. perms,
// when not nil, replace the object's permissions exactly (no writer is
// added); nil keeps them.
func (u *Unit) Store(ctx context.Context, c *Caller, p model.Path, data map[string]any, perms map[string][]string) (obj, old *storage.Object, err error) {
	tx := u.Tx
	if err := u.beforeWrite(ctx, p); err != nil {
		return nil, nil, err
	}
	old, err = tx.Get(ctx, p.Scope(), p.ID)
	if err != nil && !kerr.Is(err, kerr.NotFound) {
		return nil, nil, err
	}
	data = CopyData(data)
	for _, f := range []string{query.IDField, query.ModifiedField, query.DeletedField} {
		delete(data, f)
	}
	obj, err = tx.Put(ctx, p.Scope(), &storage.Object{ID: p.ID, Data: data})
	if err != nil {
		return nil, nil, err
	}
	if err := afterWrite(ctx, tx, p, old, obj); err != nil {
		return nil, nil, err
	}
	if perms != nil {
		if err := tx.SetPermissions(ctx, p.URI(), replacePermissions(p.Kind, perms)); err != nil {
			return nil, nil, err
		}
	}
	return obj, old, u.Changed(ctx, NewChange(p, c, obj, old))
}

// Remove deletes the object at p, leaving a tombstone, with what lies
// under it as a DELETE does, and returns the tombstone and the object.
// A missing object is kerr.NotFound.
func (u *Unit) Remove(ctx context.Context, c *Caller, p model.Path) (tomb, old *storage.Object, err error) {
	tx := u.Tx
	if err := u.beforeWrite(ctx, p); err != nil {
		return nil, nil, err
	}
	old, err = tx.Get(ctx, p.Scope(), p.ID)
	if err != nil {
		return nil, nil, err
	}
	tomb, err = tx.Delete(ctx, p.Scope(), p.ID, 0)
	if err != nil {
		return nil, nil, err
	}
	if err := cascade(ctx, tx, p); err != nil {
		return nil, nil, err
	}
	return tomb, old, u.Changed(ctx, NewChange(p, c, tomb, old))
}

// Create makes the object at p when it does not exist (Kinto's
// storage.create that ignores a UnicityError), with exactly perms, and
// reports whether it did.
func (u *Unit) Create(ctx context.Context, c *Caller, p model.Path, data map[string]any, perms map[string][]string) (bool, error) {
	if _, err := u.Tx.Get(ctx, p.Scope(), p.ID); err == nil {
		return false, nil
	} else if !kerr.Is(err, kerr.NotFound) {
		return false, err
	}
	if perms == nil {
		perms = map[string][]string{}
	}
	_, _, err := u.Store(ctx, c, p, data, perms)
	return err == nil, err
}

// PluginCaller returns the caller of a plugin's own writes: its user id, with
// no group.
func PluginCaller(userID string) *Caller {
	return &Caller{UserID: userID, Plugin: true, principals: basePrincipals(userID), loaded: true}
}

// RemovePrincipal removes a principal everywhere, as the deletion of what
// it stood for (an account) asks: from every ACL, and from the members of
// every group holding it (each group rewritten by c, with its history and
// events), so that whoever later gets the same id inherits nothing.
func (u *Unit) RemovePrincipal(ctx context.Context, c *Caller, principal string) error {
	groups, err := u.Tx.UserPrincipals(ctx, principal, false)
	if err != nil {
		return err
	}
	for _, g := range groups {
		rest, ok := strings.CutPrefix(g, "/buckets/")
		bid, gid, ok2 := strings.Cut(rest, "/groups/")
		if !ok || !ok2 {
			continue
		}
		p := model.Path{Kind: model.Group, BucketID: bid, ID: gid}
		obj, err := u.Tx.Get(ctx, p.Scope(), gid)
		if kerr.Is(err, kerr.NotFound) {
			continue
		}
		if err != nil {
			return err
		}
		kept := []any{}
		for _, m := range members(obj) {
			if m != principal {
				kept = append(kept, m)
			}
		}
		data := CopyData(obj.Data)
		data["members"] = kept
		if _, _, err := u.Store(ctx, c, p, data, nil); err != nil {
			return err
		}
	}
	return u.Tx.RemovePrincipal(ctx, principal)
}
