package openid_test

import (
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"kintogo/internal/app"
	"kintogo/internal/app/apptest"
	"kintogo/internal/config"
	"kintogo/internal/httpapi"
	"kintogo/internal/storage/memory"
	"kintogo/internal/storage/storetest"
)

// The provider: Keycloak with clients/keycloak/realm.json, started by
// scripts/keycloak.sh, whose issuer is $KINTOGO_TEST_OIDC_ISSUER.
const (
	clientID     = "kinto"
	clientSecret = "kinto-client-secret"
	user, pass   = "ana", "ana-password"
)

func issuer(t *testing.T) string {
	iss := os.Getenv("KINTOGO_TEST_OIDC_ISSUER")
	if iss == "" {
		t.Skip("KINTOGO_TEST_OIDC_ISSUER (a Keycloak started by scripts/keycloak.sh) is not set")
	}
	return iss
}

func newServer(t *testing.T, open storetest.Open, extra map[string]string) string {
	settings := map[string]string{
		"includes": "kinto.plugins.openid", "userid_hmac_secret": "s", "multiauth.policies": "keycloak",
		"multiauth.policy.keycloak.use":           "kinto.plugins.openid.OpenIDConnectPolicy",
		"multiauth.policy.keycloak.issuer":        issuer(t),
		"multiauth.policy.keycloak.client_id":     clientID,
		"multiauth.policy.keycloak.client_secret": clientSecret,
		"bucket_create_principals":                "system.Authenticated",
	}
	for k, v := range extra {
		settings[k] = v
	}
	ts := httptest.NewServer(apptest.Server(t, open(t), httpapi.Options{}, settings))
	t.Cleanup(ts.Close)
	return ts.URL
}

