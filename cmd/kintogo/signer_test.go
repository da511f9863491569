package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kintogo/internal/contentsig"
)

// kintogo signer-keys makes a key and its chain that a server signs and
// serves with (never overwriting them); after the key changes, kintogo
// resign, beside the running server, signs again what the old chain
// signed, and the server serves the new signatures.
func TestSignerKeysAndResign(t *testing.T) {
	dir := t.TempDir()
	out, errOut, err := kintogo(t, dir, "", nil, "signer-keys", "keys")
	if err != nil {
		t.Fatalf("signer-keys: %v %s", err, errOut)
	}
	if !strings.Contains(out, "kinto.signer.ecdsa.private_key = "+filepath.Join(dir, "keys", "signer-key.pem")) {
		t.Fatalf("signer-keys printed %s", out)
	}
	if _, errOut, err := kintogo(t, dir, "", nil, "signer-keys", "keys"); err == nil || !strings.Contains(errOut, "already exists") || !strings.Contains(errOut, "--show") {
		t.Fatalf("signer-keys over existing keys: %v %s", err, errOut)
	}
	// The secrets are the owner's only, git ignores them, and the root's
	// hash can be shown again.
	for _, name := range []string{"signer-key.pem", "intermediate-key.pem"} {
		if info, err := os.Stat(filepath.Join(dir, "keys", name)); err != nil || info.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", name, info.Mode(), err)
		}
	}
	if ignore, _ := os.ReadFile(filepath.Join(dir, "keys", ".gitignore")); !strings.Contains(string(ignore), "/signer-key.pem") || !strings.Contains(string(ignore), "/intermediate-key.pem") {
		t.Errorf("keys/.gitignore: %q", ignore)
	}
	hash := out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:]
	if shown, errOut, err := kintogo(t, dir, "", nil, "signer-keys", "--show", "keys"); err != nil || !strings.Contains(shown, strings.TrimSpace(hash)) {
		t.Errorf("signer-keys --show: %v %q %s (the hash printed first: %q)", err, shown, errOut, hash)
	}
	env := func(keys string) []string {
		return []string{
			"KINTO_INCLUDES=kinto_remote_settings", "KINTO_MULTIAUTH_POLICIES=basicauth",
			"KINTO_SIGNER_RESOURCES=/buckets/ws -> /buckets/prod",
			"KINTO_SIGNER_ECDSA_PRIVATE_KEY=" + filepath.Join(dir, keys, "signer-key.pem"),
			"KINTO_SIGNER_ECDSA_CERTIFICATE_CHAIN=" + filepath.Join(dir, keys, "chain.pem"),
			"KINTO_HTTP_HOST=kinto.example.com",
		}
	}
	s := startServer(t, dir, env("keys"))
	do(t, "PUT", s.base+"/buckets/ws", "alice:pw", "")
	if code, _ := do(t, "PUT", s.base+"/buckets/ws/collections/c", "alice:pw", ""); code != 201 {
		t.Fatalf("source: %d", code)
	}
	signature := func() map[string]any {
		_, body := do(t, "GET", s.base+"/buckets/prod/collections/c", "", "")
		sig, _ := body["data"].(map[string]any)["signature"].(map[string]any)
		return sig
	}
	x5u := func() string { x, _ := signature()["x5u"].(string); return x }
	before := x5u()
	if !strings.HasPrefix(before, "http://kinto.example.com/v1/__signer__/chains/") {
		t.Fatalf("x5u %q", before)
	}
	if code, _ := do(t, "GET", s.base+strings.TrimPrefix(before, "http://kinto.example.com/v1"), "", ""); code != 200 {
		t.Fatalf("the chain answered %d", code)
	}

	// The next leaf, under the same intermediate.
	if _, errOut, err := kintogo(t, dir, "", nil, "signer-keys", "--issuer-certificate", "keys/issuer.pem", "--issuer-key", "keys/intermediate-key.pem", "next"); err != nil {
		t.Fatalf("signer-keys: %v %s", err, errOut)
	}
	out, errOut, err = kintogo(t, dir, "", env("next"), "resign")
	if err != nil {
		t.Fatalf("resign: %v %s", err, errOut)
	}
	if !strings.Contains(out, "re-signed /buckets/prod/collections/c (signed with another certificate chain)") || !strings.Contains(out, "1 collections re-signed") {
		t.Fatalf("resign printed %s", out)
	}
	eventually(t, "the server serves the new signature", func() bool { return x5u() != before })
	out, _, err = kintogo(t, dir, "", env("next"), "resign")
	if err != nil || !strings.Contains(out, "0 collections re-signed") {
		t.Fatalf("second resign: %v %s", err, out)
	}
	// Signing the same records again gives new signature bytes.
	bytes := signature()["signature"]
	if out, errOut, err := kintogo(t, dir, "", env("next"), "resign", "--all"); err != nil || !strings.Contains(out, "1 collections re-signed") {
		t.Fatalf("resign --all: %v %s %s", err, out, errOut)
	}
	eventually(t, "the server serves new signature bytes", func() bool { return signature()["signature"] != bytes })
}

