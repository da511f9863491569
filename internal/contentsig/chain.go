package contentsig

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// DefaultSubject is the leaf's name Remote Settings clients expect of
// content signatures (Firefox checks it; autograph-utils checks that it
// ends with .content-signature.mozilla.org by default).
const DefaultSubject = "remote-settings.content-signature.mozilla.org"

// Chain is a content-signature certificate chain: the leaf whose key
// signs (code signing only), the intermediate that issued it, and the
// intermediate's own issuers up to the root, with the leaf's and the
// intermediate's private keys.
type Chain struct {
	Leaf, Intermediate *x509.Certificate
	// Upper are the intermediate's issuers, the root last, as the x5u
	// carries them; empty when only the intermediate is known.
	Upper           []*x509.Certificate
	LeafKey         *ecdsa.PrivateKey
	IntermediateKey crypto.Signer
}

// Root is the chain's self-signed root, nil when the chain ends below it.
func (c *Chain) Root() *x509.Certificate {
	if len(c.Upper) == 0 {
		return nil
	}
	root := c.Upper[len(c.Upper)-1]
	if root.CheckSignatureFrom(root) != nil {
		return nil
	}
	return root
}

// NewChain makes a chain whose leaf is valid for validity from now, the
// intermediate for twice as long and the root for three times (so that
// a new leaf can be issued before the leaf expires).
func NewChain(subject string, now time.Time, validity time.Duration) (*Chain, error) {
	rootKey, err := GenerateKey()
	if err != nil {
		return nil, err
	}
	interKey, err := GenerateKey()
	if err != nil {
		return nil, err
	}
	leafKey, err := GenerateKey()
	if err != nil {
		return nil, err
	}
	domain := subject
	if _, rest, ok := strings.Cut(subject, "."); ok {
		domain = rest
	}
	start := now.Add(-time.Hour)
	ca := func(cn string, until time.Time) *x509.Certificate {
		return &x509.Certificate{
			SerialNumber: serial(), Subject: pkix.Name{CommonName: cn, Organization: []string{"kintogo"}},
			NotBefore: start, NotAfter: until, IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		}
	}
	rootTmpl := ca("kintogo content signature root", now.Add(3*validity))
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		return nil, err
	}
	root, _ := x509.ParseCertificate(rootDER)
	interTmpl := ca("kintogo content signature intermediate", now.Add(2*validity))
	interTmpl.PermittedDNSDomains = []string{domain}
	interTmpl.PermittedDNSDomainsCritical = false
	interTmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}
	interDER, err := x509.CreateCertificate(rand.Reader, interTmpl, root, &interKey.PublicKey, rootKey)
	if err != nil {
		return nil, err
	}
	inter, _ := x509.ParseCertificate(interDER)
	c := &Chain{Intermediate: inter, Upper: []*x509.Certificate{root}, IntermediateKey: interKey}
	if err := c.NewLeaf(subject, leafKey, now, validity); err != nil {
		return nil, err
	}
	return c, nil
}

// NewLeaf issues a new leaf for key under the chain's intermediate. It
// expires with the intermediate if validity would take it further.
func (c *Chain) NewLeaf(subject string, key *ecdsa.PrivateKey, now time.Time, validity time.Duration) error {
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: subject, Organization: []string{"kintogo"}},
		DNSNames: []string{subject}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(validity),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		BasicConstraintsValid: true,
	}
	if tmpl.NotAfter.After(c.Intermediate.NotAfter) {
		tmpl.NotAfter = c.Intermediate.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.Intermediate, &key.PublicKey, c.IntermediateKey)
	if err != nil {
		return err
	}
	c.Leaf, _ = x509.ParseCertificate(der)
	c.LeafKey = key
	return nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

// PEM is the chain as an x5u serves it: leaf, intermediate, its issuers
// up to the root.
func (c *Chain) PEM() []byte {
	return EncodeCertificates(append([]*x509.Certificate{c.Leaf, c.Intermediate}, c.Upper...)...)
}

// EncodeCertificates is certificates in PEM, one after the other.
func EncodeCertificates(certs ...*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, cert := range certs {
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	}
	return b.Bytes()
}

// Issuer reads an existing intermediate that is to issue leaves: certPEM
// holds its certificate, optionally followed by its issuers up to the
// root (what the x5u will carry after the leaf), keyPEM its private key.
// It refuses, saying why, a key that is not the certificate's, a
// certificate that is no certificate authority, one not valid at now,
// and issuers that did not sign what they follow.
func Issuer(certPEM, keyPEM []byte, now time.Time) (*Chain, error) {
	certs, err := ParseCertificates(certPEM)
	if err != nil {
		return nil, err
	}
	key, err := parseSigner(keyPEM)
	if err != nil {
		return nil, err
	}
	inter := certs[0]
	name := inter.Subject.CommonName
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(inter.PublicKey) {
		return nil, fmt.Errorf("the key is not the one of the issuer's certificate %q", name)
	}
	if !inter.IsCA || !inter.BasicConstraintsValid {
		return nil, fmt.Errorf("the issuer's certificate %q is not a certificate authority: it cannot issue a leaf", name)
	}
	if inter.KeyUsage != 0 && inter.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("the issuer's certificate %q may not sign certificates (its key usage lacks certificate signing)", name)
	}
	if now.Before(inter.NotBefore) {
		return nil, fmt.Errorf("the issuer's certificate %q is not valid until %s", name, inter.NotBefore.Format(time.RFC3339))
	}
	if !now.Before(inter.NotAfter) {
		return nil, fmt.Errorf("the issuer's certificate %q expired on %s", name, inter.NotAfter.Format(time.RFC3339))
	}
	for i := 1; i < len(certs); i++ {
		if err := certs[i-1].CheckSignatureFrom(certs[i]); err != nil {
			return nil, fmt.Errorf("certificate %q, after %q, did not issue it: the certificates after the issuer's must be its chain up to the root, in order", certs[i].Subject.CommonName, certs[i-1].Subject.CommonName)
		}
	}
	return &Chain{Intermediate: inter, Upper: certs[1:], IntermediateKey: key}, nil
}

