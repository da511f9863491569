package contentsig

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"os"
	"testing"
)

// vector is a signature made elsewhere: the records and timestamp it
// covers, the payload signed, the key that verifies it.
type vector struct {
	Name      string
	PublicKey string `json:"public_key"`
	Records   []map[string]any
	Timestamp int64
	Payload   string
	Signature Signature
}

// check verifies a vector with this package's serializer and verifier,
// and returns the payload and key.
func (vec vector) check(t *testing.T) ([]byte, *ecdsa.PublicKey) {
	t.Helper()
	payload, err := Collection(vec.Records, vec.Timestamp)
	if err != nil || string(payload) != vec.Payload {
		t.Fatalf("%s: payload\n got %s (%v)\nwant %s", vec.Name, payload, err, vec.Payload)
	}
	pub, err := ParsePublicKey([]byte(vec.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := vec.Signature["signature"].(string)
	if err := Verify(pub, payload, sig); err != nil {
		t.Fatalf("%s: the signature does not verify: %v", vec.Name, err)
	}
	return payload, pub
}

func decodeVector(t *testing.T, raw []byte) vector {
	var vec vector
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&vec); err != nil {
		t.Fatal(err)
	}
	return vec
}

// A signature made by the reference's local_ecdsa signer (Python ecdsa)
// over the records it serialized verifies here, and our serialization of
// those records is the payload it signed.
func TestVerifiesReferenceSignature(t *testing.T) {
	raw, err := os.ReadFile("testdata/reference-signature.json")
	if err != nil {
		t.Fatal(err)
	}
	vec := decodeVector(t, raw)
	payload, pub := vec.check(t)
	if err := Verify(pub, append(payload, ' '), vec.Signature["signature"].(string)); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("a changed payload verified: %v", err)
	}
	if vec.Signature["mode"] != "p384ecdsa" {
		t.Fatalf("mode %v", vec.Signature["mode"])
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pemKey, err := EncodePrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParsePrivateKey(pemKey)
	if err != nil || !back.Equal(key) {
		t.Fatalf("PEM round trip: %v", err)
	}
	s := &ECDSA{Key: back, X5U: "https://example.com/chain.pem"}
	sigs, err := s.Sign(context.Background(), []byte(`{"data":[],"last_modified":"1"}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(sigs) != 1 || sigs[0]["x5u"] != "https://example.com/chain.pem" {
		t.Fatalf("signatures %v", sigs)
	}
	sig := sigs[0]["signature"].(string)
	if len(sig) != 128 {
		t.Fatalf("signature %q: want 96 bytes in base64url", sig)
	}
	if err := Verify(&key.PublicKey, []byte(`{"data":[],"last_modified":"1"}`), sig); err != nil {
		t.Fatal(err)
	}
	if err := Verify(&key.PublicKey, []byte(`{"data":[],"last_modified":"2"}`), sig); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("another payload verified: %v", err)
	}
	for _, bad := range []string{"", "not base64!", sig[:100]} {
		if err := Verify(&key.PublicKey, []byte("x"), bad); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("%q: %v", bad, err)
		}
	}
}

// Each signature is a new one, as Autograph's: two signatures of the same
// payload differ and both verify.
func TestSignaturesAreFresh(t *testing.T) {
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	a, _ := SignRaw(key, []byte("payload"))
	b, _ := SignRaw(key, []byte("payload"))
	if a == b {
		t.Fatal("the same payload signed twice gave the same signature")
	}
	for _, sig := range []string{a, b} {
		if err := Verify(&key.PublicKey, []byte("payload"), sig); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSignatureVectors checks signatures made elsewhere with this
// package's serializer and verifier: one the reference server made
// (testdata/reference-server-signatures.jsonl, written by
// clients/signer/interop.py against it), and those of
// KINTOGO_SIGNATURE_VECTORS (scripts/signer-interop.sh's fresh ones).
func TestSignatureVectors(t *testing.T) {
	name := os.Getenv("KINTOGO_SIGNATURE_VECTORS")
	if name == "" {
		name = "testdata/reference-server-signatures.jsonl"
	}
	raw, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		vec := decodeVector(t, line)
		vec.check(t)
		t.Logf("%s: verified", vec.Name)
		n++
	}
	if n == 0 {
		t.Fatal("no vector")
	}
}
