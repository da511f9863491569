// Package auth identifies callers. Each authentication policy named in
// `multiauth.policies` gets a chance, in order; the first that recognises
// the request gives the user id, prefixed with the policy's name. Requests
// that no policy recognises are anonymous (Kinto has no "bad credentials"
// error: they are then allowed or denied like any anonymous request).
package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// Policy authenticates requests.
type Policy interface {
	// Name is the policy's name, the prefix of the user ids it gives.
	Name() string
	// Authenticate returns the unprefixed user id, and false when the
	// request carries no credentials this policy accepts.
	Authenticate(r *http.Request) (string, bool)
	// Challenge is the WWW-Authenticate value sent with a 401.
	Challenge() string
}

// BasicCredentials returns the username and password of a Basic
// Authorization header; ok is false when there are none or they are
// malformed.
func BasicCredentials(r *http.Request) (user, pass string, ok bool) {
	h := r.Header.Get("Authorization")
	scheme, encoded, found := strings.Cut(h, " ")
	if !found || !strings.EqualFold(scheme, "Basic") {
		return "", "", false
	}
	raw, ok := decodeBase64(strings.TrimSpace(encoded))
	if !ok {
		return "", "", false
	}
	// UTF-8, else Latin-1, as Pyramid reads them (and Kinto then keys
	// the user id with the text's UTF-8).
	text := string(raw)
	if !utf8.Valid(raw) {
		runes := make([]rune, len(raw))
		for i, b := range raw {
			runes[i] = rune(b)
		}
		text = string(runes)
	}
	user, pass, found = strings.Cut(text, ":")
	if !found || user == "" {
		return "", "", false
	}
	return user, pass, true
}

// decodeBase64 decodes as Python's base64.b64decode does by default
// (binascii.a2b_base64, not strict), which Pyramid reads Basic
// credentials with: characters outside the alphabet are skipped, a pad
// that completes a quantum ends the data (what follows is ignored), a
// stray pad is ignored, and data that ends inside a quantum is refused.
// (Go's decoders refuse what Kinto accepts: the same credentials must
// give the same user.)
func decodeBase64(s string) ([]byte, bool) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	out := make([]byte, 0, len(s)*3/4)
	quad, pads := 0, 0
	var left byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '=' {
			pads++
			if quad >= 2 && quad+pads >= 4 {
				return out, true
			}
			continue
		}
		v := strings.IndexByte(alphabet, c)
		if v < 0 {
			continue
		}
		pads = 0
		b := byte(v)
		switch quad {
		case 0:
			left, quad = b, 1
		case 1:
			out = append(out, left<<2|b>>4)
			left, quad = b&0x0f, 2
		case 2:
			out = append(out, left<<4|b>>2)
			left, quad = b&0x03, 3
		case 3:
			out = append(out, left<<6|b)
			left, quad = 0, 0
		}
	}
	return out, quad == 0
}

// Basic is Kinto's `basicauth` policy: any username and password are
// accepted, and the user id is the HMAC-SHA256 of "user:password" keyed by
// `userid_hmac_secret`. Not for production: it has no user list.
type Basic struct {
	Secret string
}

// Name implements Policy.
func (Basic) Name() string { return "basicauth" }

// Challenge implements Policy.
func (Basic) Challenge() string { return `Basic realm="Realm"` }

// Authenticate implements Policy.
func (b Basic) Authenticate(r *http.Request) (string, bool) {
	user, pass, ok := BasicCredentials(r)
	if !ok {
		return "", false
	}
	return HMACDigest(b.Secret, user+":"+pass), true
}

// HMACDigest is Kinto's hmac_digest: lowercase hex HMAC-SHA256.
func HMACDigest(secret, message string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(message))
	return hex.EncodeToString(m.Sum(nil))
}

// Identify runs the policies in order and returns the prefixed user id of
// the first that authenticates the request, or "" for an anonymous one.
func Identify(policies []Policy, r *http.Request, observe Observer) string {
	for _, p := range policies {
		if observe == nil {
			if id, ok := p.Authenticate(r); ok {
				return p.Name() + ":" + id
			}
			continue
		}
		start := time.Now()
		id, ok := p.Authenticate(r)
		d := time.Since(start)
		observe(p.Name(), "authenticated_userid", d)
		if carries(r, p) {
			observe(p.Name(), "callback", d)
		}
		if ok {
			return p.Name() + ":" + id
		}
	}
	return ""
}

// Observer receives the time a policy took on a request, under the names
// of Kinto's timers (its pyramid policies' methods): "authenticated_userid"
// for every policy consulted, "callback" when the request carried
// credentials in the policy's scheme (the time is then their check).
type Observer func(policy, method string, d time.Duration)

// carries reports whether r's Authorization header is in the scheme of
// p's challenge.
func carries(r *http.Request, p Policy) bool {
	scheme, _, _ := strings.Cut(p.Challenge(), " ")
	given, _, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	return scheme != "" && strings.EqualFold(scheme, given)
}

