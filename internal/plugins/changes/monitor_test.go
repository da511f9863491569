package changes

import (
	"testing"

	"kintogo/internal/config"
)

// The vectors asserted by kinto-changes and remote-settings (test_utils.py),
// plus the production example of the client specification.
func TestEntryIDVectors(t *testing.T) {
	tests := []struct{ host, bucket, collection, want string }{
		{"", "a", "b", "9527d115-6191-fa49-a530-8fbfc4997755"},
		{"https://localhost:443", "a", "b", "fa48a96d-1600-f561-8645-3395acb08a5a"},
		{"firefox.settings.services.mozilla.com", "blocklists", "plugins", "19e79f22-62cf-92e1-c12c-a3b4b9cf51be"},
		{"firefox.settings.services.mozilla.com", "blocklists", "addons", "b7f595f9-5fc5-d863-b5dd-e5425dcf427a"},
		{"127.0.0.1:8888", "main", "c1", "2dbcd92b-47ec-a73a-68aa-437dcc92762c"},
	}
	for _, tt := range tests {
		if got := EntryID(tt.host, tt.bucket, tt.collection); got != tt.want {
			t.Errorf("EntryID(%q, %q, %q) = %s, want %s", tt.host, tt.bucket, tt.collection, got, tt.want)
		}
	}
}

func TestMonitors(t *testing.T) {
	m := &Monitor{exact: map[string]bool{"/buckets/x/collections/cfr": true}, buckets: []string{"/buckets/main", "/buckets/other"},
		excluded: []string{"/buckets/main/collections/excluded", "/buckets/other"}}
	tests := map[string]bool{
		"/buckets/main/collections/a":          true,
		"/buckets/main-preview/collections/a":  false,
		"/buckets/x/collections/cfr":           true,
		"/buckets/x/collections/cfr-foo":       false, // exact, not a prefix (DESIGN.md difference 3)
		"/buckets/main/collections/a/records":  false,
		"/buckets/other/collections/something": false, // excluded bucket
		"/buckets/main/collections/excluded":   false,
		"/buckets/main/collections/excluded-2": true,
	}
	for uri, want := range tests {
		if got := m.monitors(uri); got != want {
			t.Errorf("monitors(%s) = %v, want %v", uri, got, want)
		}
	}
}

// "/buckets" in changes.resources monitors every collection of every
// bucket, but exclusions still apply.
func TestMonitorsEverything(t *testing.T) {
	s, err := config.FromMap(map[string]string{"changes.resources": "/buckets", "changes.excluded_collections": "/buckets/secret"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMonitor(s)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]bool{
		"/buckets/main/collections/a":         true,
		"/buckets/any-other/collections/b":    true,
		"/buckets/main/collections/a/records": false,
		"/buckets/main":                       false,
		"/buckets//collections/a":             false,
		"/buckets/secret/collections/a":       false,
	}
	for uri, want := range tests {
		if got := m.monitors(uri); got != want {
			t.Errorf("monitors(%s) = %v, want %v", uri, got, want)
		}
	}
	if !m.covers("anything") {
		t.Error("every bucket holds monitored collections")
	}
}
