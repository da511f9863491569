package config

import (
	"os"
	"path/filepath"
	"testing"
)

// Misspelled settings are reported with the name they were meant to be,
// from the INI file and from the environment; the names plugins compute
// are not.
func TestUnknownSettings(t *testing.T) {
	ini := filepath.Join(t.TempDir(), "kinto.ini")
	os.WriteFile(ini, []byte(`[app:main]
kinto.incldues = kinto_changes
kinto.strage_url = /tmp/x.db
kinto.signer.resources = /buckets/a -> /buckets/b
kinto.main.certs.record_cache_expires_seconds = 60
kinto.record_read_principals = system.Everyone
kinto.cache_backend = kinto.core.cache.memory
kinto.something_else_entirely = 1
mail.default_sender = kinto@example.com
`), 0o600)
	s, err := Load(ini, []string{"KINTO_STORAGE_BAKEND=postgresql", "KINTO_INCLUDES=kinto_changes", "KINTO_SIGNER_TO_REVIEW_ENABLED=true",
		"KINTO_INI=x", "KINTO_SOMETHING_ELSE_ENTIRELY=2", "HOME=/root", "KINTO_MAIL_HOST=smtp", "KINTO_SLACK_WEBHOOK_URL=https://hooks"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, u := range s.Unknown() {
		got[u.Name] = u.Suggestion
	}
	want := map[string]string{
		"kinto.incldues":                "kinto.includes",
		"kinto.strage_url":              "kinto.storage_url",
		"kinto.something_else_entirely": "",
		"KINTO_STORAGE_BAKEND":          "KINTO_STORAGE_BACKEND",
	}
	for name, suggestion := range want {
		if s, ok := got[name]; !ok || s != suggestion {
			t.Errorf("%s: reported %v, suggestion %q; want %q", name, ok, s, suggestion)
		}
	}
	if len(got) != len(want) {
		t.Errorf("reported %v, want exactly %v", got, want)
	}
	if c := s.Compatibility(); len(c) != 1 || c[0] != "cache_backend" {
		t.Errorf("compatibility settings %v", c)
	}
}