// passwordToken is an access token of ana, from Keycloak's token endpoint.
func passwordToken(t *testing.T) string {
	resp, err := http.PostForm(issuer(t)+"/protocol/openid-connect/token", url.Values{"grant_type": {"password"},
		"client_id": {clientID}, "client_secret": {clientSecret}, "username": {user}, "password": {pass}, "scope": {"openid email"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	if tok.AccessToken == "" {
		t.Fatalf("no access token: %d", resp.StatusCode)
	}
	return tok.AccessToken
}

func get(t *testing.T, client *http.Client, u, bearer string) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, resp.Header, body
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// Bearer tokens of the provider authenticate (their profile in GET /v1/,
// the user id from its sub, or its email), with and without the JWT
// checks an audience asks for; others are refused; the capability lists
// the provider.
func TestBearerTokens(t *testing.T) {
	iss := issuer(t)
	token := passwordToken(t)
	for name, open := range storetest.Backends() {
		t.Run(name, func(t *testing.T) {
			for _, extra := range []map[string]string{
				{},
				{"multiauth.policy.keycloak.audience": clientID, "multiauth.policy.keycloak.userid_field": "email"},
			} {
				base := newServer(t, open, extra)
				_, _, hello := get(t, noRedirect, base+"/v1/", token)
				u, _ := hello["user"].(map[string]any)
				profile, _ := u["profile"].(map[string]any)
				want := "keycloak:" + profile["sub"].(string)
				if extra["multiauth.policy.keycloak.userid_field"] == "email" {
					want = "keycloak:ana@example.com"
				}
				if u["id"] != want || profile["email"] != "ana@example.com" {
					t.Errorf("%v: user %v", extra, u)
				}
				providers := hello["capabilities"].(map[string]any)["openid"].(map[string]any)["providers"].([]any)
				p := providers[0].(map[string]any)
				if p["name"] != "keycloak" || p["issuer"] != iss || p["auth_path"] != "/openid/keycloak/login" || p["client_id"] != clientID ||
					p["userinfo_endpoint"] != iss+"/protocol/openid-connect/userinfo" || p["audience"] != extra["multiauth.policy.keycloak.audience"] {
					t.Errorf("capability: %v", p)
				}
				if code, _, _ := get(t, noRedirect, base+"/v1/buckets", token); code != 200 {
					t.Errorf("authenticated list: %d", code)
				}
				for _, bad := range []string{"not-a-token", token[:len(token)-4] + "AAAA"} {
					code, h, _ := get(t, noRedirect, base+"/v1/buckets", bad)
					if code != 401 || h.Get("WWW-Authenticate") != `Bearer realm="Realm"` {
						t.Errorf("%v, token %q...: %d %v", extra, bad[:8], code, h)
					}
				}
			}
			// An audience the token does not have: refused.
			base := newServer(t, open, map[string]string{"multiauth.policy.keycloak.audience": "another"})
			if code, _, _ := get(t, noRedirect, base+"/v1/buckets", token); code != 401 {
				t.Errorf("another audience: %d", code)
			}
		})
	}
}

// The login flow as kinto-admin and kinto-http drive it: /login redirects
// to the provider, whose login form sends the browser to /token, which
// trades the code and redirects to the callback with the provider's
// tokens; the access token then authenticates. And the refusals.
func TestLoginFlow(t *testing.T) {
	issuer(t)
	base := newServer(t, storetest.Backends()["memory"], nil)
	jar, _ := cookiejar.New(nil)
	var final, tokenURL *url.URL
	browser := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if strings.Contains(req.URL.Path, "/openid/keycloak/token") {
			tokenURL = req.URL
		}
		if strings.HasPrefix(req.URL.String(), "http://localhost:3000/") {
			final = req.URL
			return http.ErrUseLastResponse
		}
		return nil
	}}
	callback := "http://localhost:3000/#tokens="
	resp, err := browser.Get(base + "/v1/openid/keycloak/login?callback=" + url.QueryEscape(callback) + "&scope=openid+email")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	action := regexp.MustCompile(`<form[^>]*action="([^"]+)"`).FindSubmatch(page)
	if action == nil {
		t.Fatalf("no login form (%d): %.300s", resp.StatusCode, page)
	}
	resp, err = browser.PostForm(html.UnescapeString(string(action[1])), url.Values{"username": {user}, "password": {pass}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if final == nil {
		t.Fatalf("no redirection to the callback (%d)", resp.StatusCode)
	}
	encoded, _ := url.QueryUnescape(strings.TrimPrefix(final.String(), "http://localhost:3000/#tokens="))
	raw, err := base64.StdEncoding.DecodeString(encoded)
	var tokens struct {
		AccessToken string `json:"access_token"`
		IDToken     string `json:"id_token"`
	}
	if err != nil || json.Unmarshal(raw, &tokens) != nil || tokens.AccessToken == "" || tokens.IDToken == "" {
		t.Fatalf("callback %s: %v %s", final, err, raw)
	}
	_, _, hello := get(t, noRedirect, base+"/v1/", tokens.AccessToken)
	if u, _ := hello["user"].(map[string]any); !strings.HasPrefix(u["id"].(string), "keycloak:") {
		t.Errorf("user %v", hello["user"])
	}

	for _, c := range []struct {
		path   string
		status int
		errno  float64
		want   string
	}{
		{"/v1/openid/other/login?callback=http://localhost:3000/&scope=openid", 400, 107, "Unknown provider 'other'"},
		{"/v1/openid/keycloak/login?callback=https://evil.example.com/&scope=openid", 400, 107, "Untrusted callback URL"},
		{"/v1/openid/keycloak/login?callback=http://localhost:3000/&scope=openid+offline_access+admin", 400, 107, "Scopes not allowed: admin, offline_access"},
		{"/v1/openid/keycloak/login?scope=openid", 400, 107, "Required"},
		{"/v1/openid/keycloak/token?code=x&state=forged.state", 400, 107, "Invalid state"},
		{"/v1/openid/keycloak/token?state=x", 400, 107, "Provide either"},
	} {
		code, _, body := get(t, noRedirect, base+c.path, "")
		if code != c.status || body["errno"] != c.errno || !strings.Contains(body["message"].(string)+"", c.want) {
			t.Errorf("%s: %d %v", c.path, code, body)
		}
	}
	// A state begun under a forged Host (which chose the trusted admin
	// callback) is refused on the real one.
	req, _ := http.NewRequest("GET", base+"/v1/openid/keycloak/login?callback="+url.QueryEscape("http://evil.example/v1/admin/#x=")+"&scope=openid", nil)
	req.Host = "evil.example"
	resp, err = noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != 307 || loc.Query().Get("state") == "" {
		t.Fatalf("login under another Host: %d %s", resp.StatusCode, loc)
	}
	if code, _, body := get(t, noRedirect, base+"/v1/openid/keycloak/token?code=x&state="+url.QueryEscape(loc.Query().Get("state")), ""); code != 400 || body["message"] != "Invalid state" {
		t.Errorf("a state of another Host: %d %v", code, body)
	}
	// A state is used once.
	if code, _, body := get(t, noRedirect, tokenURL.String(), ""); code != 400 || body["message"] != "Invalid state" {
		t.Errorf("the state used again: %d %v", code, body)
	}
}

// Without userid_hmac_secret (which signs the login states), the start is
// refused.
func TestNeedsASecret(t *testing.T) {
	settings, _ := config.FromMap(map[string]string{"multiauth.policies": "keycloak",
		"multiauth.policy.keycloak.use": "kinto.plugins.openid.OpenIDConnectPolicy", "multiauth.policy.keycloak.issuer": "http://127.0.0.1:1/x",
		"multiauth.policy.keycloak.client_id": "kinto"})
	if _, err := app.NewServer(settings, memory.New(), httpapi.Options{}); err == nil || !strings.Contains(err.Error(), "userid_hmac_secret") {
		t.Errorf("%v", err)
	}
}