// kintogo signer-keys --issuer-certificate issues the leaf only, under an
// existing intermediate (here the development one Firefox trusts), and
// refuses, saying why, what would give a chain clients reject.
func TestSignerKeysUnderAnIssuer(t *testing.T) {
	dir := t.TempDir()
	issuer, _ := filepath.Abs("../../internal/contentsig/testdata/autograph-dev/issuer.pem")
	issuerKey, _ := filepath.Abs("../../internal/contentsig/testdata/autograph-dev/issuer-key.pem")
	if time.Now().After(time.Date(2029, 3, 21, 16, 45, 47, 0, time.UTC)) {
		t.Fatal("Autograph's development intermediate (csinter1553186747) expired on 2029-03-21: see internal/contentsig/testdata/autograph-dev/README.md for a newer one")
	}
	out, errOut, err := kintogo(t, dir, "", nil, "signer-keys", "--issuer-certificate", issuer, "--issuer-key", issuerKey, "--days", "30", "keys")
	if err != nil {
		t.Fatalf("signer-keys: %v %s", err, errOut)
	}
	for _, want := range []string{`issued by "csinter1553186747"`, "Firefox trusts this root", contentsig.FirefoxLocalRootHash} {
		if !strings.Contains(out, want) {
			t.Errorf("signer-keys printed %s\nwithout %q", out, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "keys", "intermediate-key.pem")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("intermediate-key.pem: %v", err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "keys", "chain.pem"))
	certs, err := contentsig.ParseCertificates(raw)
	if err != nil || len(certs) != 3 {
		t.Fatalf("chain.pem: %d certificates, %v", len(certs), err)
	}
	leaf, err := contentsig.VerifyChain(certs, contentsig.FirefoxLocalRootHash, ".content-signature.mozilla.org", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	key, err := contentsig.LoadPrivateKey(filepath.Join(dir, "keys", "signer-key.pem"))
	if err != nil || !key.PublicKey.Equal(leaf.PublicKey) {
		t.Fatalf("signer-key.pem is not the leaf's key: %v", err)
	}
	if d := time.Until(leaf.NotAfter); d < 29*24*time.Hour || d > 31*24*time.Hour {
		t.Errorf("the leaf expires in %v", d)
	}
	if shown, _, _ := kintogo(t, dir, "", nil, "signer-keys", "--show", "keys"); !strings.Contains(shown, contentsig.FirefoxLocalRootHash) {
		t.Errorf("--show: %s", shown)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--issuer-certificate", issuer}, "--issuer-certificate and --issuer-key go together"},
		{[]string{"--issuer-certificate", issuer, "--issuer-key", filepath.Join(dir, "keys", "signer-key.pem")}, "the key is not the one of the issuer's certificate"},
		{[]string{"--issuer-certificate", filepath.Join(dir, "keys", "chain.pem"), "--issuer-key", filepath.Join(dir, "keys", "signer-key.pem")}, "is not a certificate authority"},
		{[]string{"--issuer-certificate", issuer, "--issuer-key", issuerKey, "--subject", "signer.example.com"}, "issues names under .content-signature.mozilla.org only"},
		{[]string{"--issuer-certificate", issuer, "--issuer-key", issuerKey}, "already exists"},
	} {
		_, errOut, err := kintogo(t, dir, "", nil, append(append([]string{"signer-keys"}, c.args...), "keys")...)
		if err == nil || !strings.Contains(errOut, c.want) {
			t.Errorf("signer-keys %v: %v %s, want %q", c.args, err, errOut, c.want)
		}
	}
}
