package signer_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kintogo/internal/app/apptest"
	"kintogo/internal/contentsig"
	"kintogo/internal/httpapi"
	"kintogo/internal/storage/storetest"
)

// flow is a server with the signer, and the users of the reference's
// signoff tests: tarte (headers) and Sam (other_headers), both editors and
// reviewers of /buckets/alice/collections/scid unless a test changes it.
type flow struct {
	t        *testing.T
	url      string
	keyFile  string
	users    map[string]string // name -> user id
	open     storetest.Open
	settings map[string]string
}

// keyFile writes a fresh P-384 key and returns its path.
func keyFile(t *testing.T) string {
	key, err := contentsig.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pemKey, err := contentsig.EncodePrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "signer.pem")
	if err := os.WriteFile(path, pemKey, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const (
	tarte = "tarte:en-pion"
	sam   = "Sam:Wan Heilss"
)

func newFlow(t *testing.T, open storetest.Open, settings map[string]string) *flow {
	f := &flow{t: t, keyFile: keyFile(t), users: map[string]string{}, open: open}
	base := map[string]string{
		"includes": "kinto_remote_settings kinto.plugins.history", "multiauth.policies": "basicauth",
		"userid_hmac_secret":       "aujourd'hui encore, il fait beau en bretagne.",
		"signer.resources":         "/buckets/alice/collections/scid -> /buckets/alice/collections/dcid",
		"signer.ecdsa.private_key": f.keyFile, "changes.resources": "/buckets/alice",
	}
	for k, v := range settings {
		base[k] = v
	}
	f.settings = base
	ts := httptest.NewServer(apptest.Server(t, open(t), httpapi.Options{}, base))
	t.Cleanup(ts.Close)
	f.url = ts.URL
	for _, u := range []string{tarte, sam, "edith:her", "emo:billier", "ray:weaver", "walter:white", "otra:persona"} {
		f.users[u] = f.call("GET", "/", u, "", 200).body["user"].(map[string]any)["id"].(string)
	}
	return f
}

type answer struct {
	code   int
	header http.Header
	body   map[string]any
}

func (a answer) data() map[string]any { d, _ := a.body["data"].(map[string]any); return d }

func (a answer) list() []any { d, _ := a.body["data"].([]any); return d }

func (f *flow) call(method, path, user, body string, want int) answer {
	f.t.Helper()
	req, _ := http.NewRequest(method, f.url+"/v1"+path, strings.NewReader(body))
	if user != "" {
		name, pw, _ := strings.Cut(user, ":")
		req.SetBasicAuth(name, pw)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{code: resp.StatusCode, header: resp.Header}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	dec.Decode(&a.body)
	if want != 0 && a.code != want {
		f.t.Fatalf("%s %s as %q: %d, want %d: %s", method, path, user, a.code, want, raw)
	}
	return a
}

// status sets the source's status as user, expecting want.
func (f *flow) status(coll, user, status string, want int) answer {
	f.t.Helper()
	return f.call("PATCH", coll, user, `{"data": {"status": "`+status+`"}}`, want)
}

func (f *flow) get(path, user string) map[string]any {
	f.t.Helper()
	return f.call("GET", path, user, "", 200).data()
}

func (f *flow) count(path, user string) int {
	f.t.Helper()
	return len(f.call("GET", path+"/records", user, "", 200).list())
}

// wantStatus checks a source collection's status.
func (f *flow) wantStatus(coll, want string) {
	f.t.Helper()
	if got := f.get(coll, tarte)["status"]; got != want {
		f.t.Fatalf("%s: status %v, want %s", coll, got, want)
	}
}

// grows checks that do adds records to coll.
func (f *flow) grows(coll, failure string, do func()) {
	f.t.Helper()
	before := f.count(coll, tarte)
	do()
	if after := f.count(coll, tarte); after <= before {
		f.t.Fatal(failure)
	}
}

// setUp is the reference's SignoffWebTest.setUp: the source bucket
// writable by every authenticated user, the groups with both users, the
// source collection with two records.
func (f *flow) setUp(bucket, coll string) {
	f.t.Helper()
	f.call("PUT", bucket, tarte, `{"permissions": {"write": ["system.Authenticated"]}}`, 0)
	cid := coll[strings.LastIndex(coll, "/")+1:]
	members := `{"data": {"members": ["` + f.users[tarte] + `", "` + f.users[sam] + `"]}}`
	f.call("PUT", bucket+"/groups/"+cid+"-editors", tarte, members, 0)
	f.call("PUT", bucket+"/groups/"+cid+"-reviewers", tarte, members, 0)
	f.call("PUT", coll, tarte, "", 0)
	f.call("POST", coll+"/records", tarte, `{"data": {"title": "hello"}}`, 201)
	f.call("POST", coll+"/records", tarte, `{"data": {"id": "in-french", "title": "bonjour"}}`, 201)
}

func eachBackend(t *testing.T, fn func(t *testing.T, open storetest.Open)) {
	for name, open := range storetest.Backends() {
		t.Run(name, func(t *testing.T) { fn(t, open) })
	}
}

func upper(s string) string { return strings.ToUpper(s) }

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// verify checks the signature of a preview or destination over its
// records and records timestamp (as a client does from its changeset),
// and returns it.
func (f *flow) verify(coll string) string {
	f.t.Helper()
	sig, _ := f.verifyAt(coll)
	return sig
}

// verifyAt is verify, also returning the timestamp of the changeset that
// signature verified.
func (f *flow) verifyAt(coll string) (string, int64) {
	f.t.Helper()
	sig, ts, err := f.checkChangeset(coll)
	if err != nil {
		f.t.Fatalf("%s: %v", coll, err)
	}
	return sig, ts
}

// checkChangeset verifies one changeset answer of coll with the flow's
// key, and returns its signature and timestamp; it may run on any
// goroutine.
func (f *flow) checkChangeset(coll string) (string, int64, error) {
	a := f.call("GET", coll+"/changeset?_expected=0", "", "", 0)
	if a.code != 200 {
		return "", 0, fmt.Errorf("changeset: %d", a.code)
	}
	meta, _ := a.body["metadata"].(map[string]any)
	sig, _ := meta["signature"].(map[string]any)
	if sig == nil {
		return "", 0, fmt.Errorf("no signature in %v", a.body)
	}
	var records []map[string]any
	for _, r := range a.body["changes"].([]any) {
		records = append(records, r.(map[string]any))
	}
	ts, _ := a.body["timestamp"].(json.Number).Int64()
	payload, err := contentsig.Collection(records, ts)
	if err != nil {
		return "", 0, err
	}
	key, err := contentsig.LoadPrivateKey(f.keyFile)
	if err != nil {
		return "", 0, err
	}
	if err := contentsig.Verify(&key.PublicKey, payload, sig["signature"].(string)); err != nil {
		return "", 0, fmt.Errorf("the signature does not verify: %w", err)
	}
	return sig["signature"].(string), ts, nil
}
