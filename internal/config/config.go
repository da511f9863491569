// Package config reads kintogo's settings the way Kinto does: `kinto.*` keys
// in the `[app:main]` section of an INI file, overridden by `KINTO_*`
// environment variables, over the defaults of one declared table.
//
// Names are stored without the `kinto.` prefix (`kinto.http_host` and
// `http_host` are the same setting); `multiauth.*` keys keep their name.
// Settings that are not declared (for example
// `main.certs.record_cache_expires_seconds`) are kept as strings too, so
// features can look them up by computed name.
package config

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/ini.v1"
)

// Type is the type of a declared setting's value.
type Type int

// Setting value types.
const (
	String Type = iota
	Int
	Bool
	List // whitespace- or newline-separated words
)

// Setting declares one setting: its name (without `kinto.`), type, default,
// whether it is secret (never logged or shown) and what it does.
type Setting struct {
	Name    string
	Type    Type
	Default string
	Secret  bool
	Doc     string
}

// Table is every setting kintogo knows, with Kinto's defaults except where
// kintogo differs on purpose (storage_backend defaults to SQLite).
var Table = []Setting{
	{Name: "project_name", Default: "kinto", Doc: "name shown in GET /v1/"},
	{Name: "project_version", Default: "", Doc: "version shown in GET /v1/ (default: kintogo's)"},
	{Name: "project_docs", Default: "https://kinto.readthedocs.io/", Doc: "documentation URL shown in GET /v1/"},
	{Name: "http_host", Doc: "host of absolute URLs and of monitor entries (host and id)"},
	{Name: "http_scheme", Doc: "scheme of absolute URLs"},
	{Name: "includes", Type: List, Doc: "plugins: kinto.plugins.flush, kinto_changes, kinto_remote_settings.changes, ..."},
	{Name: "readonly", Type: Bool, Default: "false", Doc: "refuse every write with 405"},
	{Name: "eos", Doc: "end of service: a date (2027-06-30, or with a time); before it every answer has a soft-eol Alert header, from it on every request gets 410 (errno 202) with a hard-eol one"},
	{Name: "eos_message", Doc: "the message of the end-of-service Alert"},
	{Name: "eos_url", Doc: "the url of the end-of-service Alert (default: project_docs)"},
	{Name: "batch_max_requests", Type: Int, Default: "25", Doc: "maximum sub-requests of POST /batch"},
	{Name: "batch_max_response_bytes", Type: Int, Default: "33554432", Doc: "largest total of the answers of one POST /batch, held until it commits (413 beyond; 0: no limit)"},
	{Name: "paginate_by", Type: Int, Default: "0", Doc: "default and maximum page size (0: none)"},
	{Name: "storage_max_fetch_size", Type: Int, Default: "10000", Doc: "hard cap of objects in one list response"},
	{Name: "pagination_token_validity_seconds", Type: Int, Default: "600", Doc: "lifetime of the single-use _token of a paginated plural DELETE"},
	{Name: "explicit_permissions", Type: Bool, Default: "true", Doc: "add the writer to the write permission of what it writes"},
	{Name: "experimental_collection_schema_validation", Type: Bool, Default: "false", Doc: "validate records, collections and groups against the JSON schemas of their collection or bucket"},
	{Name: "experimental_permissions_endpoint", Type: Bool, Default: "false", Doc: "serve GET /v1/permissions (also on with kinto.plugins.admin)"},
	{Name: "admin_assets_path", Doc: "folder of the admin UI's build (kinto.plugins.admin; default: .admin in the working directory, which scripts/admin.sh fills)"},
	{Name: "history.exclude_resources", Type: List, Doc: "bucket, collection or record URIs the history plugin does not track"},
	{Name: "bucket_create_principals", Type: List, Default: "system.Authenticated", Doc: "who may create buckets"},
	{Name: "account_create_principals", Type: List, Doc: "who may create accounts (accounts plugin), e.g. system.Everyone"},
	{Name: "account_write_principals", Type: List, Doc: "account administrators"},
	{Name: "account_read_principals", Type: List, Doc: "who may read every account"},
	{Name: "account_cache_ttl_seconds", Type: Int, Default: "30", Doc: "how long a verified account password is remembered"},
	{Name: "account_check_concurrency", Type: Int, Default: "0", Doc: "password checks (bcrypt, tens of milliseconds of CPU each) running at once on a node; others wait (0: half the CPUs, at least one)"},
	{Name: "account_failures_per_minute", Type: Int, Default: "20", Doc: "failed password checks of one account a minute; beyond, its unremembered passwords are refused without a check until the minute ends (0: no bound)"},
	{Name: "userid_hmac_secret", Secret: true, Doc: "HMAC key of basicauth user ids"},
	{Name: "default_bucket_hmac_secret", Secret: true, Doc: "HMAC key of personal bucket ids (default bucket plugin; default: the empty string, as in Kinto)"},
	{Name: "multiauth.policies", Type: List, Doc: "authentication policies, in order (basicauth)"},
	{Name: "storage_backend", Default: "sqlite", Doc: "sqlite, memory (kinto.core.storage.memory)"},
	{Name: "storage_url", Default: "kintogo.db", Secret: true, Doc: "SQLite file path (or PostgreSQL URL)"},
	{Name: "storage_pool_size", Type: Int, Default: "25", Doc: "PostgreSQL connections of a node (plus storage_max_overflow: the most it opens; pool_max_conns in storage_url overrides both)"},
	{Name: "storage_max_overflow", Type: Int, Default: "5", Doc: "PostgreSQL connections a node may open beyond storage_pool_size under load"},
	{Name: "change_log_retention_seconds", Type: Int, Default: "3600", Doc: "how long the change log keeps a commit: a node further behind (down, or a standby lagging) starts its in-memory views over, and event streams resume from an older position with a full resynchronisation"},
	{Name: "replication_max_lag_seconds", Type: Int, Default: "60", Doc: "on a node reading a streaming standby: /__heartbeat__ fails when the standby lags further behind its primary (0: never)"},
	{Name: "storage_snapshot_max_bytes", Type: Int, Default: "67108864", Doc: "memory for the decoded objects of collections whose lists filter or sort on data fields the database cannot compare exactly, kept per collection version (0: none)"},
	{Name: "permission_backend", Doc: "accepted for compatibility; permissions live in the storage backend"},
	{Name: "permission_url", Secret: true, Doc: "accepted for compatibility"},
	{Name: "cache_backend", Doc: "accepted for compatibility"},
	{Name: "cache_url", Secret: true, Doc: "accepted for compatibility"},
	{Name: "response_cache_max_bytes", Type: Int, Default: "67108864", Doc: "memory the cached answers (changes feed, records lists) may hold (answers are dropped, oldest first, beyond; an answer larger than this is not cached)"},
	{Name: "heartbeat_timeout_seconds", Type: Int, Default: "10", Doc: "time /__heartbeat__ gives the storage to answer a write (a read on a read-only node)"},
	{Name: "retry_after_seconds", Type: Int, Default: "3", Doc: "Retry-After on 409 and 503"},
	{Name: "backoff", Type: Int, Default: "0", Doc: "Backoff header on every response (0: none)"},
	{Name: "cors_origins", Type: List, Default: "*", Doc: "allowed CORS origins"},
	{Name: "cors_max_age_seconds", Type: Int, Default: "3600", Doc: "Access-Control-Max-Age of pre-flights"},
	{Name: "trailing_slash_redirect_enabled", Type: Bool, Default: "true", Doc: "redirect /path/ to /path"},
	{Name: "trailing_slash_redirect_ttl_seconds", Type: Int, Default: "3600", Doc: "cache TTL of those redirects (-1: none)"},
	{Name: "version_prefix_redirect_enabled", Type: Bool, Default: "true", Doc: "redirect unprefixed paths to /v1"},
	{Name: "version_prefix_redirect_ttl_seconds", Type: Int, Default: "-1", Doc: "cache TTL of those redirects (-1: none)"},
	{Name: "version_json_path", Default: "version.json", Doc: "file served by /__version__ (built-in answer when absent)"},
	{Name: "max_body_bytes", Type: Int, Default: "1048576", Doc: "largest request body accepted, and largest object a write may store (kintogo; Kinto has none)"},
	{Name: "body_read_timeout_seconds", Type: Int, Default: "30", Doc: "time a client has to send a request body once its headers arrived (0: no limit)"},
	{Name: "changes.resources", Type: List, Doc: "bucket or collection URIs monitored by the changes feed"},
	{Name: "changes.excluded_collections", Type: List, Doc: "bucket or collection URIs left out of the changes feed"},
	{Name: "changes.http_host", Doc: "host of monitor entries (default: http_host)"},
	{Name: "changes.since_max_age_days", Type: Int, Default: "21", Doc: "a monitor _since older than this is redirected without it (negative: never)"},
	{Name: "changes.since_max_age_redirect_ttl_seconds", Type: Int, Default: "86400", Doc: "cache TTL of those redirects and of stale-_expected 204s (-1: none)"},
	{Name: "push.max_wait_seconds", Type: Int, Default: "60", Doc: "longest _wait of a long-poll"},
	{Name: "push.max_streams", Type: Int, Default: "1000", Doc: "event streams open at once on a node (503 beyond)"},
	{Name: "max_held_requests", Type: Int, Default: "10000", Doc: "requests a node holds open at once: long-polls waiting, event streams, uploads being received (503 with Retry-After beyond); kept below half the process's file-descriptor limit"},
	{Name: "push.heartbeat_seconds", Type: Int, Default: "15", Doc: "heartbeat comments of idle event streams"},
	{Name: "push.max_stream_seconds", Type: Int, Default: "3600", Doc: "lifetime of an event stream (clients reconnect)"},
	{Name: "push.write_timeout_seconds", Type: Int, Default: "10", Doc: "a stream whose client does not take an event in this time is closed"},
	{Name: "push_broadcast_min_debounce_interval_seconds", Type: Int, Default: "300", Doc: "/__broadcasts__ publishes a new version at most this often"},
	{Name: "changes.empty_200_on_not_modified", Type: Bool, Default: "false", Doc: "answer 200 with an empty list instead of 304 on the monitor"},
	{Name: "log_format", Default: "text", Doc: "text (slog's text lines) or json (Kinto's mozlog JSON lines, with a request.summary line per request); an INI whose [handler_console] uses Kinto's json formatter selects json unless this is set"},
	{Name: "prometheus_prefix", Doc: "prefix of the metric names of kinto.plugins.prometheus, cleaned as Kinto does (kinto_ from the default project_name; default: project_name)"},
	{Name: "prometheus_disabled_metrics", Type: List, Doc: "metrics kinto.plugins.prometheus does not record (names with or without the prefix)"},
	{Name: "prometheus_histogram_buckets", Type: List, Default: "0.01 0.05 0.1 0.5 1.0 3.0 6.0 Inf", Doc: "buckets of the request duration histogram, in seconds"},
	{Name: "prometheus_created_metrics_enabled", Type: Bool, Default: "true", Doc: "expose the creation time of counters, histograms and summaries (_created samples) to scrapers that ask for OpenMetrics"},
	{Name: "metrics_matchdict_fields", Type: List, Default: "bucket_id collection_id group_id record_id", Doc: "route values added as labels to the request metrics (empty on answers >= 400)"},
}

