// Package openid is Kinto's kinto.plugins.openid: OpenID Connect
// authentication policies (bearer access tokens, checked against the
// provider's userinfo endpoint, and their signature too when an audience
// is set), the login flow kinto-admin and kinto-http use
// (/v1/openid/{provider}/login and /token), and the openid capability.
package openid

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"kintogo/internal/auth"
	"kintogo/internal/httpapi"
	"kintogo/internal/kerr"
	"kintogo/internal/pyfmt"
)

// Plugin is kinto.plugins.openid.
type Plugin struct{}

// Name implements plugins.Plugin.
func (Plugin) Name() string { return "kinto.plugins.openid" }

// provider is one OpenID Connect policy of multiauth.policies.
type provider struct {
	name, issuer, clientID, clientSecret, audience, headerType, userIDField, realm string
	ttl                                                                            time.Duration
	stateTTL                                                                       time.Duration
	stateLength                                                                    int
	scopes                                                                         map[string]bool
	trusted                                                                        []string // "" entries: none set
	oid                                                                            *oidc.Provider
	verifier                                                                       *oidc.IDTokenVerifier
	endpoints                                                                      struct {
		Issuer        string `json:"issuer"`
		Authorization string `json:"authorization_endpoint"`
		Token         string `json:"token_endpoint"`
		UserInfo      string `json:"userinfo_endpoint"`
	}
	p *plugin
}

type plugin struct {
	h         *httpapi.Server
	log       *slog.Logger
	secret    string // userid_hmac_secret: keys the caches and states
	providers map[string]*provider
	client    *http.Client

	mu       sync.Mutex
	verified map[string]verification // by HMAC of the token
	used     map[string]time.Time    // states used, until they expire
}

// verification is a token's check, remembered: the profile, or nil when
// the token was refused.
type verification struct {
	profile map[string]any
	until   time.Time
}

// maxVerified bounds the remembered checks; refusals are remembered for
// a minute (a refused token stays refused, and a client repeating it
// should not make the provider answer each time).
const (
	maxVerified   = 10000
	refusalMemory = time.Minute
)

// maxUsedStates bounds the states remembered as used.
const maxUsedStates = 100000

// Provision implements plugins.Plugin.
func (Plugin) Provision(h *httpapi.Server) error {
	s := h.Settings()
	p := &plugin{h: h, log: h.Logger(), secret: s.String("userid_hmac_secret"), providers: map[string]*provider{},
		client: &http.Client{Timeout: 10 * time.Second}, verified: map[string]verification{}, used: map[string]time.Time{}}
	h.Handle("/v1/openid/{provider}/login", httpapi.Endpoint{Name: "openid_login", Public: true, Expose: httpapi.BaseExpose,
		Methods: map[string]httpapi.Handler{"GET": p.login}})
	h.Handle("/v1/openid/{provider}/token", httpapi.Endpoint{Name: "openid_token", Public: true, Expose: httpapi.BaseExpose,
		Methods: map[string]httpapi.Handler{"GET": p.token}})
	var infos []map[string]any
	for _, name := range s.List("multiauth.policies") {
		if p.secret == "" {
			if use, _ := s.LookupEnv("multiauth.policy." + name + ".use"); strings.HasSuffix(strings.TrimSpace(use), "OpenIDConnectPolicy") {
				return fmt.Errorf("multiauth.policy.%s: OpenID Connect needs kinto.userid_hmac_secret (it keys the remembered tokens and signs the login states)", name)
			}
		}
		get := func(key string) string {
			v, _ := s.LookupEnv("multiauth.policy." + name + "." + key)
			return strings.TrimSpace(v)
		}
		if !strings.HasSuffix(get("use"), "OpenIDConnectPolicy") {
			continue
		}
		pr, err := p.newProvider(name, get)
		if err != nil {
			return fmt.Errorf("multiauth.policy.%s: %w", name, err)
		}
		p.providers[name] = pr
		h.AuthPolicy(pr)
		infos = append(infos, map[string]any{"name": name, "issuer": pr.endpoints.Issuer, "auth_path": "/openid/" + name + "/login",
			"client_id": pr.clientID, "audience": pr.audience, "header_type": "Bearer", "userinfo_endpoint": pr.endpoints.UserInfo})
	}
	if len(infos) == 0 {
		return nil // no capability without a policy, as Kinto
	}
	h.Capability("openid", map[string]any{"description": "OpenID connect support.",
		"url": "http://kinto.readthedocs.io/en/stable/api/1.x/authentication.html", "providers": infos})
	h.HelloUser(func(c *httpapi.Call, user map[string]any) {
		profile := map[string]any{}
		for _, pr := range p.providers {
			if prof := pr.remembered(c.Request()); prof != nil {
				profile = prof
			}
		}
		user["profile"] = profile
	})
	return nil
}

