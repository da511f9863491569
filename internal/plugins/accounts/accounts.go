// Package accounts is Kinto's kinto.plugins.accounts: user accounts with
// bcrypt passwords and the `account` authentication policy. Accounts are
// stored as objects of kind "account" whose parent is their own username,
// with the ACL key /accounts/{id} (kinto-protocol.md §11.2).
package accounts

import (
	"context"
	"maps"
	"net/http"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"kintogo/internal/auth"
	"kintogo/internal/events"
	"kintogo/internal/httpapi"
	"kintogo/internal/kerr"
	"kintogo/internal/model"
	"kintogo/internal/pyfmt"
	"kintogo/internal/query"
	"kintogo/internal/resource"
	"kintogo/internal/storage"
)

// Plugin is kinto.plugins.accounts.
type Plugin struct{}

// Name implements plugins.Plugin.
func (Plugin) Name() string { return "kinto.plugins.accounts" }

// Provision implements plugins.Plugin.
func (Plugin) Provision(h *httpapi.Server) error {
	s := &plugin{h: h}
	s.policy = s.accountPolicy()
	h.AuthPolicy(s.policy)
	h.RootPermission("account:create", "account_create_principals")
	h.Handle("/v1/accounts", httpapi.Endpoint{Name: "account-plural", Expose: httpapi.ListExpose, Methods: map[string]httpapi.Handler{
		"GET": s.listAccounts, "POST": s.writeAccount, "DELETE": s.deleteAccounts,
	}})
	h.Handle("/v1/accounts/{id}", httpapi.Endpoint{Name: "account-object", Expose: httpapi.ObjectExpose, Methods: map[string]httpapi.Handler{
		"GET": s.getAccount, "PUT": s.writeAccount, "PATCH": s.writeAccount, "DELETE": s.deleteAccount,
	}})
	h.Capability("accounts", map[string]any{
		"description":        "Manage user accounts.",
		"url":                "https://kinto.readthedocs.io/en/latest/api/1.x/accounts.html",
		"validation_enabled": false,
	})
	s.warnOpenAdministrators()
	return nil
}

// plugin is the provisioned accounts plugin.
type plugin struct {
	h      *httpapi.Server
	policy *auth.Accounts
}

func accountScope(id string) storage.Scope {
	return storage.Scope{Parent: id, Resource: model.Account.Name}
}

func accountURI(id string) string { return "/accounts/" + id }

var accountPath = model.Path{Kind: model.Account}

// accountPolicy builds the `account` authentication policy over storage.
func (s *plugin) accountPolicy() *auth.Accounts {
	p := &auth.Accounts{
		Secret:            s.h.Settings().String("userid_hmac_secret"),
		TTL:               time.Duration(s.h.Settings().Int("account_cache_ttl_seconds")) * time.Second,
		Concurrency:       checkConcurrency(int(s.h.Settings().Int("account_check_concurrency"))),
		FailuresPerMinute: int(s.h.Settings().Int("account_failures_per_minute")),
		Now:               s.h.Now,
		Hash: func(r *http.Request, user string) (string, bool) {
			var hash string
			err := s.h.View(r.Context(), func(tx storage.Tx) error {
				o, err := tx.Get(r.Context(), accountScope(user), user)
				if err != nil {
					return err
				}
				hash, _ = o.Data["password"].(string)
				return nil
			})
			return hash, err == nil && hash != ""
		},
	}
	// A changed or deleted account must stop accepting its old password,
	// on every node.
	s.h.OnChange(func(evs []events.Event) {
		for _, ev := range evs {
			switch {
			case ev.Everything:
				p.ForgetAll()
			case ev.ResourceName == model.Account.Name:
				p.Forget(ev.ID)
			}
		}
	})
	return p
}

// checkConcurrency is account_check_concurrency, 0 meaning half the CPUs
// (at least one): password checks never take every core.
func checkConcurrency(n int) int {
	if n > 0 {
		return n
	}
	return max(1, runtime.GOMAXPROCS(0)/2)
}

// username is the caller's account name, "" when not logged in with one.
func username(c *httpapi.Call) string {
	name, _ := strings.CutPrefix(c.User(), "account:")
	if name == c.User() {
		return ""
	}
	return name
}