// Start is kintogo's zero-configuration start: the settings that replace
// Kinto's defaults when no INI file is given, so that a bare `kintogo
// start` serves something useful at once — the changes feed of every
// bucket, accounts (the only authentication: no anonymous writes, no
// basic auth), history, the admin UI and the permissions endpoint, with
// account:admin administering accounts. Environment variables still
// override each of them; an INI file replaces them all, so that Kinto's
// configurations mean exactly what they mean in Kinto.
var Start = map[string]string{
	"includes":                 "kinto.plugins.admin kinto.plugins.accounts kinto.plugins.history kinto_changes",
	"multiauth.policies":       "account",
	"account_write_principals": "account:admin",
	"changes.resources":        "/buckets",
}

var declared = func() map[string]*Setting {
	m := make(map[string]*Setting, len(Table))
	for i := range Table {
		m[Table[i].Name] = &Table[i]
	}
	return m
}()

// Settings is a loaded, validated set of settings. It is a value passed to
// whoever needs it, never a global.
type Settings struct {
	values map[string]string
	// env is the environment the settings were loaded with; given, the
	// names the INI file set.
	env   map[string]string
	given map[string]bool
	// Path is the INI file the settings came from ("" when none).
	Path string
	// ZeroConfig is true when no INI file was given: the Start settings
	// apply.
	ZeroConfig bool
}