// Accounts is the accounts plugin's `account` policy: Basic credentials
// checked against the bcrypt hash of a stored account. Hash returns the
// stored hash of a username (ok false when there is no such account).
//
// Checks are remembered for TTL, keyed by an HMAC of the credentials
// (never the password itself): successes, and failures too, so that a
// client repeating a wrong password costs one bcrypt, not one per request.
// Forget drops a user's entries when its account changes (a new password
// may make a failed check succeed); at most MaxEntries are kept.
//
// A bcrypt costs tens of milliseconds of CPU, which distinct wrong
// passwords would make anyone spend at will: at most Concurrency run at
// once (the others wait, as long as their request does), each username
// may fail at most FailuresPerMinute checks a minute (beyond, its
// unremembered credentials are refused without a bcrypt, until the
// minute ends), and a missing account costs a bcrypt too, so that its
// answer takes as long as a wrong password's.
type Accounts struct {
	Secret string
	TTL    time.Duration
	Hash   func(r *http.Request, user string) (hash string, ok bool)
	Now    func() time.Time
	// MaxEntries bounds the remembered checks (0: DefaultMaxEntries).
	MaxEntries int
	// Concurrency bounds the bcrypt checks running at once (0: one).
	Concurrency int
	// FailuresPerMinute bounds the failed checks of one username a minute
	// (0: no bound).
	FailuresPerMinute int

	mu       sync.Mutex
	checked  map[string]checkedEntry // HMAC of user:password -> entry
	failures map[string]failureCount // username -> its failures this minute
	sem      chan struct{}
	once     sync.Once
}

// DefaultMaxEntries is the number of checks Accounts remembers by default.
const DefaultMaxEntries = 10000

type checkedEntry struct {
	user    string
	ok      bool
	expires time.Time
}

type failureCount struct {
	n     int
	since time.Time
}

// dummyHash is what a missing account's password is checked against: a
// bcrypt of the default cost, so that it costs what a wrong password does.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("no such account"), bcrypt.DefaultCost)
	return h
})

// Name implements Policy.
func (*Accounts) Name() string { return "account" }

// Challenge implements Policy.
func (*Accounts) Challenge() string { return `Basic realm="Realm"` }

// Authenticate implements Policy.
func (a *Accounts) Authenticate(r *http.Request) (string, bool) {
	user, pass, ok := BasicCredentials(r)
	if !ok {
		return "", false
	}
	key := HMACDigest(a.Secret, "accounts:"+user+":"+pass)
	now := a.Now()
	a.mu.Lock()
	e, hit := a.checked[key]
	if hit && now.Before(e.expires) {
		if e.ok {
			// Sessions in use stay remembered.
			e.expires = now.Add(a.TTL)
			a.checked[key] = e
		}
		a.mu.Unlock()
		return user, e.ok
	}
	if f := a.failures[user]; a.FailuresPerMinute > 0 && f.n >= a.FailuresPerMinute && now.Sub(f.since) < time.Minute {
		a.mu.Unlock()
		return user, false // too many failures of this account lately
	}
	a.mu.Unlock()
	hash, found := a.Hash(r, user)
	if !found {
		hash = string(dummyHash())
	}
	if !a.acquire(r) {
		return user, false // the client went away while waiting
	}
	ok = bcrypt.CompareHashAndPassword([]byte(hash), []byte(pass)) == nil && found
	<-a.sem
	a.remember(key, checkedEntry{user: user, ok: ok, expires: now.Add(a.TTL)})
	if !ok {
		a.failed(user, now)
	}
	return user, ok
}

// acquire takes a place among the concurrent checks, waiting as long as
// the request does.
func (a *Accounts) acquire(r *http.Request) bool {
	a.once.Do(func() { a.sem = make(chan struct{}, max(1, a.Concurrency)) })
	select {
	case a.sem <- struct{}{}:
		return true
	case <-r.Context().Done():
		return false
	}
}

// failed counts a failed check of user.
func (a *Accounts) failed(user string, now time.Time) {
	if a.FailuresPerMinute <= 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.failures == nil || len(a.failures) >= a.maxEntries() {
		a.failures = map[string]failureCount{}
	}
	f := a.failures[user]
	if now.Sub(f.since) >= time.Minute {
		f = failureCount{since: now}
	}
	f.n++
	a.failures[user] = f
}

func (a *Accounts) maxEntries() int {
	if a.MaxEntries <= 0 {
		return DefaultMaxEntries
	}
	return a.MaxEntries
}

// remember keeps a check within MaxEntries: when full, failed checks go
// first (they are the ones a client can multiply), then everything.
func (a *Accounts) remember(key string, e checkedEntry) {
	max := a.maxEntries()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.checked == nil {
		a.checked = map[string]checkedEntry{}
	}
	if len(a.checked) >= max {
		for k, old := range a.checked {
			if !old.ok {
				delete(a.checked, k)
			}
		}
		if len(a.checked) >= max {
			a.checked = map[string]checkedEntry{}
		}
	}
	a.checked[key] = e
}

// Forget drops the remembered checks of a user (its account was created,
// changed or deleted): old passwords stop working at once, and failed
// checks are made again.
func (a *Accounts) Forget(user string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.failures, user)
	for k, e := range a.checked {
		if e.user == user {
			delete(a.checked, k)
		}
	}
}

// ForgetAll drops every remembered check.
func (a *Accounts) ForgetAll() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.checked, a.failures = nil, nil
}

// HashPassword hashes a password as Kinto's accounts plugin does (bcrypt).
func HashPassword(password string) (string, error) {
	b, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	return string(b), err
}
