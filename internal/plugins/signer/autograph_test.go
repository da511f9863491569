package signer_test

import (
	"crypto/ecdsa"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"kintogo/internal/contentsig"
	"kintogo/internal/contentsig/autographtest"
	"kintogo/internal/storage/storetest"
)

// The Autograph backend, against kintogo's Autograph-compatible test
// server (Hawk checked): signatures made there verify with its chain, and
// a collection's own Hawk id (signer.{bid}.{cid}.autograph.hawk_id)
// overrides the server's, as in the reference's PerBucketTest.
func TestAutographBackend(t *testing.T) {
	ch, err := contentsig.NewChain(contentsig.DefaultSubject, time.Now(), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ag := &autographtest.Server{Key: ch.LeafKey, Chain: ch.PEM(),
		Credentials: map[string]string{"mocked-in-tests": "secret-1", "for-specific": "secret-2"}}
	srv := httptest.NewServer(ag)
	t.Cleanup(srv.Close)
	ag.X5U = srv.URL + "/x5u/chain.pem"
	settings := map[string]string{
		"signer.resources": "/buckets/stage -> /buckets/preview -> /buckets/prod", "signer.to_review_enabled": "true",
		"signer.stage.specific.to_review_enabled": "false",
		"signer.signer_backend":                   "kinto_remote_settings.signer.backends.autograph",
		"signer.autograph.server_url":             srv.URL, "signer.autograph.hawk_id": "mocked-in-tests",
		"signer.autograph.hawk_secret": "secret-1", "signer.stage.specific.autograph.hawk_id": "for-specific",
		"signer.stage.specific.autograph.hawk_secret": "secret-2",
	}
	f := newFlow(t, storetest.Memory, settings)
	f.call("PUT", "/buckets/stage", tarte, `{"permissions": {"write": ["system.Authenticated"]}}`, 201)
	f.call("PUT", "/buckets/stage/groups/specific-reviewers", tarte, `{"data": {"members": ["`+f.users[tarte]+`"]}}`, 201)
	f.call("PUT", "/buckets/stage/collections/cid", tarte, "", 201)
	f.call("POST", "/buckets/stage/collections/cid/records", tarte, `{"data": {"title": "hello"}}`, 201)
	f.call("PUT", "/buckets/stage/groups/cid-reviewers", tarte, `{"data": {"members": ["`+f.users[sam]+`"]}}`, 200)
	f.status("/buckets/stage/collections/cid", tarte, "to-review", 200)
	f.status("/buckets/stage/collections/cid", sam, "to-sign", 200)
	if ag.Requests["mocked-in-tests"] == 0 {
		t.Fatalf("the server's Hawk id signed nothing: %v", ag.Requests)
	}
	before := ag.Requests["for-specific"]
	f.call("PUT", "/buckets/stage/collections/specific", tarte, `{"data": {"status": "to-sign"}}`, 201)
	if ag.Requests["for-specific"] == before {
		t.Fatalf("the collection's own Hawk id was not used: %v", ag.Requests)
	}
	// The signature names the test server's chain, which verifies, and
	// signs the records.
	a := f.call("GET", "/buckets/prod/collections/cid/changeset?_expected=0", "", "", 200)
	sig := a.body["metadata"].(map[string]any)["signature"].(map[string]any)
	if sig["x5u"] != ag.X5U || sig["ref"] == nil || sig["mode"] != "p384ecdsa" {
		t.Fatalf("signature %v", sig)
	}
	certs, err := contentsig.ParseCertificates(ch.PEM())
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := contentsig.VerifyChain(certs, contentsig.RootHash(ch.Root()), ".content-signature.mozilla.org", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var records []map[string]any
	for _, r := range a.body["changes"].([]any) {
		records = append(records, r.(map[string]any))
	}
	ts, _ := a.body["timestamp"].(interface{ Int64() (int64, error) }).Int64()
	payload, _ := contentsig.Collection(records, ts)
	if err := contentsig.Verify(leaf.PublicKey.(*ecdsa.PublicKey), payload, sig["signature"].(string)); err != nil {
		t.Fatal(err)
	}

	// A wrong Hawk secret: the signer fails, the write fails with 503
	// and changes nothing.
	ag.Credentials["mocked-in-tests"] = "changed"
	a = f.status("/buckets/stage/collections/cid", sam, "to-resign", 503)
	if !strings.Contains(a.body["message"].(string), "signature service") {
		t.Fatalf("%v", a.body)
	}
	f.wantStatus("/buckets/stage/collections/cid", "signed")
}
