package signer_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kintogo/internal/app"
	"kintogo/internal/app/apptest"
	"kintogo/internal/config"
	"kintogo/internal/contentsig"
	"kintogo/internal/httpapi"
	"kintogo/internal/plugins/signer"
	"kintogo/internal/storage/memory"
	"kintogo/internal/storage/storetest"
)

// The resources of the reference's tests/signer/config.ini.
const referenceResources = `
    /buckets/alice/collections/source -> /buckets/alice/collections/destination
    /buckets/alice/collections/from -> /buckets/alice/collections/preview -> /buckets/alice/collections/to
    /buckets/bob/collections/source-> /buckets/bob/collections/destination
    /buckets/stage -> /buckets/preview -> /buckets/prod
    /buckets/main-workspace -> /buckets/main-preview -> /buckets/main
    /buckets/security-state-workspace/collections/onecrl -> /buckets/security-state/collections/onecrl`

// The reference's HelloViewTest.test_capability_is_exposed.
func TestCapability(t *testing.T) {
	f := newFlow(t, storetest.Memory, map[string]string{
		"signer.resources": referenceResources, "signer.to_review_enabled": "false",
		"signer.alice.source.to_review_enabled": "true", "signer.stage.normandy.to_review_enabled": "false",
		"signer.stage.autograph.hawk_id": "boom",
	})
	got := jsonOf(f.call("GET", "/", "", "", 200).body["capabilities"].(map[string]any)["signer"])
	want := jsonOf(map[string]any{
		"description": "Digital signatures for integrity and authenticity of records.",
		"url":         "https://github.com/mozilla/remote-settings/tree/main/kinto-remote-settings",
		"version":     "0.0.0", "group_check_enabled": true, "to_review_enabled": false,
		"editors_group": "{collection_id}-editors", "reviewers_group": "{collection_id}-reviewers",
		"plugin_userid": "plugin:remote-settings",
		"resources": []any{
			map[string]any{"destination": loc("alice", "destination"), "source": loc("alice", "source"), "to_review_enabled": true},
			map[string]any{"destination": loc("alice", "to"), "preview": loc("alice", "preview"), "source": loc("alice", "from")},
			map[string]any{"destination": loc("bob", "destination"), "source": loc("bob", "source")},
			map[string]any{"source": loc("stage", nil), "preview": loc("preview", nil), "destination": loc("prod", nil)},
			map[string]any{"destination": loc("main", nil), "preview": loc("main-preview", nil), "source": loc("main-workspace", nil)},
			map[string]any{"destination": loc("security-state", "onecrl"), "source": loc("security-state-workspace", "onecrl")},
			map[string]any{"source": loc("stage", "normandy"), "preview": loc("preview", "normandy"), "destination": loc("prod", "normandy")},
		},
	})
	if got != want {
		t.Fatalf("capability\n got %s\nwant %s", got, want)
	}
}

func loc(bucket string, collection any) map[string]any {
	return map[string]any{"bucket": bucket, "collection": collection}
}