// Normalize turns an INI or caller key into the stored name: the `kinto.`
// prefix is dropped.
func Normalize(key string) string {
	return strings.TrimPrefix(strings.TrimSpace(key), "kinto.")
}

// EnvName is the environment variable that overrides a setting:
// `KINTO_` + the name upper-cased with `.` and `-` turned into `_`.
func EnvName(name string) string {
	r := strings.NewReplacer(".", "_", "-", "_")
	return "KINTO_" + strings.ToUpper(r.Replace(name))
}

// Load reads settings from the INI file at path (may be "" for none) and from
// environ (KEY=VALUE pairs, as os.Environ returns), in that order of
// increasing precedence over the declared defaults.
func Load(path string, environ []string) (*Settings, error) {
	values := map[string]string{}
	for _, s := range Table {
		values[s.Name] = s.Default
	}
	s := &Settings{values: values}
	if path != "" {
		if err := s.loadINI(path); err != nil {
			return nil, err
		}
		s.Path = path
	} else {
		s.ZeroConfig = true
		for k, v := range Start {
			values[k] = v
		}
	}
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	// Environment variables override settings that exist (declared or in
	// the INI), as in Kinto: both NAME and KINTO_NAME are consulted, and
	// KINTO_NAME wins.
	for name := range values {
		kname := EnvName(name)
		plain := strings.TrimPrefix(kname, "KINTO_")
		if v, ok := env[plain]; ok {
			values[name] = v
		}
		if v, ok := env[kname]; ok {
			values[name] = v
		}
	}
	s.env = env
	if err := s.validate(); err != nil {
		return nil, err
	}
	return s, nil
}

