package contentsig

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// Prefix is prepended to what is signed (Autograph's and Firefox's
// content-signature convention).
const Prefix = "Content-Signature:\x00"

// Signature is one signature of a payload, as Remote Settings stores it in
// a collection's `signatures` (and the first one in `signature`): the
// signature itself (raw r||s, base64url), the URL of its certificate
// chain (x5u), and what else the signer tells (mode, ref, public_key…).
type Signature map[string]any

// A Signer signs payloads: a local key or an Autograph server.
type Signer interface {
	// Sign signs Prefix + payload.
	Sign(ctx context.Context, payload []byte) ([]Signature, error)
}

// ECDSA is a local signer with a P-384 key (the reference's local_ecdsa
// backend), and the URL of its certificate chain ("" when it has none).
type ECDSA struct {
	Key *ecdsa.PrivateKey
	X5U string
}

// Sign signs Prefix + payload with SHA-384.
func (s *ECDSA) Sign(_ context.Context, payload []byte) ([]Signature, error) {
	sig, err := SignRaw(s.Key, payload)
	if err != nil {
		return nil, err
	}
	return []Signature{{"signature": sig, "x5u": s.X5U, "mode": "p384ecdsa"}}, nil
}

// SignRaw returns the base64url raw r||s signature of Prefix + payload,
// a new one at each call.
func SignRaw(key *ecdsa.PrivateKey, payload []byte) (string, error) {
	if key.Curve != elliptic.P384() {
		return "", errors.New("contentsig: the key is not a P-384 key")
	}
	// A random nonce (mixed with the key and the digest by crypto/ecdsa),
	// as Autograph signs: re-signing unchanged records gives new
	// signature bytes, which Remote Settings' tooling takes as the proof
	// that a collection was signed again. Concurrent signers never race
	// on it: a source is locked while it publishes.
	der, err := key.Sign(rand.Reader, digest(payload), crypto.SHA384)
	if err != nil {
		return "", err
	}
	var r, s big.Int
	in := cryptobyte.String(der)
	var inner cryptobyte.String
	if !in.ReadASN1(&inner, asn1.SEQUENCE) || !inner.ReadASN1Integer(&r) || !inner.ReadASN1Integer(&s) {
		return "", errors.New("contentsig: malformed signature")
	}
	raw := make([]byte, 96)
	r.FillBytes(raw[:48])
	s.FillBytes(raw[48:])
	return base64.URLEncoding.EncodeToString(raw), nil
}

// ErrBadSignature is returned by Verify for a signature that does not
// match.
var ErrBadSignature = errors.New("bad signature")

// Verify checks a base64url raw r||s signature of Prefix + payload.
func Verify(pub *ecdsa.PublicKey, payload []byte, signature string) error {
	raw, err := decodeBase64URL(signature)
	if err != nil || len(raw) != 96 {
		return fmt.Errorf("%w: not a base64url P-384 signature", ErrBadSignature)
	}
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1BigInt(new(big.Int).SetBytes(raw[:48]))
		b.AddASN1BigInt(new(big.Int).SetBytes(raw[48:]))
	})
	der, err := b.Bytes()
	if err != nil {
		return err
	}
	if !ecdsa.VerifyASN1(pub, digest(payload), der) {
		return ErrBadSignature
	}
	return nil
}

func digest(payload []byte) []byte {
	h := sha512.New384()
	h.Write([]byte(Prefix))
	h.Write(payload)
	return h.Sum(nil)
}

// decodeBase64URL accepts padded and unpadded base64url.
func decodeBase64URL(s string) ([]byte, error) {
	if raw, err := base64.URLEncoding.DecodeString(s); err == nil {
		return raw, nil
	}
	return base64.RawURLEncoding.DecodeString(s)
}

// GenerateKey makes a new P-384 key.
func GenerateKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
}

// EncodePrivateKey returns the key as an "EC PRIVATE KEY" PEM block (SEC 1,
// what the reference's generate_keypair writes and reads).
func EncodePrivateKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

// EncodePublicKey returns the public key as a "PUBLIC KEY" PEM block.
func EncodePublicKey(pub *ecdsa.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// LoadPrivateKey reads a P-384 private key from a PEM file (SEC 1 or
// PKCS #8).
func LoadPrivateKey(path string) (*ecdsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParsePrivateKey(data)
}

// ParsePrivateKey reads a P-384 private key from PEM (SEC 1 or PKCS #8).
func ParsePrivateKey(data []byte) (*ecdsa.PrivateKey, error) {
	key, err := parsePEMKey(data, false, "no EC private key in the PEM data")
	if err != nil {
		return nil, err
	}
	k, ok := key.(*ecdsa.PrivateKey)
	if !ok || k.Curve != elliptic.P384() {
		return nil, errors.New("the private key is not an ECDSA P-384 key")
	}
	return k, nil
}

// parsePEMKey reads the first private key of PEM data: SEC 1 or PKCS #8,
// and PKCS #1 too when withRSA; missing is the error when there is none.
func parsePEMKey(data []byte, withRSA bool, missing string) (any, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New(missing)
		}
		switch {
		case block.Type == "EC PRIVATE KEY":
			return x509.ParseECPrivateKey(block.Bytes)
		case block.Type == "PRIVATE KEY":
			return x509.ParsePKCS8PrivateKey(block.Bytes)
		case block.Type == "RSA PRIVATE KEY" && withRSA:
			return x509.ParsePKCS1PrivateKey(block.Bytes)
		}
	}
}

// ParsePublicKey reads an ECDSA P-384 public key from PEM: a PUBLIC KEY
// block, or the first certificate of a chain.
func ParsePublicKey(data []byte) (*ecdsa.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM data")
	}
	var pub any
	switch block.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		pub = k
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		pub = cert.PublicKey
	default:
		return nil, fmt.Errorf("unexpected PEM block %q", block.Type)
	}
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok || k.Curve != elliptic.P384() {
		return nil, errors.New("the public key is not an ECDSA P-384 key")
	}
	return k, nil
}
