package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kintogo/internal/app"
	"kintogo/internal/config"
	"kintogo/internal/httpapi"
	"kintogo/internal/storage/memory"
)

// A configuration shaped as Remote Settings' config/local.ini (its
// kinto.includes, every plugin of its deployments, a comment line between
// the lines of signer.resources, the autograph signer) starts unchanged.
func TestRemoteSettingsConfiguration(t *testing.T) {
	ini := `[app:main]
use = egg:kinto
kinto.project_name = Remote Settings LOCAL
kinto.includes = kinto.plugins.admin
                 kinto.plugins.accounts
                 kinto.plugins.history
                 kinto.plugins.flush
                 kinto.plugins.prometheus
                 kinto_emailer
                 kinto_slack
                 kinto_attachment
                 kinto_remote_settings
kinto.storage_backend = kinto.core.storage.memory
multiauth.policies = account
multiauth.policy.account.use = kinto.plugins.accounts.authentication.AccountsAuthenticationPolicy
kinto.userid_hmac_secret = 284461170acd78f0
kinto.account_create_principals = system.Everyone
kinto.signer.resources =
    /buckets/main-workspace -> /buckets/main-preview -> /buckets/main
    /buckets/staging        -> /buckets/blocklists-preview -> /buckets/blocklists
    # blocklists/addons-bloomfilters doesn't need review (bug 1623984).
    /buckets/staging/collections/addons-bloomfilters -> /buckets/blocklists/collections/addons-bloomfilters
kinto.signer.to_review_enabled = true
kinto.signer.signer_backend = kinto_remote_settings.signer.backends.autograph
kinto.signer.autograph.server_url = http://autograph:8000
kinto.signer.autograph.hawk_id = kintodev
kinto.signer.autograph.hawk_secret = 3isey64n25fim18chqgewirm6z2gwva1mas0eu71e9jtisdwv6bd
kinto.attachment.base_path = ` + t.TempDir() + `
mail.default_sender = kinto@restmail.net
mail.debug_mailer = true
`
	path := filepath.Join(t.TempDir(), "local.ini")
	os.WriteFile(path, []byte(ini), 0o644)
	settings, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := app.NewServer(settings, memory.New(), httpapi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The background work (the bundles, in the attachments' folder) ends
	// before the test's folders are removed.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	ts := httptest.NewServer(srv)
	defer ts.Close()
	resp, err := http.Get(ts.URL + "/v1/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var hello struct {
		Capabilities map[string]struct {
			Resources []map[string]any `json:"resources"`
		} `json:"capabilities"`
	}
	json.NewDecoder(resp.Body).Decode(&hello)
	var caps []string
	for name := range hello.Capabilities {
		caps = append(caps, name)
	}
	for _, want := range []string{"admin", "accounts", "history", "flush_endpoint", "prometheus", "emailer", "slack", "attachments", "signer", "changes"} {
		if _, ok := hello.Capabilities[want]; !ok {
			t.Errorf("capability %s missing (%s)", want, strings.Join(caps, ", "))
		}
	}
	if n := len(hello.Capabilities["signer"].Resources); n != 3 {
		t.Errorf("signer resources: %d, want 3 (the comment line is no resource)", n)
	}
}