func (s *plugin) settingGrants(name string, c *httpapi.Call) bool {
	return s.h.Engine().Authorizer().SettingGrants(name, c.Principals())
}

// accountAllowed reports whether the caller holds perm on an account: the
// account's ACEs, or the account_{read,write}_principals settings
// (administrators).
func (s *plugin) accountAllowed(ctx context.Context, tx storage.Tx, c *httpapi.Call, id, perm string) (bool, error) {
	if s.settingGrants("account_write_principals", c) || (perm == "read" && s.settingGrants("account_read_principals", c)) {
		return true, nil
	}
	aces := []storage.ACE{{URI: accountURI(id), Permission: "write"}}
	if perm == "read" {
		aces = append(aces, storage.ACE{URI: accountURI(id), Permission: "read"})
	}
	return tx.HasAny(ctx, aces, c.Principals())
}

func (s *plugin) isAccountAdmin(c *httpapi.Call) bool {
	return s.settingGrants("account_write_principals", c)
}

// accountData checks an account's data: a password is required, stored as
// a bcrypt hash.
func accountData(data map[string]any, required bool) error {
	pw, present := data["password"]
	if !present {
		if required {
			return kerr.InvalidParam("body", kerr.Name("data.password"), "Required")
		}
		return nil
	}
	str, ok := pw.(string)
	if !ok {
		return kerr.InvalidParam("body", kerr.Name("data.password"), pyfmt.Str(pw)+" is not a string: {'': ''}")
	}
	hash, err := auth.HashPassword(str)
	if err != nil {
		return kerr.InvalidParam("body", kerr.Name("data.password"), err.Error())
	}
	data["password"] = hash
	return nil
}

// listAccounts is GET/HEAD /accounts: the caller's own account (Kinto
// lists accounts under the caller's username, administrators included).
func (s *plugin) listAccounts(w http.ResponseWriter, r *http.Request, c *httpapi.Call) error {
	if c.User() == "" {
		return &kerr.Error{Kind: kerr.Unauthenticated, Errno: 999, Title: "Cannot read accounts."}
	}
	pre, precondErr := httpapi.Preconditions(r)
	if err := httpapi.FirstErr(httpapi.CheckAccept(r), precondErr, c.ParamsErr); err != nil {
		return err
	}
	q, err := query.Parse(c.Params, query.Schema{}, s.h.Engine().NowMS())
	if err != nil {
		return err
	}
	scope := accountScope(username(c))
	var l httpapi.ListReply
	err = s.h.View(r.Context(), func(tx storage.Tx) error {
		ts, err := tx.Timestamp(r.Context(), scope)
		if err != nil {
			return err
		}
		if ts == 0 {
			ts = s.h.Engine().NowMS()
		}
		if err := resource.ReadPreconditions(pre, ts, nil); err != nil {
			return err
		}
		objs, err := tx.List(r.Context(), scope, storage.ListOptions{Filters: q.Filters, Sort: q.Sort, After: q.After,
			Limit: s.h.Engine().Limit(q.Limit), IncludeDeleted: q.Tombstones})
		if err != nil {
			return err
		}
		items := make([]map[string]any, len(objs))
		for i, o := range objs {
			items[i] = httpapi.Project(o, o.Body(), q.Fields)
		}
		l = httpapi.ListReply{Path: accountPath, Query: q, Timestamp: ts, Counted: true, Total: int64(len(objs)), Items: items}
		return nil
	})
	if err != nil {
		return err
	}
	return s.h.WriteList(w, r, c, l)
}

// getAccount is GET/HEAD /accounts/{id}.
func (s *plugin) getAccount(w http.ResponseWriter, r *http.Request, c *httpapi.Call) error {
	id := r.PathValue("id")
	pre, precondErr := httpapi.Preconditions(r)
	var out *storage.Object
	var perms map[string][]string
	err := s.h.View(r.Context(), func(tx storage.Tx) error {
		ok, err := s.accountAllowed(r.Context(), tx, c, id, "read")
		if err != nil {
			return err
		}
		if !ok {
			return c.Denied()
		}
		if err := httpapi.FirstErr(httpapi.CheckAccept(r), precondErr); err != nil {
			return err
		}
		if out, err = tx.Get(r.Context(), accountScope(id), id); err != nil {
			return err
		}
		if err := resource.ReadPreconditions(pre, out.LastModified, out); err != nil {
			return err
		}
		perms, err = tx.Permissions(r.Context(), accountURI(id))
		return err
	})
	if err != nil {
		return err
	}
	s.h.CacheHeaders(w, c, accountPath, nil)
	s.h.WriteObject(w, http.StatusOK, out, perms)
	return nil
}