func (p *plugin) newProvider(name string, get func(string) string) (*provider, error) {
	pr := &provider{name: name, issuer: get("issuer"), clientID: get("client_id"), clientSecret: get("client_secret"),
		audience: get("audience"), headerType: get("header_type"), userIDField: get("userid_field"), realm: get("realm"), p: p}
	if pr.issuer == "" || pr.clientID == "" {
		return nil, fmt.Errorf("issuer and client_id are required")
	}
	if pr.headerType == "" {
		pr.headerType = "Bearer"
	}
	if pr.userIDField == "" {
		pr.userIDField = "sub"
	}
	if pr.realm == "" {
		pr.realm = "Realm"
	}
	ints := map[string]*int{}
	ttl, stateTTL := 86400, 3600
	pr.stateLength = 32
	ints["verification_ttl_seconds"], ints["state_ttl_seconds"], ints["state_length"] = &ttl, &stateTTL, &pr.stateLength
	for key, dst := range ints {
		if v := get(key); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("%s: %q is not a positive integer", key, v)
			}
			*dst = n
		}
	}
	pr.ttl, pr.stateTTL = time.Duration(ttl)*time.Second, time.Duration(stateTTL)*time.Second
	scopes := get("allowed_scopes")
	if scopes == "" {
		scopes = "openid email profile"
	}
	pr.scopes = map[string]bool{}
	for _, sc := range strings.Fields(scopes) {
		pr.scopes[sc] = true
	}
	pr.trusted = strings.Fields(get("trusted_callback_urls"))
	// The provider's configuration, read at start as Kinto does.
	ctx, cancel := context.WithTimeout(oidc.ClientContext(context.Background(), p.client), 15*time.Second)
	defer cancel()
	oid, err := oidc.NewProvider(ctx, pr.issuer)
	if err != nil {
		return nil, fmt.Errorf("reading the OpenID configuration of %s: %w", pr.issuer, err)
	}
	pr.oid = oid
	if err := oid.Claims(&pr.endpoints); err != nil {
		return nil, err
	}
	if pr.audience != "" {
		pr.verifier = oid.VerifierContext(oidc.ClientContext(context.Background(), p.client), &oidc.Config{ClientID: pr.audience})
	}
	return pr, nil
}

// Name implements auth.Policy.
func (pr *provider) Name() string { return pr.name }

// Challenge implements auth.Policy.
func (pr *provider) Challenge() string { return pr.headerType + ` realm="` + pr.realm + `"` }

// token is the access token of a request in this provider's scheme.
func (pr *provider) token(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, pr.headerType) || token == "" {
		return "", false
	}
	return token, true
}

func (pr *provider) cacheKey(token string) string {
	return auth.HMACDigest(pr.p.secret, pr.issuer+":"+pr.clientID+":"+pr.audience+":"+token)
}

// remembered is the profile of a request's token checked before, nil
// when none.
func (pr *provider) remembered(r *http.Request) map[string]any {
	token, ok := pr.token(r)
	if !ok {
		return nil
	}
	pr.p.mu.Lock()
	defer pr.p.mu.Unlock()
	v, ok := pr.p.verified[pr.cacheKey(token)]
	if !ok || time.Now().After(v.until) {
		return nil
	}
	return v.profile
}

// Authenticate implements auth.Policy: the token's profile (remembered
// for verification_ttl_seconds, keyed by an HMAC of the token), from the
// provider's userinfo endpoint, once its signature, issuer and audience
// are verified when an audience is set; the user id is the profile's
// userid_field.
func (pr *provider) Authenticate(r *http.Request) (string, bool) {
	token, ok := pr.token(r)
	if !ok {
		return "", false
	}
	key := pr.cacheKey(token)
	p := pr.p
	p.mu.Lock()
	v, found := p.verified[key]
	p.mu.Unlock()
	if !found || time.Now().After(v.until) {
		profile, definite := pr.verify(r.Context(), token)
		if profile == nil && !definite {
			return "", false // the provider could not answer: ask again next time
		}
		v = verification{profile: profile, until: time.Now().Add(pr.ttl)}
		if profile == nil {
			v.until = time.Now().Add(min(pr.ttl, refusalMemory))
		}
	} else if v.profile != nil {
		v.until = time.Now().Add(pr.ttl) // refreshed, as Kinto's cache.set
	}
	p.mu.Lock()
	if len(p.verified) >= maxVerified {
		now := time.Now()
		for k, old := range p.verified {
			if now.After(old.until) || len(p.verified) >= maxVerified {
				delete(p.verified, k)
			}
		}
	}
	p.verified[key] = v
	p.mu.Unlock()
	if v.profile == nil {
		return "", false
	}
	id, ok := v.profile[pr.userIDField].(string)
	return id, ok && id != ""
}

