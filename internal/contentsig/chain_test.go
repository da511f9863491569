package contentsig

import (
	"crypto/x509"
	"os"
	"strings"
	"testing"
	"time"
)

// The issuer Firefox trusts for localhost (testdata/autograph-dev).
func autographDev(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	certPEM, err := os.ReadFile("testdata/autograph-dev/issuer.pem")
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err = os.ReadFile("testdata/autograph-dev/issuer-key.pem")
	if err != nil {
		t.Fatal(err)
	}
	return certPEM, keyPEM
}

// A leaf under an existing intermediate: the chain verifies up to the
// root Firefox compiles in, expires with its issuer at the latest, and
// a kintogo-made chain's issuer.pem and key issue the next leaf alike.
func TestIssuer(t *testing.T) {
	certPEM, keyPEM := autographDev(t)
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	ch, err := Issuer(certPEM, keyPEM, now)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Root() == nil || RootHash(ch.Root()) != FirefoxLocalRootHash {
		t.Fatalf("root %v", ch.Root())
	}
	key, _ := GenerateKey()
	if err := ch.NewLeaf(DefaultSubject, key, now, 30*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	certs, err := ParseCertificates(ch.PEM())
	if err != nil || len(certs) != 3 {
		t.Fatalf("chain: %d certificates, %v", len(certs), err)
	}
	leaf, err := VerifyChain(certs, FirefoxLocalRootHash, ".content-signature.mozilla.org", now)
	if err != nil {
		t.Fatal(err)
	}
	// What Go's verifier says too, name constraints included.
	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(certs[2])
	inters.AddCert(certs[1])
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, CurrentTime: now,
		DNSName: DefaultSubject, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}); err != nil {
		t.Errorf("x509: %v", err)
	}
	if err := ch.NewLeaf(DefaultSubject, key, now, 10*365*24*time.Hour); err != nil || !ch.Leaf.NotAfter.Equal(ch.Intermediate.NotAfter) {
		t.Errorf("a leaf longer than its issuer: until %v (issuer %v), %v", ch.Leaf.NotAfter, ch.Intermediate.NotAfter, err)
	}

	own, err := NewChain("signer.content-signature.example.org", now, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ownKey, err := EncodeSigner(own.IntermediateKey)
	if err != nil {
		t.Fatal(err)
	}
	ownIssuer := EncodeCertificates(own.Intermediate, own.Root())
	next, err := Issuer(ownIssuer, ownKey, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := next.NewLeaf("signer.content-signature.example.org", key, now, time.Hour); err != nil {
		t.Fatal(err)
	}
	certs, _ = ParseCertificates(next.PEM())
	if _, err := VerifyChain(certs, RootHash(own.Root()), ".content-signature.example.org", now); err != nil {
		t.Errorf("the next leaf of a kintogo-made chain: %v", err)
	}
}

// Issuer refuses what cannot issue a leaf clients accept, saying why.
func TestIssuerRefusals(t *testing.T) {
	certPEM, keyPEM := autographDev(t)
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	own, _ := NewChain(DefaultSubject, now, 24*time.Hour)
	leafKey, _ := EncodePrivateKey(own.LeafKey)
	otherKey, _ := EncodeSigner(own.IntermediateKey)
	certs, _ := ParseCertificates(certPEM)
	for _, c := range []struct {
		name      string
		cert, key []byte
		now       time.Time
		want      string
	}{
		{"another key", certPEM, otherKey, now, `the key is not the one of the issuer's certificate "csinter1553186747"`},
		{"a leaf as issuer", EncodeCertificates(own.Leaf), leafKey, now, "is not a certificate authority"},
		{"expired", certPEM, keyPEM, time.Date(2029, 3, 22, 0, 0, 0, 0, time.UTC), `"csinter1553186747" expired on 2029-03-21T16:45:47Z`},
		{"not yet valid", certPEM, keyPEM, time.Date(2018, 1, 1, 0, 0, 0, 0, time.UTC), "is not valid until"},
		{"issuers out of order", EncodeCertificates(certs[0], own.Root()), keyPEM, now, "must be its chain up to the root"},
		{"no key", certPEM, []byte("nothing"), now, "no private key"},
		{"no certificate", []byte("nothing"), keyPEM, now, "no certificate"},
	} {
		_, err := Issuer(c.cert, c.key, c.now)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	ch, err := Issuer(certPEM, keyPEM, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Permits("signer.example.com"); err == nil || !strings.Contains(err.Error(), "issues names under .content-signature.mozilla.org only") {
		t.Errorf("a name outside the issuer's constraints: %v", err)
	}
	if err := ch.Permits("normandy.content-signature.mozilla.org"); err != nil {
		t.Error(err)
	}
}