// writeAccount is PUT /accounts/{id}, PATCH /accounts/{id} and POST
// /accounts (id in the body): anonymous callers allowed by
// account_create_principals create accounts; users manage their own;
// administrators (account_write_principals) manage anyone's.
func (s *plugin) writeAccount(w http.ResponseWriter, r *http.Request, c *httpapi.Call) error {
	ctx := r.Context()
	media := []string{httpapi.MediaJSON}
	if r.Method == http.MethodPatch {
		media = append(media, httpapi.MediaMergePatch)
	}
	in := httpapi.ReadWrite(r, model.Account, media...)
	pre, precondErr := httpapi.Preconditions(r)
	id := r.PathValue("id")
	if r.Method == http.MethodPost && in.Body != nil && in.Body.Data != nil {
		id, _ = in.Body.Data[query.IDField].(string)
	}
	type written = resource.Written
	res, err := resource.Write(ctx, s.h.Engine(), func(u *resource.Unit) (written, error) {
		tx := u.Tx
		existing, err := tx.Get(ctx, accountScope(id), id)
		if err != nil && !kerr.Is(err, kerr.NotFound) {
			return written{}, err
		}
		err = nil
		// Kinto looks accounts up under the caller's own name
		// (administrators: anyone's): for another user, an existing
		// account of another name is one to create, refused below as a
		// mismatch.
		seen := existing
		if name := username(c); c.User() != "" && !s.isAccountAdmin(c) && name != id {
			seen = nil
		}
		var allowed bool
		switch {
		case seen != nil && r.Method == http.MethodPost:
			allowed, err = s.accountAllowed(ctx, tx, c, id, "read")
		case seen != nil && pre.IfNoneMatch.Any:
			// A safe creation needs only the right to create: the answer
			// is then a 412 (Kinto/kinto#792).
			allowed = s.settingGrants("account_create_principals", c) || s.isAccountAdmin(c)
		case seen != nil:
			allowed, err = s.accountAllowed(ctx, tx, c, id, "write")
		case r.Method == http.MethodPatch:
			allowed, err = s.accountAllowed(ctx, tx, c, id, "write")
		default:
			allowed = s.settingGrants("account_create_principals", c) || s.isAccountAdmin(c)
		}
		if err != nil {
			return written{}, err
		}
		if !allowed {
			return written{}, c.Denied()
		}
		if err := httpapi.FirstErr(httpapi.CheckAccept(r), in.Err, precondErr); err != nil {
			return written{}, err
		}
		if id == "" {
			return written{}, kerr.InvalidParam("body", kerr.Name("data.id"), "Required")
		}
		if !model.Account.ValidID(id) {
			return written{}, resource.InvalidID
		}
		if name := username(c); c.User() != "" && !s.isAccountAdmin(c) && name != id {
			return written{}, kerr.InvalidParam("body", kerr.Name("data.id"), "Username and account ID do not match.")
		}
		p := model.Path{Kind: model.Account, ID: id}
		if err := resource.CheckPreconditions(ctx, tx, p, pre, existing); err != nil {
			return written{}, err
		}
		if existing != nil && r.Method == http.MethodPost {
			perms, err := tx.Permissions(ctx, accountURI(id))
			return written{Object: existing, Perms: perms}, err
		}
		if existing == nil && r.Method == http.MethodPatch {
			return written{}, kerr.ObjectNotFound(model.Account.Name, id)
		}
		data := map[string]any{}
		switch {
		case r.Method == http.MethodPatch && in.Media == httpapi.MediaMergePatch:
			data = resource.MergePatch(existing.Data, in.Body.Data)
		case r.Method == http.MethodPatch:
			data = resource.CopyData(existing.Data)
			for k, v := range in.Body.Data {
				data[k] = v
			}
		case in.Body.Data != nil:
			data = resource.CopyData(in.Body.Data)
		}
		if v, ok := data[query.IDField]; ok && v != id {
			return written{}, kerr.InvalidParam("body", kerr.Name("id"), "Object id does not match existing object")
		}
		delete(data, query.IDField)
		delete(data, query.ModifiedField)
		passwordChanged := r.Method != http.MethodPatch || (in.Body.Data != nil && in.Body.Data["password"] != nil)
		if passwordChanged {
			if err := accountData(data, true); err != nil {
				return written{}, err
			}
		}
		if err := s.h.Engine().CheckSize(data); err != nil {
			return written{}, err
		}
		out, err := tx.Put(ctx, accountScope(id), &storage.Object{ID: id, Data: data})
		if err != nil {
			return written{}, err
		}
		// The account belongs to its user, whoever created it.
		owner := map[string][]string{"write": {"account:" + id}}
		if existing != nil {
			if owner, err = tx.Permissions(ctx, accountURI(id)); err != nil {
				return written{}, err
			}
		}
		if err := tx.SetPermissions(ctx, accountURI(id), owner); err != nil {
			return written{}, err
		}
		perms, err := tx.Permissions(ctx, accountURI(id))
		if err != nil {
			return written{}, err
		}
		return written{Object: out, Perms: perms, Created: existing == nil}, u.Changed(ctx, resource.NewChange(p, c.Caller(), out, existing))
	})
	if err != nil {
		return err
	}
	s.h.WriteObject(w, httpapi.WrittenStatus(res), res.Object, res.Perms)
	return nil
}