// verify checks a token with the provider: its profile, or nil when it
// is refused; definite is false when the provider could not answer (a
// network failure, a 5xx), which is not remembered.
func (pr *provider) verify(ctx context.Context, token string) (profile map[string]any, definite bool) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if pr.verifier != nil {
		if _, err := pr.verifier.Verify(ctx, token); err != nil {
			pr.p.log.Debug("openid: invalid JWT access token", "issuer", pr.issuer, "err", err)
			return nil, ctx.Err() == nil
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, pr.endpoints.UserInfo, nil)
	if err != nil {
		return nil, true
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := pr.p.client.Do(req)
	if err != nil {
		pr.p.log.Warn("openid: the userinfo endpoint cannot be reached", "issuer", pr.issuer, "err", err)
		return nil, false
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 500 {
		return nil, false
	}
	if resp.StatusCode/100 != 2 || json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&profile) != nil {
		return nil, true
	}
	return profile, true
}

// invalid is a 400 of the login and token endpoints.
func invalid(location, name, description string) error {
	return kerr.InvalidParam(location, kerr.Name(name), description)
}

// providerOf is the provider of the request's path, or the 400 Kinto
// answers for another.
func (p *plugin) providerOf(r *http.Request) (*provider, error) {
	name := r.PathValue("provider")
	pr, ok := p.providers[name]
	if !ok {
		return nil, invalid("path", "provider", "Unknown provider "+pyfmt.Repr(name))
	}
	return pr, nil
}

// login is GET /v1/openid/{provider}/login?callback=&scope=[&prompt=none]:
// checks the scopes and the callback, and redirects to the provider's
// authorization endpoint with a state that names the callback.
func (p *plugin) login(w http.ResponseWriter, r *http.Request, c *httpapi.Call) error {
	q := r.URL.Query()
	var details []kerr.Detail
	for _, f := range []string{"callback", "scope"} {
		if !q.Has(f) {
			details = append(details, kerr.Detail{Location: "querystring", Name: kerr.Name(f), Description: "Required"})
		}
	}
	if q.Has("callback") {
		if u, err := url.Parse(q.Get("callback")); err != nil || u.Scheme == "" || u.Host == "" {
			details = append(details, kerr.Detail{Location: "querystring", Name: kerr.Name("callback"), Description: "Must be a URL"})
		}
	}
	if q.Has("prompt") && q.Get("prompt") != "none" {
		details = append(details, kerr.Detail{Location: "querystring", Name: kerr.Name("prompt"), Description: "String does not match expected pattern"})
	}
	pr, perr := p.providerOf(r)
	if perr != nil {
		details = append(details, perr.(*kerr.Error).Details.([]kerr.Detail)...)
	}
	if len(details) > 0 {
		return &kerr.Error{Kind: kerr.Invalid, Details: details}
	}
	scope, callback := q.Get("scope"), q.Get("callback")
	scopes := strings.Fields(scope)
	var unknown []string
	for _, sc := range scopes {
		if !pr.scopes[sc] && !slices.Contains(unknown, sc) {
			unknown = append(unknown, sc)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return invalid("body", "scope", "Scopes not allowed: "+strings.Join(unknown, ", "))
	}
	trusted := pr.trusted
	if len(trusted) == 0 {
		trusted = append(append([]string{}, defaultTrustedCallbacks...), p.h.Origin(r)+"/v1/admin/*")
	}
	if !trustedCallback(callback, trusted) {
		return invalid("body", "callback", "Untrusted callback URL")
	}
	if pr.userIDField == "email" && !slices.Contains(scopes, "email") {
		return invalid("body", "scope", "Provider "+pr.name+" requires 'email' scope")
	}
	params := url.Values{}
	state := p.newState(pr, p.h.Origin(r), callback)
	tokenURI := p.h.Origin(r) + "/v1/openid/" + pr.name + "/token"
	query := "client_id=" + url.QueryEscape(pr.clientID) + "&response_type=code&scope=" + url.QueryEscape(scope) +
		"&redirect_uri=" + url.QueryEscape(tokenURI) + "&state=" + url.QueryEscape(state)
	if q.Has("prompt") {
		params.Set("prompt", q.Get("prompt"))
	}
	if pr.audience != "" {
		params.Set("audience", pr.audience)
	}
	if extra := params.Encode(); extra != "" {
		query += "&" + extra
	}
	http.Redirect(w, r, pr.endpoints.Authorization+"?"+query, http.StatusTemporaryRedirect)
	return nil
}

// token is GET /v1/openid/{provider}/token?code=&state= (or error=):
// trades the code for tokens at the provider and redirects to the state's
// callback with the provider's answer, base64-encoded, appended (or the
// error, as a query string).
func (p *plugin) token(w http.ResponseWriter, r *http.Request, c *httpapi.Call) error {
	q := r.URL.Query()
	if !q.Has("state") {
		return &kerr.Error{Kind: kerr.Invalid, Details: []kerr.Detail{{Location: "querystring", Name: kerr.Name("state"), Description: "Required"}}}
	}
	if q.Has("code") == q.Has("error") {
		return &kerr.Error{Kind: kerr.Invalid, Details: []kerr.Detail{{Location: "querystring", Name: kerr.Name(""),
			Description: "Provide either 'state' and 'code', or 'error' and 'error_description', but not both."}}}
	}
	pr, err := p.providerOf(r)
	if err != nil {
		return err
	}
	invalidState := &kerr.Error{Kind: kerr.Invalid, Details: []kerr.Detail{{Location: "body", Name: kerr.Name("state"), Description: "Invalid state", Errno: 105}}}
	origin, callback, ok := p.useState(pr, q.Get("state"))
	if !ok || origin != p.h.Origin(r) {
		// (A state begun under another Host than this request's would
		// let a forged Host choose the trusted admin callback.)
		return invalidState
	}
	if q.Has("error") {
		params := url.Values{"error": {q.Get("error")}}
		if d := q.Get("error_description"); d != "" {
			params.Set("error_description", d)
		}
		http.Redirect(w, r, callback+params.Encode(), http.StatusTemporaryRedirect)
		return nil
	}
	form := url.Values{"code": {q.Get("code")}, "client_id": {pr.clientID}, "client_secret": {pr.clientSecret},
		"redirect_uri": {p.h.Origin(r) + "/v1/openid/" + pr.name + "/token"}, "grant_type": {"authorization_code"}}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, pr.endpoints.Token, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := p.client.Do(req)
	if err != nil {
		return kerr.Wrap(kerr.Unavailable, "", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return kerr.Wrap(kerr.Unavailable, "", err)
	}
	encoded := base64.StdEncoding.EncodeToString(body)
	http.Redirect(w, r, callback+url.QueryEscape(encoded), http.StatusTemporaryRedirect)
	return nil
}

// newState is a state that names the origin it was made for and its
// callback, signed (so that any node of a cluster takes it back), valid
// for state_ttl_seconds: its random part has state_length bytes, as
// Kinto's random state.
func (p *plugin) newState(pr *provider, origin, callback string) string {
	nonce := make([]byte, pr.stateLength)
	rand.Read(nonce)
	var exp [8]byte
	binary.BigEndian.PutUint64(exp[:], uint64(time.Now().Add(pr.stateTTL).Unix()))
	payload := hex.EncodeToString(nonce) + "." + hex.EncodeToString(exp[:]) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(origin)) + "." + base64.RawURLEncoding.EncodeToString([]byte(callback))
	return payload + "." + p.sign(pr, payload)
}

func (p *plugin) sign(pr *provider, payload string) string {
	m := hmac.New(sha256.New, []byte("openid-state:"+pr.name+":"+p.secret))
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// useState returns the origin and callback of a valid state, once: a
// state used before (on this node) or expired is refused.
func (p *plugin) useState(pr *provider, state string) (origin, callback string, ok bool) {
	i := strings.LastIndexByte(state, '.')
	if i < 0 || !hmac.Equal([]byte(p.sign(pr, state[:i])), []byte(state[i+1:])) {
		return "", "", false
	}
	parts := strings.Split(state[:i], ".")
	if len(parts) != 4 {
		return "", "", false
	}
	exp, err := hex.DecodeString(parts[1])
	if err != nil || len(exp) != 8 {
		return "", "", false
	}
	until := time.Unix(int64(binary.BigEndian.Uint64(exp)), 0)
	if time.Now().After(until) {
		return "", "", false
	}
	rawOrigin, err1 := base64.RawURLEncoding.DecodeString(parts[2])
	rawCallback, err2 := base64.RawURLEncoding.DecodeString(parts[3])
	if err1 != nil || err2 != nil {
		return "", "", false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.used) >= maxUsedStates {
		// Anyone may begin logins: the memory of used states is bounded
		// (a state forgotten early may serve twice; the provider's code
		// it carries serves once).
		now := time.Now()
		for s, t := range p.used {
			if now.After(t) || len(p.used) >= maxUsedStates/2 {
				delete(p.used, s)
			}
		}
	}
	if _, seen := p.used[parts[0]]; seen {
		return "", "", false
	}
	p.used[parts[0]] = until
	return string(rawOrigin), string(rawCallback), true
}