// LookupEnv is Lookup for the settings a plugin reads with Kinto's
// read_env (the signer's): KINTO_NAME in the environment wins over the
// setting even when neither the INI nor the declared settings have it.
func (s *Settings) LookupEnv(name string) (string, bool) {
	name = Normalize(name)
	if v, ok := s.env[EnvName(name)]; ok {
		return v, true
	}
	return s.Lookup(name)
}

// FromMap builds settings from explicit values over the defaults, for tests
// and embedding. Keys may carry the `kinto.` prefix.
func FromMap(m map[string]string) (*Settings, error) {
	values := map[string]string{}
	for _, s := range Table {
		values[s.Name] = s.Default
	}
	for k, v := range m {
		values[Normalize(k)] = v
	}
	s := &Settings{values: values}
	return s, s.validate()
}

func (s *Settings) loadINI(path string) error {
	f, err := ini.LoadSources(ini.LoadOptions{AllowPythonMultilineValues: true, SpaceBeforeInlineComment: true}, path)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	app, err := f.GetSection("app:main")
	if err != nil {
		return fmt.Errorf("%s: no [app:main] section", path)
	}
	seen := map[string]string{}
	for _, k := range app.Keys() {
		name := Normalize(k.Name())
		if name == "use" {
			continue
		}
		v := strings.TrimSpace(dropComments(k.Value()))
		if prev, dup := seen[name]; dup && prev != v {
			return fmt.Errorf("%s: setting %q is defined twice with different values", path, name)
		}
		seen[name] = v
		s.values[name] = v
		if s.given == nil {
			s.given = map[string]bool{}
		}
		s.given[name] = true
	}
	// Kinto's logging sections: its JSON formatter selects JSON logs,
	// unless log_format says otherwise.
	if _, set := seen["log_format"]; !set && jsonLogging(f) {
		s.values["log_format"] = "json"
	}
	if srv, err := f.GetSection("server:main"); err == nil {
		for _, key := range []string{"host", "port"} {
			if srv.HasKey(key) {
				s.values["server."+key] = srv.Key(key).String()
			}
		}
	}
	return nil
}

// dropComments removes the comment lines of a value's continuation lines,
// as Python's configparser (which reads Kinto's INI files) skips them:
// `# …` or `; …` between the lines of signer.resources is no resource.
func dropComments(v string) string {
	if !strings.Contains(v, "\n") {
		return v
	}
	lines := strings.Split(v, "\n")
	kept := lines[:1]
	for _, l := range lines[1:] {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "#") || strings.HasPrefix(t, ";") {
			continue
		}
		kept = append(kept, l)
	}
	return strings.Join(kept, "\n")
}

func (s *Settings) validate() error {
	for _, d := range Table {
		v := unquote(s.values[d.Name])
		switch d.Type {
		case Int:
			if _, err := parseInt(v); err != nil {
				return fmt.Errorf("setting %s: %q is not an integer", d.Name, v)
			}
		case Bool:
			if _, err := parseBool(v); err != nil {
				return fmt.Errorf("setting %s: %q is not a boolean", d.Name, v)
			}
		}
	}
	return nil
}

