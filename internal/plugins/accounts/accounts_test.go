package accounts_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"kintogo/internal/app/apptest"
	"kintogo/internal/httpapi"
	"kintogo/internal/storage/storetest"
)

// settings are those of Kinto's accounts tests: accounts only, anyone may
// create one, account:admin administers them.
var settings = map[string]string{
	"includes":                  "kinto.plugins.accounts",
	"multiauth.policies":        "account",
	"account_create_principals": "system.Everyone",
	"account_write_principals":  "account:admin",
	"userid_hmac_secret":        "b1d9a3a1bc6c4ad1f5e4b9bb3e1c3a1e0e1f3c6a2d8b7c4e5f6a7b8c9d0e1f2a",
}

// eachBackend runs fn against a running server on every backend.
func eachBackend(t *testing.T, fn func(t *testing.T, c *client)) {
	for name, open := range storetest.Backends() {
		t.Run(name, func(t *testing.T) {
			ts := httptest.NewServer(apptest.Server(t, open(t), httpapi.Options{Logger: slog.New(slog.DiscardHandler)}, settings))
			t.Cleanup(ts.Close)
			fn(t, &client{t: t, base: ts.URL})
		})
	}
}

type client struct {
	t    *testing.T
	base string
}

var httpClient = &http.Client{Timeout: 20 * time.Second}

type response struct {
	status int
	header http.Header
	raw    []byte
	json   map[string]any
}

// req is one request: auth is "user:password" ("" for none), body is
// sent as JSON, header holds extra headers (a Content-Type among them
// replaces application/json).
type req struct {
	method, path, auth string
	body               any
	header             map[string]string
}

