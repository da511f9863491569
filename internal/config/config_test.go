package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestINIAndEnvironment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kinto.ini")
	ini := `[server:main]
use = egg:waitress#main
port = 9999

[app:main]
use = egg:kinto
kinto.http_host = from-ini
kinto.changes.resources = /buckets/main
    /buckets/blocklists
batch_max_requests = 10
kinto.main.certs.record_cache_expires_seconds = 60
multiauth.policies = basicauth
`
	if err := os.WriteFile(path, []byte(ini), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Load(path, []string{"KINTO_HTTP_HOST=from-env", "BATCH_MAX_REQUESTS=12", "KINTO_UNKNOWN_THING=1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.String("http_host"); got != "from-env" {
		t.Errorf("http_host = %q: KINTO_ env must override the INI", got)
	}
	if got := s.Int("batch_max_requests"); got != 12 {
		t.Errorf("batch_max_requests = %d: plain NAME env must override too", got)
	}
	if got := s.List("changes.resources"); len(got) != 2 || got[1] != "/buckets/blocklists" {
		t.Errorf("multi-line list: %v", got)
	}
	if got, ok := s.IntOK("main.certs.record_cache_expires_seconds"); !ok || got != 60 {
		t.Errorf("undeclared INI setting: %d %v", got, ok)
	}
	if _, ok := s.Lookup("unknown_thing"); ok {
		t.Error("environment variables only override settings that exist")
	}
	if s.String("server.port") != "9999" || s.String("storage_backend") != "sqlite" {
		t.Errorf("server port %q, backend %q", s.String("server.port"), s.String("storage_backend"))
	}
	if !s.Has("multiauth.policies", "basicauth") {
		t.Error("multiauth keys keep their name")
	}
}

func TestValidation(t *testing.T) {
	if _, err := FromMap(map[string]string{"kinto.batch_max_requests": "lots"}); err == nil {
		t.Error("a non-integer integer setting must be refused")
	}
	if _, err := FromMap(map[string]string{"readonly": "maybe"}); err == nil {
		t.Error("a non-boolean boolean setting must be refused")
	}
	s, err := FromMap(map[string]string{"readonly": "yes", "kinto.paginate_by": `"5"`})
	if err != nil || !s.Bool("readonly") || s.Int("paginate_by") != 5 {
		t.Errorf("asbool / quoted values: %v %v %d", err, s.Bool("readonly"), s.Int("paginate_by"))
	}
	path := filepath.Join(t.TempDir(), "dup.ini")
	os.WriteFile(path, []byte("[app:main]\nkinto.http_host = a\nhttp_host = b\n"), 0o600)
	if _, err := Load(path, nil); err == nil {
		t.Error("the same setting twice with different values must be refused")
	}
}

func TestEnvName(t *testing.T) {
	for name, want := range map[string]string{
		"storage_backend":             "KINTO_STORAGE_BACKEND",
		"changes.resources":           "KINTO_CHANGES_RESOURCES",
		"multiauth.policies":          "KINTO_MULTIAUTH_POLICIES",
		"user-data_delete_principals": "KINTO_USER_DATA_DELETE_PRINCIPALS",
	} {
		if got := EnvName(name); got != want {
			t.Errorf("EnvName(%s) = %s, want %s", name, got, want)
		}
	}
}

// The typed configuration holds the settings' values, defaults and
// overrides alike.
func TestFromSettings(t *testing.T) {
	s, err := FromMap(map[string]string{"kinto.batch_max_requests": "7", "push.max_wait_seconds": "5", "readonly": "true", "cors_origins": "a b"})
	if err != nil {
		t.Fatal(err)
	}
	c := FromSettings(s)
	if c.Batch.MaxRequests != 7 || c.Push.MaxWait != 5*time.Second || !c.HTTP.Readonly || len(c.HTTP.CORSOrigins) != 2 {
		t.Errorf("overrides: %+v", c)
	}
	if c.HTTP.MaxBodyBytes != 1048576 || c.Push.MaxStreams != 1000 || c.Objects.MaxFetchSize != 10000 || !c.Objects.ExplicitPermissions {
		t.Errorf("defaults: %+v", c)
	}
}