// The reference's ConfigFromEnvironment: KINTO_SIGNER_* variables are read
// even for settings no file declares.
func TestSettingsFromEnvironment(t *testing.T) {
	key := keyFile(t)
	s, err := config.Load("", []string{
		"KINTO_INCLUDES=kinto_remote_settings", "KINTO_MULTIAUTH_POLICIES=basicauth", "KINTO_SIGNER_ECDSA_PRIVATE_KEY=" + key,
		"KINTO_SIGNER_RESOURCES=/buckets/ready -> /buckets/steady -> /buckets/go",
		"KINTO_SIGNER_READY_TO_REVIEW_ENABLED=true",
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := app.NewServer(s, memory.New(), httpapi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	f := &flow{t: t, url: ts.URL}
	caps := f.call("GET", "/", "", "", 200).body["capabilities"].(map[string]any)["signer"].(map[string]any)
	if caps["to_review_enabled"] != false {
		t.Fatalf("to_review_enabled %v", caps["to_review_enabled"])
	}
	want := jsonOf(map[string]any{"to_review_enabled": true, "source": loc("ready", nil), "preview": loc("steady", nil), "destination": loc("go", nil)})
	if got := jsonOf(caps["resources"].([]any)[0]); got != want {
		t.Fatalf("resource %s, want %s", got, want)
	}
}

// The reference's ExpandedSettingsTest: a setting whose collection is a
// pattern applies to the collections it matches, which the capability
// then lists, once they exist.
func TestPatternSettings(t *testing.T) {
	f := newFlow(t, storetest.SQLite, map[string]string{
		"signer.resources": referenceResources, "signer.to_review_enabled": "true",
		`signer.main-workspace.magic-(\w+).to_review_enabled`: "false",
	})
	sources := func() map[string]bool {
		out := map[string]bool{}
		caps := f.call("GET", "/", "", "", 200).body["capabilities"].(map[string]any)["signer"].(map[string]any)
		for _, r := range caps["resources"].([]any) {
			if c, ok := r.(map[string]any)["source"].(map[string]any)["collection"].(string); ok {
				out[c] = true
			}
		}
		return out
	}
	if s := sources(); s["magic-word"] || s[`magic-(\w+)`] {
		t.Fatalf("sources %v", s)
	}
	f.call("PUT", "/buckets/main-workspace", tarte, "", 201)
	for _, c := range []string{"magic-word", "evil-magic-word", "magic-word-evil"} {
		f.call("PUT", "/buckets/main-workspace/collections/"+c, tarte, "", 201)
	}
	s := sources()
	if !s["magic-word"] || s[`magic-(\w+)`] || s["evil-magic-word"] || s["magic-word-evil"] {
		t.Fatalf("sources %v", s)
	}
	// Its review is off: an editor signs directly.
	for _, c := range []string{"magic-word", "evil-magic-word"} {
		f.call("POST", "/buckets/main-workspace/collections/"+c+"/records", tarte, `{"data": {}}`, 201)
	}
	f.status("/buckets/main-workspace/collections/magic-word", tarte, "to-sign", 200)
	f.status("/buckets/main-workspace/collections/evil-magic-word", tarte, "to-sign", 403)
}

// The reference's test_returns_400_if_contains_float, and signer.allow_floats.
func TestFloats(t *testing.T) {
	f := newFlow(t, storetest.Memory, nil)
	defaultSetUp(f)
	for body, path := range map[string]string{`{"a": 3.14}`: "a", `{"a": {"b": 41.0}}`: "a.b", `{"a": [{"b": 41.0}]}`: "a.0.b", `{"a": 1e3}`: "a"} {
		a := f.call("POST", source+"/records", tarte, `{"data": `+body+`}`, 400)
		if m := a.body["message"].(string); !strings.Contains(m, "'"+path+"'") || !strings.Contains(m, "float") {
			t.Fatalf("%s: %s", body, m)
		}
	}
	a := f.call("POST", source+"/records", tarte, `{"data": {"big": 18446744073709551616}}`, 400)
	if m := a.body["message"].(string); !strings.Contains(m, "cannot be signed") {
		t.Fatalf("%s", m)
	}
	f.call("POST", "/buckets/alice/collections/unsigned/records", tarte, `{"data": {"a": 3.14}}`, 0)
	g := newFlow(t, storetest.Memory, map[string]string{"signer.allow_floats": "true"})
	defaultSetUp(g)
	g.call("POST", source+"/records", tarte, `{"data": {"a": 3.14, "b": [1.5e300]}}`, 201)
	g.status(source, tarte, "to-sign", 200)
	g.verify(dest)
}

// The reference's SourceCollectionSoftDeletion and HardDeletion.
func TestSourceDeletion(t *testing.T) {
	settings := map[string]string{"signer.resources": referenceResources, "signer.to_review_enabled": "true",
		"signer.destination_writers": "system.Authenticated"} // (see withPreview)
	setUp := func(f *flow) {
		f.call("PUT", "/buckets/stage", tarte, "", 201)
		f.call("PUT", "/buckets/stage/groups/a-editors", tarte, `{"data": {"members": ["`+f.users[sam]+`"]}}`, 201)
		f.call("PUT", "/buckets/stage/groups/a-reviewers", tarte, `{"data": {"members": ["`+f.users[tarte]+`"]}}`, 201)
		f.call("PUT", "/buckets/stage/collections/a", tarte, `{"permissions": {"write": ["`+f.users[sam]+`"]}}`, 201)
		for i := 0; i < 5; i++ {
			f.call("POST", "/buckets/stage/collections/a/records", tarte, "", 201)
		}
		f.status("/buckets/stage/collections/a", sam, "to-review", 200)
		f.status("/buckets/stage/collections/a", tarte, "to-sign", 200)
		f.call("PUT", "/buckets/security-state-workspace", tarte, "", 201)
		f.call("PUT", "/buckets/security-state-workspace/collections/onecrl", tarte, "", 201)
	}
	inMonitor := func(f *flow) map[string]bool {
		out := map[string]bool{}
		for _, e := range f.call("GET", "/buckets/monitor/collections/changes/changeset?_expected=0", "", "", 200).body["changes"].([]any) {
			m := e.(map[string]any)
			out[m["bucket"].(string)+"/"+m["collection"].(string)] = true
		}
		return out
	}
	eachBackend(t, func(t *testing.T, open storetest.Open) {
		t.Run("soft", func(t *testing.T) {
			f := newFlow(t, open, settings)
			setUp(f)
			before := f.get("/buckets/prod/collections/a", tarte)["last_modified"]
			f.call("DELETE", "/buckets/stage/collections/a", tarte, "", 200)
			for _, c := range []string{"/buckets/preview/collections/a", "/buckets/prod/collections/a"} {
				if n := f.count(c, tarte); n != 0 {
					t.Fatalf("%s: %d records left", c, n)
				}
				f.verify(c)
			}
			if f.get("/buckets/prod/collections/a", tarte)["last_modified"] == before {
				t.Fatal("destination not signed again")
			}
			f.call("GET", "/buckets/stage/groups/a-editors", tarte, "", 404)
			f.call("GET", "/buckets/stage/groups/a-reviewers", tarte, "", 404)
			// Its tombstones tell clients what went.
			tombs := f.call("GET", "/buckets/prod/collections/a/records?_since=0", tarte, "", 200).list()
			if len(tombs) != 5 {
				t.Fatalf("%d tombstones", len(tombs))
			}
		})
		t.Run("hard", func(t *testing.T) {
			hard := map[string]string{"signer.hard_delete_destination_on_source_deletion": "true"}
			for k, v := range settings {
				hard[k] = v
			}
			hard["changes.resources"] = "/buckets/preview /buckets/prod"
			f := newFlow(t, open, hard)
			setUp(f)
			if m := inMonitor(f); !m["preview/a"] || !m["prod/a"] {
				t.Fatalf("monitor %v", m)
			}
			f.call("DELETE", "/buckets/stage/collections/a", tarte, "", 200)
			f.call("GET", "/buckets/preview/collections/a", tarte, "", 404)
			f.call("GET", "/buckets/prod/collections/a", tarte, "", 404)
			f.call("GET", "/buckets/stage/groups/a-editors", tarte, "", 404)
			if m := inMonitor(f); m["preview/a"] || m["prod/a"] {
				t.Fatalf("monitor %v", m)
			}
			f.call("DELETE", "/buckets/security-state-workspace/collections/onecrl", tarte, "", 200)
			f.call("GET", "/buckets/security-state/collections/onecrl", tarte, "", 404)
		})
	})
}

// signer.auto_create_resources: the sources exist at start, writable by
// its principals.
func TestAutoCreate(t *testing.T) {
	f := newFlow(t, storetest.SQLite, map[string]string{
		"signer.resources":                        referenceResources,
		"signer.auto_create_resources":            "true",
		"signer.auto_create_resources_principals": "system.Authenticated",
	})
	for _, p := range []string{"/buckets/main-workspace", "/buckets/security-state-workspace/collections/onecrl", "/buckets/alice/collections/from"} {
		a := f.call("GET", p, tarte, "", 200)
		if jsonOf(a.body["permissions"].(map[string]any)["write"]) != `["system.Authenticated"]` {
			t.Fatalf("%s: %v", p, a.body)
		}
	}
	// Made without the workflow: no destination yet, until a re-sign
	// makes and signs it.
	f.call("GET", "/buckets/security-state/collections/onecrl", tarte, "", 403)
	f.status("/buckets/security-state-workspace/collections/onecrl", tarte, "to-resign", 200)
	f.verify("/buckets/security-state/collections/onecrl")
}

// A group pattern without {collection_id} names a group the bucket's
// collections share: deleting one source leaves it.
func TestSharedGroups(t *testing.T) {
	f := newFlow(t, storetest.Memory, map[string]string{
		"signer.resources": "/buckets/stage -> /buckets/prod", "signer.editors_group": "editors",
		"signer.reviewers_group": "{collection_id}-reviewers",
	})
	f.call("PUT", "/buckets/stage", tarte, "", 201)
	f.call("PUT", "/buckets/stage/collections/a", tarte, "", 201)
	f.call("PUT", "/buckets/stage/collections/b", tarte, "", 201)
	f.get("/buckets/stage/groups/editors", tarte)
	f.call("DELETE", "/buckets/stage/collections/a", tarte, "", 200)
	f.get("/buckets/stage/groups/editors", tarte)
	f.call("GET", "/buckets/stage/groups/a-reviewers", tarte, "", 404)
	f.get("/buckets/stage/groups/b-reviewers", tarte)
}

// The heartbeat signs, and tells when the served chain expires.
func TestHeartbeatAndChains(t *testing.T) {
	dir := t.TempDir()
	write := func(days float64) (string, string) {
		ch, err := contentsig.NewChain(contentsig.DefaultSubject, time.Now(), time.Duration(days*24)*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		key, _ := contentsig.EncodePrivateKey(ch.LeafKey)
		kp, cp := filepath.Join(dir, "key.pem"), filepath.Join(dir, "chain.pem")
		os.WriteFile(kp, key, 0o600)
		os.WriteFile(cp, ch.PEM(), 0o644)
		return kp, cp
	}
	var logs bytes.Buffer
	start := func(kp, cp string) *flow {
		settings := map[string]string{
			"includes": "kinto_remote_settings", "multiauth.policies": "basicauth", "userid_hmac_secret": "s",
			"signer.resources": "/buckets/a/collections/b -> /buckets/c/collections/d", "signer.ecdsa.private_key": kp,
			"signer.ecdsa.certificate_chain": cp, "http_host": "kinto.example.com",
		}
		logger := slog.New(slog.NewTextHandler(&logs, nil))
		ts := httptest.NewServer(apptest.Server(t, memory.New(), httpapi.Options{Logger: logger}, settings))
		t.Cleanup(ts.Close)
		return &flow{t: t, url: ts.URL}
	}
	f := start(write(90))
	if hb := f.call("GET", "/__heartbeat__", "", "", 200).body; hb["signer"] != true {
		t.Fatalf("heartbeat %v", hb)
	}
	if strings.Contains(logs.String(), "Only") {
		t.Fatalf("warned: %s", logs.String())
	}
	// The chain is served at the x5u of the signatures.
	f.call("PUT", "/buckets/a", tarte, "", 201)
	f.call("PUT", "/buckets/a/collections/b", tarte, "", 201)
	x5u := f.get("/buckets/c/collections/d", tarte)["signature"].(map[string]any)["x5u"].(string)
	if !strings.HasPrefix(x5u, "http://kinto.example.com/v1/__signer__/chains/") {
		t.Fatalf("x5u %s", x5u)
	}
	a := f.call("GET", strings.TrimPrefix(x5u, "http://kinto.example.com/v1"), "", "", 0)
	if a.code != 200 || a.header.Get("Content-Type") != "application/pem-certificate-chain" {
		t.Fatalf("x5u answered %d %s", a.code, a.header.Get("Content-Type"))
	}
	f.call("GET", "/__signer__/chains/unknown.pem", "", "", 404)

	logs.Reset()
	f = start(write(5))
	if hb := f.call("GET", "/__heartbeat__", "", "", 200).body; hb["signer"] != true {
		t.Fatalf("heartbeat %v", hb)
	}
	if !strings.Contains(logs.String(), "Only 4 days before") {
		t.Fatalf("no warning: %s", logs.String())
	}
	f = start(write(-1))
	if hb := f.call("GET", "/__heartbeat__", "", "", 503).body; hb["signer"] != false {
		t.Fatalf("heartbeat %v", hb)
	}
}

// Resign signs again what another chain signed, and leaves the records.
func TestResign(t *testing.T) {
	dir := t.TempDir()
	chainFiles := func(name string) (string, string) {
		ch, err := contentsig.NewChain(contentsig.DefaultSubject, time.Now(), 30*24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		key, _ := contentsig.EncodePrivateKey(ch.LeafKey)
		kp, cp := filepath.Join(dir, name+"-key.pem"), filepath.Join(dir, name+"-chain.pem")
		os.WriteFile(kp, key, 0o600)
		os.WriteFile(cp, ch.PEM(), 0o644)
		return kp, cp
	}
	store := memory.New()
	settings := func(kp, cp string) map[string]string {
		return map[string]string{
			"includes": "kinto_remote_settings", "multiauth.policies": "basicauth", "userid_hmac_secret": "s",
			"signer.resources": "/buckets/ws -> /buckets/prod", "signer.ecdsa.private_key": kp,
			"signer.ecdsa.certificate_chain": cp, "http_host": "kinto.example.com",
		}
	}
	old := settings(chainFiles("old"))
	ts := httptest.NewServer(apptest.Server(t, store, httpapi.Options{}, old))
	f := &flow{t: t, url: ts.URL}
	f.call("PUT", "/buckets/ws", tarte, "", 201)
	for _, c := range []string{"a", "b"} {
		f.call("PUT", "/buckets/ws/collections/"+c, tarte, "", 201)
		f.call("POST", "/buckets/ws/collections/"+c+"/records", tarte, `{"data": {"x": 1}}`, 201)
		f.status("/buckets/ws/collections/"+c, tarte, "to-sign", 200)
	}
	before := f.call("GET", "/buckets/prod/collections/a/records", tarte, "", 200).header.Get("ETag")
	// A destination whose source is gone is signed again too.
	f.call("DELETE", "/buckets/ws/collections/b", tarte, "", 200)
	ts.Close()

	next := settings(chainFiles("new"))
	srv := apptest.Server(t, store, httpapi.Options{}, next)
	var done []string
	n, err := signer.Resign(context.Background(), srv, signer.ResignOptions{Within: 24 * time.Hour, Now: time.Now()},
		func(uri, why string) { done = append(done, uri+": "+why) })
	if err != nil || n != 2 {
		t.Fatalf("resigned %d (%v): %v", n, err, done)
	}
	// Nothing left to do.
	if n, err := signer.Resign(context.Background(), srv, signer.ResignOptions{Within: 24 * time.Hour, Now: time.Now()}, func(string, string) {}); err != nil || n != 0 {
		t.Fatalf("second pass: %d (%v)", n, err)
	}
	// Within the chain's lifetime: everything again.
	if n, err := signer.Resign(context.Background(), srv, signer.ResignOptions{Within: 60 * 24 * time.Hour, Now: time.Now()}, func(string, string) {}); err != nil || n != 2 {
		t.Fatalf("expiring: %d (%v)", n, err)
	}
	ts = httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	f = &flow{t: t, url: ts.URL, keyFile: next["signer.ecdsa.private_key"]}
	if after := f.call("GET", "/buckets/prod/collections/a/records", tarte, "", 200).header.Get("ETag"); after != before {
		t.Fatalf("records timestamp %s, was %s", after, before)
	}
	f.verify("/buckets/prod/collections/a")
	f.verify("/buckets/prod/collections/b")
}