// Lookup returns a setting's raw value and whether it is set (declared
// settings are always set, possibly to "").
func (s *Settings) Lookup(name string) (string, bool) {
	v, ok := s.values[Normalize(name)]
	return v, ok
}

// String returns a setting's value, "" when unknown.
func (s *Settings) String(name string) string {
	v, _ := s.Lookup(name)
	return unquote(v)
}

// Int returns an integer setting; unknown or empty values give 0.
func (s *Settings) Int(name string) int64 {
	n, _ := parseInt(s.String(name))
	return n
}

// IntOK returns an integer setting and whether it is set to an integer.
func (s *Settings) IntOK(name string) (int64, bool) {
	v, ok := s.Lookup(name)
	if !ok || strings.TrimSpace(v) == "" {
		return 0, false
	}
	n, err := parseInt(unquote(v))
	return n, err == nil
}

// Bool returns a boolean setting (Pyramid's asbool: true, t, yes, y, on, 1).
func (s *Settings) Bool(name string) bool { return AsBool(s.String(name)) }

// AsBool is Pyramid's asbool: true for true, t, yes, y, on and 1 (any
// case, spaces around), false for anything else.
func AsBool(v string) bool {
	b, _ := parseBool(v)
	return b
}

// Storage backends by kintogo's names (StorageBackend).
const (
	SQLite     = "sqlite"
	PostgreSQL = "postgresql"
	Memory     = "memory"
)

// StorageBackend is storage_backend by kintogo's name for it (SQLite,
// PostgreSQL, Memory), Kinto's dotted names accepted; any other value is
// returned as given, for the error that names it.
func (s *Settings) StorageBackend() string {
	switch b := s.String("storage_backend"); b {
	case "kintogo.storage.sqlite":
		return SQLite
	case "kinto.core.storage.postgresql":
		return PostgreSQL
	case "kinto.core.storage.memory":
		return Memory
	default:
		return b
	}
}

// List returns a whitespace- or newline-separated setting as words.
func (s *Settings) List(name string) []string {
	return strings.Fields(s.String(name))
}

// Has reports whether a word is in a list setting.
func (s *Settings) Has(name, word string) bool {
	for _, w := range s.List(name) {
		if w == word {
			return true
		}
	}
	return false
}

// Names returns every setting name, sorted.
func (s *Settings) Names() []string {
	names := make([]string, 0, len(s.values))
	for k := range s.values {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// IsSecret reports whether a setting must never be shown.
func IsSecret(name string) bool {
	d, ok := declared[Normalize(name)]
	return ok && d.Secret || strings.Contains(name, "secret") || strings.Contains(name, "password")
}

func unquote(v string) string {
	v = strings.TrimSpace(v)
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		if u, err := strconv.Unquote(v); err == nil {
			return u
		}
	}
	return v
}

func parseInt(v string) (int64, error) {
	v = strings.TrimSpace(v)
	if v == "" || v == "null" || v == "None" {
		return 0, nil
	}
	return strconv.ParseInt(v, 10, 64)
}

// ParseBool reads a boolean as Pyramid's asbool does (true, yes, on, 1;
// false, no, off, 0, empty), for the settings plugins read themselves.
func ParseBool(v string) (bool, error) { return parseBool(v) }

func parseBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "t", "yes", "y", "on", "1":
		return true, nil
	case "false", "f", "no", "n", "off", "0", "", "null", "none":
		return false, nil
	}
	return false, fmt.Errorf("not a boolean: %q", v)
}

// Environ is os.Environ, named for callers that pass it to Load.
var Environ = os.Environ

// Config is what the core reads of the settings on its request path,
// typed and read once (FromSettings). Plugins read their own settings
// once, when they are provisioned. Settings whose names are computed from
// the request (`{bid}.{cid}.record_cache_expires_seconds`,
// `<kind>_<perm>_principals`) stay lookups in Settings.
type Config struct {
	Project ProjectConfig
	HTTP    HTTPConfig
	Objects ObjectsConfig
	Batch   BatchConfig
	Push    PushConfig
}

// ProjectConfig is what GET /v1/ and /__version__ tell of the project.
type ProjectConfig struct {
	Name, Version, Docs string
	VersionJSONPath     string // version_json_path
}

