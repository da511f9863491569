package auth

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestBasicUserIDs(t *testing.T) {
	tests := []struct{ secret, user, pass, want string }{
		// kinto-protocol.md §7.1 (empty secret, Kinto's default).
		{"", "alice", "secret", "basicauth:d5b0026601f1b251974e09548d44155e16812e3c64ff7ae053fe3542e2ca1570"},
		{"", "mat", "secret", "basicauth:8a931a10fc88ab2f6d1cc02a07d3a81b5d4768f6f13e85c5d8d4180419acb1b4"},
		// The conformance recording's secret.
		{"b1d9a3a1bc6c4ad1f5e4b9bb3e1c3a1e0e1f3c6a2d8b7c4e5f6a7b8c9d0e1f2a", "alice", "alicepw",
			"basicauth:c03dcc913440cf9900b94711abcbfa1e3c4a1c8bb61b22e5e3dc4453f472d558"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		r.SetBasicAuth(tt.user, tt.pass)
		if got := Identify([]Policy{Basic{Secret: tt.secret}}, r, nil); got != tt.want {
			t.Errorf("%s:%s => %s, want %s", tt.user, tt.pass, got, tt.want)
		}
	}
}

func TestMalformedCredentialsAreAnonymous(t *testing.T) {
	for _, h := range []string{"", "Basic not-base64!", "Bearer abc", "Basic " + "OnBhc3M=" /* ":pass" */} {
		r := httptest.NewRequest("GET", "/", nil)
		if h != "" {
			r.Header.Set("Authorization", h)
		}
		if got := Identify([]Policy{Basic{}}, r, nil); got != "" {
			t.Errorf("%q => %q, want anonymous", h, got)
		}
	}
}

// A hash made by Kinto's accounts plugin (kinto.plugins.accounts.utils.
// hash_password, as `kinto create-user` stores it: Python bcrypt, $2b$)
// verifies, and a wrong password does not.
func TestAccountsVerifiesKintoHashes(t *testing.T) {
	const kintoHash = "$2b$12$MJqjFo1ovK0asK1DajgYzeLI3DAb8TrVCPB4Z4ZcYl.YIYyFAxAoO" // "s3cret"
	lookups := 0
	a := &Accounts{TTL: time.Minute, Now: time.Now, Hash: func(r *http.Request, user string) (string, bool) {
		lookups++
		return kintoHash, user == "carol"
	}}
	try := func(user, pass string) string {
		r := httptest.NewRequest("GET", "/", nil)
		r.SetBasicAuth(user, pass)
		return Identify([]Policy{a}, r, nil)
	}
	if got := try("carol", "s3cret"); got != "account:carol" {
		t.Fatalf("Kinto hash: %q", got)
	}
	if got := try("carol", "s3cret"); got != "account:carol" || lookups != 1 {
		t.Errorf("second check: %q after %d lookups (want it remembered)", got, lookups)
	}
	if got := try("carol", "wrong"); got != "" {
		t.Errorf("wrong password: %q", got)
	}
	if got := try("dave", "s3cret"); got != "" {
		t.Errorf("unknown user: %q", got)
	}
	a.Forget("carol")
	if try("carol", "s3cret"); lookups != 4 {
		t.Errorf("Forget did not drop the remembered check (%d lookups)", lookups)
	}
	h, err := HashPassword("x")
	if err != nil || !strings.HasPrefix(h, "$2a$") && !strings.HasPrefix(h, "$2b$") {
		t.Errorf("HashPassword: %q %v", h, err)
	}
}

// Basic credentials decode as Pyramid decodes them (Python's lenient
// base64, then UTF-8 or Latin-1), so that the same header is the same
// user on kintogo and on Kinto; the vectors are what Kinto 26.5 answered.
func TestBasicCredentialsAsKinto(t *testing.T) {
	b64 := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	latin1 := []byte{'j', 0xe9, 'r', 0xf4, 'm', 'e', ':', 'p', 'w'}
	for _, tc := range []struct {
		header     string
		user, pass string
		ok         bool
	}{
		{"Basic " + b64([]byte("alice:pw")), "alice", "pw", true},
		{"Basic " + b64([]byte("alice:pw")) + " extra", "alice", "pw", true}, // data after the pads: ignored
		{"Basic YWxp*Y2U6cHc=", "alice", "pw", true},                         // outside the alphabet: skipped
		{"Basic YW=xpY2U6cHc=", "alice", "pw", true},                         // a stray pad: skipped
		{"Basic YWxpY2U6cHc=YQ==", "alice", "pw", true},
		{"Basic " + b64(latin1), "jérôme", "pw", true}, // not UTF-8: Latin-1
		{"Basic " + b64([]byte("jérôme:pw")), "jérôme", "pw", true},
		{"basic  " + b64([]byte("alice:pw")), "alice", "pw", true},
		{"Basic YWxpY2U6cHc", "", "", false}, // ends inside a quantum
		{"Basic " + b64([]byte(":pw")), "", "", false},
		{"Basic " + b64([]byte("alicepw")), "", "", false},
		{"Bearer " + b64([]byte("alice:pw")), "", "", false},
	} {
		r, _ := http.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", tc.header)
		user, pass, ok := BasicCredentials(r)
		if user != tc.user || pass != tc.pass || ok != tc.ok {
			t.Errorf("%q: %q %q %v, want %q %q %v", tc.header, user, pass, ok, tc.user, tc.pass, tc.ok)
		}
	}
}

// Valid base64 decodes as Go's standard decoder decodes it; anything
// else never panics.
func FuzzDecodeBase64(f *testing.F) {
	for _, s := range []string{"YWxpY2U6cHc=", "YW=xp*", "====", "Y", "YWxpY2U6cHcx"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := decodeBase64(s)
		if want, err := base64.StdEncoding.DecodeString(s); err == nil && (!ok || string(got) != string(want)) {
			t.Errorf("%q: %q %v, want %q", s, got, ok, want)
		}
	})
}