// Permits reports whether the intermediate's name constraints (if any)
// allow a leaf named subject, as verifiers enforce them.
func (c *Chain) Permits(subject string) error {
	permitted := c.Intermediate.PermittedDNSDomains
	if len(permitted) == 0 {
		return nil
	}
	for _, d := range permitted {
		if d != "" && d[0] == '.' && strings.HasSuffix(subject, d) || subject == d || strings.HasSuffix(subject, "."+d) {
			return nil
		}
	}
	return fmt.Errorf("the issuer %q issues names under %s only, not %q", c.Intermediate.Subject.CommonName, strings.Join(permitted, ", "), subject)
}

// parseSigner reads a private key of any kind x509 knows (SEC 1,
// PKCS #8, PKCS #1): an organization's issuer need not be P-384.
func parseSigner(data []byte) (crypto.Signer, error) {
	key, err := parsePEMKey(data, true, "no private key in the PEM data")
	if err != nil {
		return nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("a %T cannot sign certificates", key)
	}
	return signer, nil
}

// EncodeSigner is a private key as PKCS #8 PEM.
func EncodeSigner(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// RootHash is the SHA-256 fingerprint of a root, as clients are
// configured with it (hex pairs separated by colons, upper case).
func RootHash(root *x509.Certificate) string {
	sum := sha256.Sum256(root.Raw)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

// ParseCertificates reads every certificate of PEM data, in order.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, cert)
	}
	if len(out) == 0 {
		return nil, errors.New("no certificate in the PEM data")
	}
	return out, nil
}

// VerifyChain checks an x5u chain (leaf first) as Remote Settings
// clients do: every certificate valid at now, the root's hash (when
// rootHash is not ""), each certificate signed by the next one, which
// may sign certificates, the root signs itself, the leaf is no
// authority, its name ends with subjectSuffix (a domain suffix starting
// with "."), and its extended key usage is code signing only. It returns
// the leaf.
func VerifyChain(certs []*x509.Certificate, rootHash, subjectSuffix string, now time.Time) (*x509.Certificate, error) {
	if len(certs) < 2 {
		return nil, errors.New("the chain has fewer than two certificates")
	}
	for _, c := range certs {
		if now.Before(c.NotBefore) {
			return nil, fmt.Errorf("certificate %q is not valid until %s", c.Subject.CommonName, c.NotBefore)
		}
		if now.After(c.NotAfter) {
			return nil, fmt.Errorf("certificate %q expired on %s", c.Subject.CommonName, c.NotAfter)
		}
	}
	root := certs[len(certs)-1]
	if rootHash != "" && !strings.EqualFold(RootHash(root), rootHash) {
		return nil, fmt.Errorf("the root's hash is %s, not %s", RootHash(root), rootHash)
	}
	if err := root.CheckSignatureFrom(root); err != nil {
		return nil, fmt.Errorf("the root %q is not self-signed: %w", root.Subject.CommonName, err)
	}
	for i := len(certs) - 1; i > 0; i-- {
		parent, child := certs[i], certs[i-1]
		if !parent.IsCA || parent.KeyUsage&x509.KeyUsageCertSign == 0 {
			return nil, fmt.Errorf("certificate %q cannot sign certificates", parent.Subject.CommonName)
		}
		if err := child.CheckSignatureFrom(parent); err != nil {
			return nil, fmt.Errorf("certificate %q is not signed by %q: %w", child.Subject.CommonName, parent.Subject.CommonName, err)
		}
	}
	leaf := certs[0]
	if leaf.IsCA {
		return nil, fmt.Errorf("the leaf %q is a certificate authority", leaf.Subject.CommonName)
	}
	// Its DNS names (what Firefox checks), else its common name.
	names := leaf.DNSNames
	if len(names) == 0 {
		names = []string{leaf.Subject.CommonName}
	}
	for _, n := range names {
		if !strings.HasSuffix(n, subjectSuffix) || !strings.HasPrefix(subjectSuffix, ".") {
			return nil, fmt.Errorf("the leaf's name %q does not end with %q", n, subjectSuffix)
		}
	}
	if len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageCodeSigning {
		return nil, errors.New("the leaf's extended key usage is not code signing only")
	}
	return leaf, nil
}

// FirefoxLocalRootHash is the hash of Autograph's development root
// (csroot1553186747), which Firefox compiles in as the one root it trusts
// for a Remote Settings server on localhost or 127.0.0.1.
const FirefoxLocalRootHash = "5E:36:F2:14:DE:82:3F:8B:29:96:89:23:5F:03:41:AC:AF:A0:75:AF:82:CB:4C:D4:30:7C:3D:B3:43:39:2A:FE"