// HTTPConfig is the HTTP layer's.
type HTTPConfig struct {
	Host, Scheme    string // http_host, http_scheme ("": the request's)
	Readonly        bool
	MaxBodyBytes    int64
	BodyReadTimeout time.Duration
	CORSOrigins     []string
	CORSMaxAge      int64 // seconds
	// Redirects of trailing slashes and of paths without a version, and
	// their cache TTLs in seconds (-1: no cache headers).
	TrailingSlashRedirect    bool
	TrailingSlashRedirectTTL int64
	VersionPrefixRedirect    bool
	VersionPrefixRedirectTTL int64
	RetryAfter               int64 // seconds, on 409 and 503
	Backoff                  int64 // seconds, 0: none
	HeartbeatTimeout         time.Duration
	ResponseCacheMaxBytes    int64
}

// ObjectsConfig is the resource engine's.
type ObjectsConfig struct {
	ExplicitPermissions bool
	SchemaValidation    bool
	PaginateBy          int64
	MaxFetchSize        int64
	TokenValidity       time.Duration
}

// BatchConfig is POST /v1/batch's.
type BatchConfig struct {
	MaxRequests      int64
	MaxResponseBytes int64
}

// PushConfig is long-polls' and event streams'.
type PushConfig struct {
	MaxWait, Heartbeat, MaxStream, WriteTimeout time.Duration
	MaxStreams                                  int64
	// MaxHeld bounds the requests held open at once (max_held_requests).
	MaxHeld int64
}

// FromSettings reads the core's configuration once.
func FromSettings(s *Settings) Config {
	seconds := func(name string) time.Duration { return time.Duration(s.Int(name)) * time.Second }
	return Config{
		Project: ProjectConfig{Name: s.String("project_name"), Version: s.String("project_version"), Docs: s.String("project_docs"),
			VersionJSONPath: s.String("version_json_path")},
		HTTP: HTTPConfig{
			Host: s.String("http_host"), Scheme: s.String("http_scheme"), Readonly: s.Bool("readonly"),
			MaxBodyBytes: s.Int("max_body_bytes"), BodyReadTimeout: seconds("body_read_timeout_seconds"),
			CORSOrigins: s.List("cors_origins"), CORSMaxAge: s.Int("cors_max_age_seconds"),
			TrailingSlashRedirect: s.Bool("trailing_slash_redirect_enabled"), TrailingSlashRedirectTTL: s.Int("trailing_slash_redirect_ttl_seconds"),
			VersionPrefixRedirect: s.Bool("version_prefix_redirect_enabled"), VersionPrefixRedirectTTL: s.Int("version_prefix_redirect_ttl_seconds"),
			RetryAfter: s.Int("retry_after_seconds"), Backoff: s.Int("backoff"),
			HeartbeatTimeout: seconds("heartbeat_timeout_seconds"), ResponseCacheMaxBytes: s.Int("response_cache_max_bytes"),
		},
		Objects: ObjectsConfig{
			ExplicitPermissions: s.Bool("explicit_permissions"), SchemaValidation: s.Bool("experimental_collection_schema_validation"),
			PaginateBy: s.Int("paginate_by"), MaxFetchSize: s.Int("storage_max_fetch_size"),
			TokenValidity: seconds("pagination_token_validity_seconds"),
		},
		Batch: BatchConfig{MaxRequests: s.Int("batch_max_requests"), MaxResponseBytes: s.Int("batch_max_response_bytes")},
		Push: PushConfig{
			MaxWait: seconds("push.max_wait_seconds"), Heartbeat: seconds("push.heartbeat_seconds"),
			MaxStream: seconds("push.max_stream_seconds"), WriteTimeout: seconds("push.write_timeout_seconds"),
			MaxStreams: s.Int("push.max_streams"), MaxHeld: s.Int("max_held_requests"),
		},
	}
}

// jsonLogging reports whether an INI file's logging configuration writes
// JSON: a handler whose formatter is named json, as in Kinto's template,
// or whose formatter's class is Kinto's or dockerflow's JSON formatter.
func jsonLogging(f *ini.File) bool {
	for _, sec := range f.Sections() {
		if !strings.HasPrefix(sec.Name(), "handler_") || !sec.HasKey("formatter") {
			continue
		}
		name := strings.TrimSpace(sec.Key("formatter").String())
		if name == "json" {
			return true
		}
		if fs, err := f.GetSection("formatter_" + name); err == nil {
			class := strings.TrimSpace(fs.Key("class").String())
			if strings.HasSuffix(class, "JsonLogFormatter") || strings.HasSuffix(class, "MozlogFormatter") {
				return true
			}
		}
	}
	return false
}
