package openid

import "testing"

// Callbacks are trusted as Kinto trusts them: patterns with * in host,
// port and path, and nothing a browser would read another way.
func TestTrustedCallback(t *testing.T) {
	trusted := append(append([]string{}, defaultTrustedCallbacks...), "https://admin.example.com/v1/admin/*", "https://*.example.org/cb")
	for cb, want := range map[string]bool{
		"http://localhost:3000/#tokens=":               true,
		"http://127.0.0.1:8080/cb?x=1":                 true,
		"http://localhost/":                            true, // its default port 80 matches the pattern's *
		"https://admin.example.com/v1/admin/#auth/":    true,
		"https://admin.example.com/v1/other/":          false,
		"https://admin.example.com/v1/admin/../other/": false,
		"https://admin.example.com/v1/admin/%2e%2e/x":  false,
		"https://a.example.org/cb":                     true,
		"https://evil.com\\.example.org/cb":            false,
		"https://user@a.example.org/cb":                false,
		"https://a.example.org:444/cb":                 false,
		"javascript:alert(1)//localhost:3000/":         false,
		"http://localhost:3000/ x":                     false,
		"http://[::1]:3000/":                           false,
	} {
		if got := trustedCallback(cb, trusted); got != want {
			t.Errorf("%s: %v, want %v", cb, got, want)
		}
	}
}

// Any callback is judged without panicking.
func FuzzTrustedCallback(f *testing.F) {
	for _, seed := range []string{"http://localhost:3000/#t=", "https://[::1]:*/x", "http://a@b/", "http://[", "https://x:/", "http://h:1/%2e%2e/"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, cb string) {
		trustedCallback(cb, append(append([]string{}, defaultTrustedCallbacks...), cb, "https://*.example.org/*"))
	})
}
