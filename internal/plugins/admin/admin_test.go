package admin_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kintogo/internal/app/apptest"
	"kintogo/internal/httpapi"
	"kintogo/internal/storage/memory"
)

func serve(t *testing.T, settings map[string]string) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(apptest.Server(t, memory.New(), httpapi.Options{}, settings))
	t.Cleanup(ts.Close)
	return ts
}

type answer struct {
	code   int
	header http.Header
	body   string
}

func get(t *testing.T, method, url string, header ...string) answer {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	// Redirects are answers to check, not to follow.
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(body)}
}

func adminCapability(t *testing.T, ts *httptest.Server) map[string]any {
	var root struct {
		Capabilities map[string]map[string]any `json:"capabilities"`
	}
	if err := json.Unmarshal([]byte(get(t, "GET", ts.URL+"/v1/").body), &root); err != nil {
		t.Fatal(err)
	}
	return root.Capabilities["admin"]
}

// Without a build, the admin page says how to install one, and the
// capability is Kinto's; once installed (no restart) the build is served.
func TestAdminUI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "build")
	ts := serve(t, map[string]string{"includes": "kinto.plugins.admin", "admin_assets_path": dir})

	a := get(t, "GET", ts.URL+"/v1/admin/")
	if a.code != 200 || !strings.Contains(a.body, "./scripts/admin.sh") || !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") {
		t.Fatalf("admin page without a build: %d %s", a.code, a.body)
	}
	capability := adminCapability(t, ts)
	if capability["version"] != "6.2.0" || capability["description"] != "Serves the admin console." || capability["url"] != "https://github.com/Kinto/kinto-admin/" {
		t.Errorf("admin capability: %v", capability)
	}
	if get(t, "GET", ts.URL+"/v1/permissions").code != 200 {
		t.Error("the admin plugin serves the permissions endpoint")
	}

	os.MkdirAll(filepath.Join(dir, "assets"), 0o755)
	os.WriteFile(filepath.Join(dir, "assets", "index-abc.js"), []byte("console.log('kinto-admin');\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "VERSION"), []byte("9.9.9\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "index.html"), []byte(`<script src="/v1/admin/assets/index-abc.js"></script>`), 0o644)
	os.WriteFile(filepath.Join(filepath.Dir(dir), "secret"), []byte("no"), 0o644) // beside the build

	a = get(t, "GET", ts.URL+"/v1/admin/")
	if a.code != 200 || !strings.Contains(a.body, "index-abc.js") || a.header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("admin page once installed: %d %v %s", a.code, a.header, a.body)
	}
	if csp := a.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("admin page CSP: %q", csp)
	}
	a = get(t, "GET", ts.URL+"/v1/admin/assets/index-abc.js")
	if a.code != 200 || !strings.Contains(a.header.Get("Content-Type"), "javascript") || !strings.Contains(a.header.Get("Cache-Control"), "immutable") {
		t.Errorf("asset: %d %v", a.code, a.header)
	}
	if a := get(t, "GET", ts.URL+"/v1/admin/assets/index-abc.js", "Range", "bytes=0-6"); a.code != 206 || a.body != "console" {
		t.Errorf("range of an asset: %d %q", a.code, a.body)
	}
	if a := get(t, "HEAD", ts.URL+"/v1/admin/assets/index-abc.js"); a.code != 200 || a.body != "" {
		t.Errorf("HEAD of an asset: %d %q", a.code, a.body)
	}
	if a := get(t, "GET", ts.URL+"/v1/admin"); a.code != 307 || !strings.HasSuffix(a.header.Get("Location"), "/v1/admin/") {
		t.Errorf("/v1/admin: %d %v", a.code, a.header)
	}
	// Nothing but the build's files: no listing, no way out.
	for _, path := range []string{"/v1/admin/assets/", "/v1/admin/assets", "/v1/admin/missing.js", "/v1/admin/%2e%2e/secret", "/v1/admin/assets/..%2f..%2fVERSION", "/v1/admin//etc/passwd"} {
		if a := get(t, "GET", ts.URL+path); a.code != 404 || !strings.Contains(a.body, `"errno":111`) {
			t.Errorf("%s: %d %s", path, a.code, a.body)
		}
	}
	if a := get(t, "POST", ts.URL+"/v1/admin/"); a.code != 405 {
		t.Errorf("POST: %d", a.code)
	}

	// A server started with the build advertises its version.
	if v := adminCapability(t, serve(t, map[string]string{"includes": "kinto.plugins.admin", "admin_assets_path": dir}))["version"]; v != "9.9.9" {
		t.Errorf("installed version: %v", v)
	}
}

// The live view of the changes feed: the page and its script, public, under
// a policy that allows only the page's own files.
func TestLiveView(t *testing.T) {
	ts := serve(t, map[string]string{"includes": "kinto_changes", "changes.resources": "/buckets"})
	a := get(t, "GET", ts.URL+"/v1/changes/")
	if a.code != 200 || !strings.Contains(a.body, `<script src="live.js"`) || a.header.Get("Content-Security-Policy") != "default-src 'self'" {
		t.Fatalf("live view: %d %v %s", a.code, a.header, a.body)
	}
	if a := get(t, "GET", ts.URL+"/v1/changes/live.js"); a.code != 200 || !strings.Contains(a.body, "EventSource") {
		t.Errorf("live.js: %d", a.code)
	}
	if a := get(t, "GET", ts.URL+"/v1/changes"); a.code != 307 {
		t.Errorf("/v1/changes: %d", a.code)
	}
}