// deleteAccount is DELETE /accounts/{id}.
func (s *plugin) deleteAccount(w http.ResponseWriter, r *http.Request, c *httpapi.Call) error {
	ctx := r.Context()
	id := r.PathValue("id")
	pre, precondErr := httpapi.Preconditions(r)
	tomb, err := resource.Write(ctx, s.h.Engine(), func(u *resource.Unit) (*storage.Object, error) {
		tx := u.Tx
		ok, err := s.accountAllowed(ctx, tx, c, id, "write")
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, c.Denied()
		}
		if err := httpapi.FirstErr(httpapi.CheckAccept(r), precondErr); err != nil {
			return nil, err
		}
		existing, err := tx.Get(ctx, accountScope(id), id)
		if err != nil {
			return nil, err
		}
		p := model.Path{Kind: model.Account, ID: id}
		if err := resource.CheckPreconditions(ctx, tx, p, pre, existing); err != nil {
			return nil, err
		}
		tomb, err := tx.Delete(ctx, accountScope(id), id, 0)
		if err != nil {
			return nil, err
		}
		if err := s.forget(ctx, u, id); err != nil {
			return nil, err
		}
		return tomb, u.Changed(ctx, resource.NewChange(p, c.Caller(), tomb, existing))
	})
	if err != nil {
		return err
	}
	httpapi.SetTimestamp(w, tomb.LastModified)
	s.h.WriteJSON(w, http.StatusOK, map[string]any{"data": tomb.Body()})
	return nil
}

// forget removes what a deleted account had: its own ACL, and its
// principal from every ACL and group, so that an account created later
// with the same name (by anyone) inherits none of it.
func (s *plugin) forget(ctx context.Context, u *resource.Unit, id string) error {
	if err := u.Tx.DeletePermissions(ctx, accountURI(id)); err != nil {
		return err
	}
	return u.RemovePrincipal(ctx, resource.PluginCaller("plugin:accounts"), "account:"+id)
}