func (c *client) do(r req) *response {
	c.t.Helper()
	var body io.Reader
	if d, ok := r.body.(data); ok {
		r.body = map[string]any{"data": map[string]any(d)}
	}
	if r.body != nil {
		raw, err := json.Marshal(r.body)
		if err != nil {
			c.t.Fatal(err)
		}
		body = bytes.NewReader(raw)
	}
	hr, err := http.NewRequest(r.method, c.base+r.path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.auth != "" {
		user, pass, _ := strings.Cut(r.auth, ":")
		hr.SetBasicAuth(user, pass)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	resp, err := httpClient.Do(hr)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	out := &response{status: resp.StatusCode, header: resp.Header}
	out.raw, _ = io.ReadAll(resp.Body)
	if len(out.raw) > 0 {
		dec := json.NewDecoder(bytes.NewReader(out.raw))
		dec.UseNumber()
		dec.Decode(&out.json)
	}
	return out
}

func (c *client) get(path, auth string) *response {
	c.t.Helper()
	return c.do(req{method: "GET", path: path, auth: auth})
}

// create makes an account anonymously with PUT.
func (c *client) create(id, password string) *response {
	c.t.Helper()
	return c.do(req{method: "PUT", path: "/v1/accounts/" + id, body: data{"password": password}}).must(c.t, 201)
}

// data is sent as the body {"data": {...}}.
type data map[string]any

func (r *response) must(t *testing.T, status int) *response {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	return r
}

func (r *response) at(path string) any {
	var cur any = r.json
	for _, part := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[part]
	}
	return cur
}

func (r *response) str(path string) string {
	switch x := r.at(path).(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case nil:
		return ""
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

func (r *response) etag() string { return strings.Trim(r.header.Get("ETag"), `"`) }

// wantError checks a Kinto error answer: status, errno, and a message
// containing msg when not "".
func (r *response) wantError(t *testing.T, status, errno int, msg string) {
	t.Helper()
	if r.status != status || r.str("code") != itoa(status) || r.str("errno") != itoa(errno) {
		t.Fatalf("want error %d/%d, got %d: %s", status, errno, r.status, r.raw)
	}
	if msg != "" && !strings.Contains(r.str("message"), msg) {
		t.Errorf("error message %q, want it to contain %q", r.str("message"), msg)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// userID is who GET /v1/ says the credentials are ("" when anonymous).
func (c *client) userID(auth string) string {
	c.t.Helper()
	r := c.get("/v1/", auth).must(c.t, 200)
	if r.at("user") == nil {
		return ""
	}
	return r.str("user.id")
}

// wantLogin checks that the credentials authenticate as account:{user}.
func (c *client) wantLogin(auth string) {
	c.t.Helper()
	user, _, _ := strings.Cut(auth, ":")
	if got := c.userID(auth); got != "account:"+user {
		c.t.Errorf("%s: authenticated as %q, want account:%s", auth, got, user)
	}
}

// wantNoLogin checks that the credentials are anonymous, and refused
// where an account is needed.
func (c *client) wantNoLogin(auth string) {
	c.t.Helper()
	if got := c.userID(auth); got != "" {
		c.t.Errorf("%s: authenticated as %q, want anonymous", auth, got)
	}
	user, _, _ := strings.Cut(auth, ":")
	if r := c.get("/v1/accounts/"+user, auth); r.status != 401 {
		c.t.Errorf("%s: GET of the account answered %d, want 401: %s", auth, r.status, r.raw)
	}
}

// wantHashOf checks that an account answer carries a bcrypt hash of
// password, and never the password itself.
func wantHashOf(t *testing.T, r *response, password string) string {
	t.Helper()
	hash := r.str("data.password")
	if !strings.HasPrefix(hash, "$2") {
		t.Errorf("password %q is not a bcrypt hash", hash)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)); err != nil {
		t.Errorf("stored hash %q is not the hash of %q: %v", hash, password, err)
	}
	if bytes.Contains(r.raw, []byte(`"`+password+`"`)) {
		t.Errorf("the password appears in clear in %s", r.raw)
	}
	return hash
}

func wantOwner(t *testing.T, r *response, id string) {
	t.Helper()
	if got := r.str("permissions"); got != `{"write":["account:`+id+`"]}` {
		t.Errorf("permissions of %s: %s, want {\"write\":[\"account:%s\"]}", id, got, id)
	}
}

// Accounts are created by PUT and by POST (id in the data), anonymously;
// a POST of an existing account by its owner answers it (200) and changes
// nothing; the password is stored as a bcrypt hash and authenticates;
// the account belongs to its user.
func TestAccountCreation(t *testing.T) {
	eachBackend(t, func(t *testing.T, c *client) {
		r := c.do(req{method: "PUT", path: "/v1/accounts/alice", body: data{"password": "alice-pw", "age": 42}}).must(t, 201)
		if r.str("data.id") != "alice" || r.str("data.age") != "42" {
			t.Errorf("PUT answered %s", r.raw)
		}
		if r.etag() == "" || r.etag() != r.str("data.last_modified") {
			t.Errorf("ETag %q, last_modified %q", r.etag(), r.str("data.last_modified"))
		}
		putHash := wantHashOf(t, r, "alice-pw")
		wantOwner(t, r, "alice")

		r = c.do(req{method: "POST", path: "/v1/accounts", body: data{"id": "bob", "password": "bob-pw"}}).must(t, 201)
		if r.str("data.id") != "bob" {
			t.Errorf("POST answered %s", r.raw)
		}
		wantHashOf(t, r, "bob-pw")
		wantOwner(t, r, "bob")
		bobModified := r.str("data.last_modified")

		// Stored hashed: what GET shows.
		r = c.get("/v1/accounts/alice", "alice:alice-pw").must(t, 200)
		if got := wantHashOf(t, r, "alice-pw"); got != putHash {
			t.Errorf("GET shows hash %q, PUT answered %q", got, putHash)
		}
		wantOwner(t, r, "alice")
		c.wantLogin("alice:alice-pw")
		c.wantLogin("bob:bob-pw")

		// A POST of an existing account by its owner: 200, the account as it
		// is (its password is not replaced).
		r = c.do(req{method: "POST", path: "/v1/accounts", auth: "bob:bob-pw", body: data{"id": "bob", "password": "other"}}).must(t, 200)
		if r.str("data.id") != "bob" || r.str("data.last_modified") != bobModified {
			t.Errorf("POST of an existing account answered %s, want it unchanged (last_modified %s)", r.raw, bobModified)
		}
		wantHashOf(t, r, "bob-pw")
		c.wantLogin("bob:bob-pw")
		c.wantNoLogin("bob:other")
		// Anonymously: 401 (Kinto: "A POST whose id already exists → 401").
		c.do(req{method: "POST", path: "/v1/accounts", body: data{"id": "bob", "password": "other"}}).wantError(t, 401, 104, "")
		// PUT over an existing account needs its write permission.
		c.do(req{method: "PUT", path: "/v1/accounts/bob", body: data{"password": "other"}}).wantError(t, 401, 104, "")
		c.wantLogin("bob:bob-pw")
		c.wantNoLogin("bob:other")

		// Ids may be e-mail addresses.
		r = c.do(req{method: "PUT", path: "/v1/accounts/carol+x@example.com", body: data{"password": "carol-pw"}}).must(t, 201)
		wantOwner(t, r, "carol+x@example.com")
		c.wantLogin("carol+x@example.com:carol-pw")

		// Invalid creations.
		c.do(req{method: "POST", path: "/v1/accounts", body: data{"password": "pw"}}).wantError(t, 400, 107, "data.id")
		c.do(req{method: "POST", path: "/v1/accounts", body: data{"id": "dave"}}).wantError(t, 400, 107, "data.password")
		c.do(req{method: "PUT", path: "/v1/accounts/dave", body: data{}}).wantError(t, 400, 107, "data.password")
		c.do(req{method: "PUT", path: "/v1/accounts/dave", body: data{"password": 12}}).wantError(t, 400, 107, "data.password")
		c.do(req{method: "PUT", path: "/v1/accounts/-dave", body: data{"password": "pw"}}).wantError(t, 400, 107, "")
		c.do(req{method: "PUT", path: "/v1/accounts/dave", body: data{"id": "erin", "password": "pw"}}).wantError(t, 400, 107, "does not match")
		c.wantNoLogin("dave:pw")
	})
}

// Credentials authenticate only with the right password; the accounts
// capability is announced.
func TestAccountAuthentication(t *testing.T) {
	eachBackend(t, func(t *testing.T, c *client) {
		c.create("alice", "s3cret")
		c.wantLogin("alice:s3cret")
		r := c.get("/v1/", "alice:s3cret")
		principals := r.str("user.principals")
		for _, p := range []string{`"account:alice"`, `"system.Authenticated"`, `"system.Everyone"`} {
			if !strings.Contains(principals, p) {
				t.Errorf("principals %s lack %s", principals, p)
			}
		}
		c.wantNoLogin("alice:wrong")
		c.wantNoLogin("alice:")
		c.wantNoLogin("nobody:s3cret")
		// Still the right one after wrong attempts.
		c.wantLogin("alice:s3cret")

		r = c.get("/v1/", "").must(t, 200)
		if r.at("user") != nil {
			t.Errorf("anonymous GET /v1/ has a user: %s", r.raw)
		}
		capa, ok := r.at("capabilities.accounts").(map[string]any)
		if !ok {
			t.Fatalf("no accounts capability: %s", r.raw)
		}
		if capa["validation_enabled"] != false || capa["description"] != "Manage user accounts." ||
			capa["url"] != "https://kinto.readthedocs.io/en/latest/api/1.x/accounts.html" {
			t.Errorf("accounts capability %v", capa)
		}
	})
}

// A changed password works at once, and the old one stops at once (even
// just after a successful check was remembered): by PATCH, merge-patch
// and PUT. A PATCH of other fields keeps the password.
func TestAccountPasswordChange(t *testing.T) {
	eachBackend(t, func(t *testing.T, c *client) {
		c.create("alice", "pw0")
		c.wantLogin("alice:pw0")

		r := c.do(req{method: "PATCH", path: "/v1/accounts/alice", auth: "alice:pw0", body: data{"password": "pw1"}}).must(t, 200)
		wantHashOf(t, r, "pw1")
		wantOwner(t, r, "alice")
		c.wantNoLogin("alice:pw0")
		c.wantLogin("alice:pw1")

		r = c.do(req{method: "PATCH", path: "/v1/accounts/alice", auth: "alice:pw1", body: data{"password": "pw2"},
			header: map[string]string{"Content-Type": "application/merge-patch+json"}}).must(t, 200)
		wantHashOf(t, r, "pw2")
		c.wantNoLogin("alice:pw1")
		c.wantLogin("alice:pw2")

		// Other fields: the password (its hash) stays.
		before := c.get("/v1/accounts/alice", "alice:pw2").must(t, 200).str("data.password")
		r = c.do(req{method: "PATCH", path: "/v1/accounts/alice", auth: "alice:pw2", body: data{"age": "captain"}}).must(t, 200)
		if r.str("data.age") != "captain" || r.str("data.password") != before {
			t.Errorf("PATCH of metadata answered %s, want age set and hash %s kept", r.raw, before)
		}
		r = c.do(req{method: "PATCH", path: "/v1/accounts/alice", auth: "alice:pw2", body: data{"nickname": "al"},
			header: map[string]string{"Content-Type": "application/merge-patch+json"}}).must(t, 200)
		if r.str("data.password") != before || r.str("data.age") != "captain" || r.str("data.nickname") != "al" {
			t.Errorf("merge-patch of metadata answered %s", r.raw)
		}
		c.wantLogin("alice:pw2")

		// PUT replaces the account (200: it existed).
		r = c.do(req{method: "PUT", path: "/v1/accounts/alice", auth: "alice:pw2", body: data{"password": "pw3"}}).must(t, 200)
		wantHashOf(t, r, "pw3")
		if r.at("data.age") != nil {
			t.Errorf("PUT kept the old fields: %s", r.raw)
		}
		wantOwner(t, r, "alice")
		c.wantNoLogin("alice:pw2")
		c.wantLogin("alice:pw3")
	})
}

// A user can neither create nor change nor read nor delete another's
// account, and anonymous callers can only create new ones.
func TestAccountsOfOthers(t *testing.T) {
	eachBackend(t, func(t *testing.T, c *client) {
		c.create("alice", "alice-pw")
		bob := c.create("bob", "bob-pw")
		const alice = "alice:alice-pw"

		// Creating someone else's account: the id must be the username.
		c.do(req{method: "PUT", path: "/v1/accounts/carol", auth: alice, body: data{"password": "x"}}).
			wantError(t, 400, 107, "Username and account ID do not match.")
		c.do(req{method: "POST", path: "/v1/accounts", auth: alice, body: data{"id": "carol", "password": "x"}}).
			wantError(t, 400, 107, "Username and account ID do not match.")
		if r := c.get("/v1/accounts/carol", alice); r.status != 403 {
			t.Errorf("GET of an unknown account: %d, want 403", r.status)
		}
		c.wantNoLogin("carol:x")
		// Replacing someone else's: refused (kintogo: 403, the caller may
		// neither write nor read it; Kinto: 400, see
		// TestReplacingAnotherUsersAccountIsAMismatch).
		for _, r := range []*response{
			c.do(req{method: "PUT", path: "/v1/accounts/bob", auth: alice, body: data{"password": "x"}}),
			c.do(req{method: "POST", path: "/v1/accounts", auth: alice, body: data{"id": "bob", "password": "x"}}),
		} {
			if r.status != 403 && r.status != 400 {
				t.Errorf("alice replacing bob's account: %d: %s", r.status, r.raw)
			}
		}
		// Changing, reading or deleting someone else's: 403.
		c.do(req{method: "PATCH", path: "/v1/accounts/bob", auth: alice, body: data{"password": "x"}}).wantError(t, 403, 121, "")
		c.do(req{method: "PATCH", path: "/v1/accounts/bob", auth: alice, body: data{"password": "x"},
			header: map[string]string{"Content-Type": "application/merge-patch+json"}}).wantError(t, 403, 121, "")
		c.do(req{method: "PATCH", path: "/v1/accounts/nobody", auth: alice, body: data{"password": "x"}}).wantError(t, 403, 121, "")
		c.do(req{method: "DELETE", path: "/v1/accounts/bob", auth: alice}).wantError(t, 403, 121, "")
		c.get("/v1/accounts/bob", alice).wantError(t, 403, 121, "")
		// Changing one's own account's id.
		c.do(req{method: "PATCH", path: "/v1/accounts/alice", auth: alice, body: data{"id": "bob", "password": "x"}}).wantError(t, 400, 107, "does not match")
		// Anonymous callers.
		c.do(req{method: "PATCH", path: "/v1/accounts/bob", body: data{"password": "x"}}).wantError(t, 401, 104, "")
		c.do(req{method: "DELETE", path: "/v1/accounts/bob"}).wantError(t, 401, 104, "")
		c.get("/v1/accounts/bob", "").wantError(t, 401, 104, "")
		if r := c.get("/v1/accounts", ""); r.status != 401 || r.str("errno") != "999" || r.str("error") != "Cannot read accounts." {
			t.Errorf("anonymous GET /v1/accounts: %d %s, want Kinto's 401 \"Cannot read accounts.\"", r.status, r.raw)
		}
		if r := c.do(req{method: "DELETE", path: "/v1/accounts"}); r.status != 401 {
			t.Errorf("anonymous DELETE /v1/accounts: %d %s, want 401", r.status, r.raw)
		}

		// Bob's account is as it was.
		r := c.get("/v1/accounts/bob", "bob:bob-pw").must(t, 200)
		if r.str("data.last_modified") != bob.str("data.last_modified") || r.str("data.password") != bob.str("data.password") {
			t.Errorf("bob's account changed: %s, was %s", r.raw, bob.raw)
		}
		c.wantLogin("bob:bob-pw")
		c.wantNoLogin("bob:x")
		c.wantLogin(alice)
		c.wantNoLogin("alice:x")
	})
}

// The administrator (account_write_principals) reads, changes, creates and
// deletes anyone's account; accounts it creates belong to their users.
func TestAccountAdministrator(t *testing.T) {
	eachBackend(t, func(t *testing.T, c *client) {
		c.create("admin", "admin-pw")
		c.create("alice", "alice-pw")
		const admin = "admin:admin-pw"

		r := c.get("/v1/accounts/alice", admin).must(t, 200)
		wantHashOf(t, r, "alice-pw")
		wantOwner(t, r, "alice")

		r = c.do(req{method: "PATCH", path: "/v1/accounts/alice", auth: admin, body: data{"password": "new"}}).must(t, 200)
		wantHashOf(t, r, "new")
		wantOwner(t, r, "alice")
		c.wantNoLogin("alice:alice-pw")
		c.wantLogin("alice:new")

		// Creations for others, by PUT and POST: owned by their users.
		r = c.do(req{method: "PUT", path: "/v1/accounts/dave", auth: admin, body: data{"password": "dave-pw"}}).must(t, 201)
		wantOwner(t, r, "dave")
		r = c.do(req{method: "POST", path: "/v1/accounts", auth: admin, body: data{"id": "erin", "password": "erin-pw"}}).must(t, 201)
		wantOwner(t, r, "erin")
		wantOwner(t, c.get("/v1/accounts/dave", "dave:dave-pw").must(t, 200), "dave")
		wantOwner(t, c.get("/v1/accounts/erin", "erin:erin-pw").must(t, 200), "erin")
		c.do(req{method: "DELETE", path: "/v1/accounts/erin", auth: "erin:erin-pw"}).must(t, 200)
		c.wantNoLogin("erin:erin-pw")

		// A PATCH of a missing account: 404 for the administrator.
		c.do(req{method: "PATCH", path: "/v1/accounts/nobody", auth: admin, body: data{"password": "x"}}).wantError(t, 404, 110, "")

		// Deletion.
		r = c.do(req{method: "DELETE", path: "/v1/accounts/alice", auth: admin}).must(t, 200)
		if r.str("data.id") != "alice" || r.at("data.deleted") != true {
			t.Errorf("DELETE answered %s", r.raw)
		}
		c.wantNoLogin("alice:new")
		c.get("/v1/accounts/alice", admin).wantError(t, 404, 110, "")
		c.wantLogin(admin)
		c.wantLogin("dave:dave-pw")
	})
}

// Kinto's administrators delete every account with a plural DELETE; their
// list shows their own account, as the reference Kinto 26 answers (its
// conformance recording too).
func TestAdministratorListsAndDeletesEveryAccount(t *testing.T) {
	eachBackend(t, func(t *testing.T, c *client) {
		c.create("admin", "admin-pw")
		c.create("alice", "alice-pw")
		c.create("bob", "bob-pw")
		const admin = "admin:admin-pw"
		r := c.get("/v1/accounts", admin).must(t, 200)
		var ids []string
		for _, o := range r.at("data").([]any) {
			ids = append(ids, o.(map[string]any)["id"].(string))
		}
		// As the reference Kinto 26 answers (and its recording): the
		// administrator's list shows its own account, but its plural
		// DELETE removes every account.
		sort.Strings(ids)
		if strings.Join(ids, ",") != "admin" {
			t.Errorf("the administrator lists %v, want its own account", ids)
		}
		d := c.do(req{method: "DELETE", path: "/v1/accounts", auth: admin}).must(t, 200)
		if n := len(d.at("data").([]any)); n != 3 {
			t.Errorf("the administrator's DELETE removed %d accounts, want 3: %s", n, d.raw)
		}
		c.wantNoLogin("bob:bob-pw")
		c.wantNoLogin("alice:alice-pw")
	})
}

// GET /v1/accounts lists the caller's own account only; DELETE
// /v1/accounts deletes it.
func TestAccountListAndPluralDelete(t *testing.T) {
	eachBackend(t, func(t *testing.T, c *client) {
		c.create("alice", "alice-pw")
		c.create("bob", "bob-pw")
		r := c.get("/v1/accounts", "alice:alice-pw").must(t, 200)
		list, _ := r.at("data").([]any)
		if len(list) != 1 || list[0].(map[string]any)["id"] != "alice" {
			t.Fatalf("alice lists %s, want her account only", r.raw)
		}
		if hash, _ := list[0].(map[string]any)["password"].(string); bcrypt.CompareHashAndPassword([]byte(hash), []byte("alice-pw")) != nil {
			t.Errorf("listed password %q is not alice's hash", hash)
		}
		h := c.do(req{method: "HEAD", path: "/v1/accounts", auth: "alice:alice-pw"}).must(t, 200)
		if h.header.Get("Total-Objects") != "1" {
			t.Errorf("HEAD Total-Objects %q, want 1", h.header.Get("Total-Objects"))
		}

		r = c.do(req{method: "DELETE", path: "/v1/accounts", auth: "bob:bob-pw"}).must(t, 200)
		list, _ = r.at("data").([]any)
		if len(list) != 1 || list[0].(map[string]any)["id"] != "bob" || list[0].(map[string]any)["deleted"] != true {
			t.Fatalf("bob's plural DELETE answered %s, want his tombstone only", r.raw)
		}
		c.wantNoLogin("bob:bob-pw")
		c.wantLogin("alice:alice-pw")
		c.get("/v1/accounts/alice", "alice:alice-pw").must(t, 200)
		// The name is free again.
		c.create("bob", "again")
		c.wantLogin("bob:again")
	})
}

// DELETE /v1/accounts/{id} by its owner: the tombstone, and the password
// stops working at once.
func TestAccountDelete(t *testing.T) {
	eachBackend(t, func(t *testing.T, c *client) {
		c.create("alice", "alice-pw")
		c.wantLogin("alice:alice-pw")
		r := c.do(req{method: "DELETE", path: "/v1/accounts/alice", auth: "alice:alice-pw"}).must(t, 200)
		if r.str("data.id") != "alice" || r.at("data.deleted") != true || r.etag() != r.str("data.last_modified") || r.at("data.password") != nil {
			t.Errorf("DELETE answered %s (ETag %q)", r.raw, r.etag())
		}
		c.wantNoLogin("alice:alice-pw")
		c.create("alice", "second")
		c.wantNoLogin("alice:alice-pw")
		c.wantLogin("alice:second")
	})
}

// If-Match and If-None-Match on account writes: 412 with the ETag of what
// they were compared with, nothing written.
func TestAccountWritePreconditions(t *testing.T) {
	eachBackend(t, func(t *testing.T, c *client) {
		created := c.create("alice", "pw0")
		const alice = "alice:pw0"
		ts := created.etag()
		stale := map[string]string{"If-Match": `"1"`}

		want412 := func(r *response) {
			t.Helper()
			r.wantError(t, 412, 114, "")
			if r.etag() != ts {
				t.Errorf("412 ETag %q, want the account's %s", r.etag(), ts)
			}
			if r.str("details.existing.id") != "alice" || r.str("details.existing.last_modified") != ts {
				t.Errorf("412 details: %s", r.raw)
			}
		}
		want412(c.do(req{method: "PUT", path: "/v1/accounts/alice", auth: alice, body: data{"password": "x"}, header: stale}))
		want412(c.do(req{method: "PUT", path: "/v1/accounts/alice", auth: alice, body: data{"password": "x"}, header: map[string]string{"If-None-Match": "*"}}))
		want412(c.do(req{method: "PATCH", path: "/v1/accounts/alice", auth: alice, body: data{"password": "x"}, header: stale}))
		want412(c.do(req{method: "DELETE", path: "/v1/accounts/alice", auth: alice, header: stale}))
		want412(c.do(req{method: "POST", path: "/v1/accounts", auth: alice, body: data{"id": "alice", "password": "x"}, header: map[string]string{"If-None-Match": "*"}}))
		c.wantLogin(alice)
		c.wantNoLogin("alice:x")
		if r := c.get("/v1/accounts/alice", alice).must(t, 200); r.etag() != ts {
			t.Errorf("refused writes changed the account: ETag %s, was %s", r.etag(), ts)
		}

		// Missing account with If-Match: 412; with If-None-Match: * a creation.
		r := c.do(req{method: "PUT", path: "/v1/accounts/bob", body: data{"password": "bob-pw"}, header: map[string]string{"If-Match": `"123"`}})
		r.wantError(t, 412, 114, "")
		if r.at("details.existing") != nil {
			t.Errorf("412 on a missing account has details: %s", r.raw)
		}
		c.wantNoLogin("bob:bob-pw")
		c.do(req{method: "PUT", path: "/v1/accounts/bob", body: data{"password": "bob-pw"}, header: map[string]string{"If-None-Match": "*"}}).must(t, 201)
		c.wantLogin("bob:bob-pw")

		// The right ETag: the write happens.
		r = c.do(req{method: "PATCH", path: "/v1/accounts/alice", auth: alice, body: data{"password": "pw1"}, header: map[string]string{"If-Match": `"` + ts + `"`}}).must(t, 200)
		ts = r.etag()
		c.wantLogin("alice:pw1")
		r = c.do(req{method: "PUT", path: "/v1/accounts/alice", auth: "alice:pw1", body: data{"password": "pw2"}, header: map[string]string{"If-Match": `"` + ts + `"`}}).must(t, 200)
		ts = r.etag()
		c.do(req{method: "DELETE", path: "/v1/accounts/alice", auth: "alice:pw2", header: map[string]string{"If-Match": `"` + ts + `"`}}).must(t, 200)
		c.wantNoLogin("alice:pw2")
	})
}

// Reads of accounts honour If-None-Match (304) and If-Match (412) as every
// Kinto resource does (kinto/core/resource: get and plural_get call
// _raise_304_if_not_modified and _raise_412_if_modified; accounts are a
// plain Resource).
func TestAccountReadPreconditions(t *testing.T) {
	eachBackend(t, func(t *testing.T, c *client) {
		ts := c.create("alice", "pw").etag()
		const alice = "alice:pw"
		if r := c.do(req{method: "GET", path: "/v1/accounts/alice", auth: alice, header: map[string]string{"If-None-Match": `"` + ts + `"`}}); r.status != 304 || r.etag() != ts {
			t.Errorf("GET with the current ETag in If-None-Match: %d (ETag %q), want 304: %s", r.status, r.etag(), r.raw)
		}
		if r := c.do(req{method: "GET", path: "/v1/accounts/alice", auth: alice, header: map[string]string{"If-Match": `"1"`}}); r.status != 412 || r.etag() != ts {
			t.Errorf("GET with a stale If-Match: %d (ETag %q), want 412: %s", r.status, r.etag(), r.raw)
		}
		list := c.get("/v1/accounts", alice).must(t, 200)
		if r := c.do(req{method: "GET", path: "/v1/accounts", auth: alice, header: map[string]string{"If-None-Match": `"` + list.etag() + `"`}}); r.status != 304 {
			t.Errorf("GET /v1/accounts with the current ETag in If-None-Match: %d, want 304: %s", r.status, r.raw)
		}
		if r := c.do(req{method: "GET", path: "/v1/accounts", auth: alice, header: map[string]string{"If-Match": `"1"`}}); r.status != 412 {
			t.Errorf("GET /v1/accounts with a stale If-Match: %d, want 412: %s", r.status, r.raw)
		}
	})
}

// A PUT with If-None-Match: * needs the create permission, even when the
// account exists (kinto/core/authorization.py, _find_required_permission,
// Kinto/kinto#792): an anonymous caller allowed to create accounts gets
// the 412, not a 401.
func TestAccountSafeCreationOfAnExistingAccount(t *testing.T) {
	eachBackend(t, func(t *testing.T, c *client) {
		ts := c.create("alice", "pw").etag()
		r := c.do(req{method: "PUT", path: "/v1/accounts/alice", body: data{"password": "x"}, header: map[string]string{"If-None-Match": "*"}})
		if r.status != 412 || r.etag() != ts {
			t.Errorf("anonymous safe creation of an existing account: %d (ETag %q), want 412 with ETag %s: %s", r.status, r.etag(), ts, r.raw)
		}
		c.wantLogin("alice:pw")
	})
}

// A 412 on a missing account carries an ETag, as every Kinto 412 does
// (kinto-protocol.md §4.4: "ETag/Last-Modified carry the current
// timestamp"; Resource._raise_412_if_modified uses model.timestamp(),
// which is never empty).
func TestAccountPreconditionFailedOnMissingAccountHasETag(t *testing.T) {
	eachBackend(t, func(t *testing.T, c *client) {
		r := c.do(req{method: "PUT", path: "/v1/accounts/bob", body: data{"password": "bob-pw"}, header: map[string]string{"If-Match": `"123"`}})
		r.wantError(t, 412, 114, "")
		if r.etag() == "" {
			t.Errorf("412 on a missing account without an ETag: %v", r.header)
		}
	})
}

// Kinto stores each account under its username and looks up the object
// of a non-administrator's write under the caller's own name: replacing
// someone else's existing account by PUT, or naming it in a POST, finds
// nothing, needs the create permission (granted to everyone here), and is
// refused by the id check (tests/plugins/test_accounts.py,
// CreateOtherUserTest: the same 400 as for a missing account).
func TestReplacingAnotherUsersAccountIsAMismatch(t *testing.T) {
	eachBackend(t, func(t *testing.T, c *client) {
		c.create("alice", "alice-pw")
		c.create("bob", "bob-pw")
		c.do(req{method: "PUT", path: "/v1/accounts/bob", auth: "alice:alice-pw", body: data{"password": "x"}}).
			wantError(t, 400, 107, "Username and account ID do not match.")
		c.do(req{method: "POST", path: "/v1/accounts", auth: "alice:alice-pw", body: data{"id": "bob", "password": "x"}}).
			wantError(t, 400, 107, "Username and account ID do not match.")
		c.wantLogin("bob:bob-pw")
	})
}

// An anonymous plural DELETE of accounts gets Kinto's "Cannot read
// accounts." 401 (errno 999), as the anonymous plural GET does: Kinto
// authorizes it (whoever may create accounts may use the list) and the
// resource then finds no username (views.py, _extract_posted_body_id).
func TestAnonymousPluralDeleteOfAccounts(t *testing.T) {
	eachBackend(t, func(t *testing.T, c *client) {
		c.create("alice", "alice-pw")
		r := c.do(req{method: "DELETE", path: "/v1/accounts"})
		if r.status != 401 || r.str("errno") != "999" || r.str("error") != "Cannot read accounts." {
			t.Errorf("anonymous DELETE /v1/accounts: %d %s, want 401 errno 999 \"Cannot read accounts.\"", r.status, r.raw)
		}
		c.wantLogin("alice:alice-pw")
	})
}