// deleteAccounts is DELETE /accounts: the caller's own account, every
// account for administrators (as Kinto does).
func (s *plugin) deleteAccounts(w http.ResponseWriter, r *http.Request, c *httpapi.Call) error {
	if c.User() == "" {
		return &kerr.Error{Kind: kerr.Unauthenticated, Errno: 999, Title: "Cannot read accounts."}
	}
	names := []string{username(c)}
	admin := s.isAccountAdmin(c)
	tombs, err := resource.Write(r.Context(), s.h.Engine(), func(u *resource.Unit) ([]*storage.Object, error) {
		tx := u.Tx
		if admin {
			// Administrators delete every account: each lives under its
			// own name, the parent of its scope.
			all, err := tx.Timestamps(r.Context(), model.Account.Name, []string{""})
			if err != nil {
				return nil, err
			}
			names = names[:0]
			for name := range all {
				names = append(names, name)
			}
			sort.Strings(names)
		}
		var objs []*storage.Object
		for _, name := range names {
			some, err := tx.List(r.Context(), accountScope(name), storage.ListOptions{})
			if err != nil {
				return nil, err
			}
			objs = append(objs, some...)
		}
		var tombs []*storage.Object
		for _, o := range objs {
			tomb, err := tx.Delete(r.Context(), accountScope(o.ID), o.ID, 0)
			if err != nil {
				return nil, err
			}
			if err := s.forget(r.Context(), u, o.ID); err != nil {
				return nil, err
			}
			if err := u.Changed(r.Context(), resource.NewChange(accountPath, c.Caller(), tomb, o)); err != nil {
				return nil, err
			}
			tombs = append(tombs, tomb)
		}
		return tombs, nil
	})
	if err != nil {
		return err
	}
	data := make([]map[string]any, len(tombs))
	for i, t := range tombs {
		data[i] = t.Body()
	}
	s.h.WriteJSON(w, http.StatusOK, map[string]any{"data": data})
	return nil
}

// warnOpenAdministrators warns when anyone may create accounts and an
// administrator account named in account_write_principals does not exist
// yet: whoever creates it first administers every account.
func (s *plugin) warnOpenAdministrators() {
	if !s.h.Engine().Authorizer().SettingGrants("account_create_principals", resource.Anonymous().Principals()) {
		return
	}
	for _, principal := range s.h.Settings().List("account_write_principals") {
		name, ok := strings.CutPrefix(principal, "account:")
		if !ok {
			continue
		}
		err := s.h.View(context.Background(), func(tx storage.Tx) error {
			_, err := tx.Get(context.Background(), accountScope(name), name)
			return err
		})
		if kerr.Is(err, kerr.NotFound) {
			s.h.Logger().Warn("account creation is open to everyone (account_create_principals) and the administrator account does not exist yet: "+
				"whoever creates it first administers every account; create it now, or restrict account_create_principals",
				"account", name)
		}
	}
}

// SetPassword creates the account id with password, or sets the password
// of the existing account id, as Kinto's `kinto create-user` does: the
// account is written by the system (no caller's permission applies), owned
// by its user, in a unit of work of e (so other nodes forget the old
// password). It reports whether the account was created.
func SetPassword(ctx context.Context, e *resource.Engine, id, password string) (bool, error) {
	if !model.Account.ValidID(id) {
		return false, resource.InvalidID
	}
	data := map[string]any{"password": password}
	if err := accountData(data, true); err != nil {
		return false, err
	}
	p := model.Path{Kind: model.Account, ID: id}
	return resource.Write(ctx, e, func(u *resource.Unit) (bool, error) {
		existing, err := u.Tx.Get(ctx, accountScope(id), id)
		if err != nil && !kerr.Is(err, kerr.NotFound) {
			return false, err
		}
		if existing != nil {
			for k, v := range existing.Data {
				if k != "password" {
					data[k] = v
				}
			}
		}
		out, err := u.Tx.Put(ctx, accountScope(id), &storage.Object{ID: id, Data: data})
		if err != nil {
			return false, err
		}
		// As Kinto's script, the user is added to the account's write
		// permission; whoever else had a permission keeps it.
		perms, err := u.Tx.Permissions(ctx, accountURI(id))
		if err != nil {
			return false, err
		}
		perms = maps.Clone(perms) // the transaction may share what it read
		if perms == nil {
			perms = map[string][]string{}
		}
		perms["write"] = slices.Clone(perms["write"])
		if owner := "account:" + id; !slices.Contains(perms["write"], owner) {
			perms["write"] = append(perms["write"], owner)
		}
		if err := u.Tx.SetPermissions(ctx, accountURI(id), perms); err != nil {
			return false, err
		}
		return existing == nil, u.Changed(ctx, resource.NewChange(p, resource.Anonymous(), out, existing))
	})
}

// Exists reports whether the account id exists.
func Exists(ctx context.Context, h *httpapi.Server, id string) (bool, error) {
	err := h.View(ctx, func(tx storage.Tx) error {
		_, err := tx.Get(ctx, accountScope(id), id)
		return err
	})
	if kerr.Is(err, kerr.NotFound) {
		return false, nil
	}
	return err == nil, err
}
