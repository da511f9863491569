package attachment_test

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"kintogo/internal/plugins/attachment"
	"kintogo/internal/storage/storetest"
)

// The bundles Firefox asks for, built by the server after each change of
// a monitored collection: their contents are the changesets served at
// that moment (startup: the collections flagged so; previews left out),
// the zip of a flagged collection its records' metadata and files, none
// beyond the size limit or once the flag goes away; a bundle whose bytes
// do not change is not written again; and writes that keep coming while
// bundles are built end with bundles of the last state.
func TestBundles(t *testing.T) {
	eachBackend(t, func(t *testing.T, open storetest.Open) {
		s := newServer(t, open, map[string]string{
			"includes":                         "kinto_attachment kinto_changes",
			"changes.resources":                "/buckets/main /buckets/main-preview",
			"bucket_read_principals":           "system.Everyone",
			"attachment.folder":                "{bucket_id}/{collection_id}",
			"attachment.bundle_max_size_bytes": "40",
		})
		s.json("PUT", "/v1/buckets/main", `{"permissions": {"read": ["system.Everyone"]}}`, 201)
		s.json("PUT", "/v1/buckets/main-preview", "", 201)
		s.json("PUT", "/v1/buckets/main/collections/boot", `{"data": {"flags": ["startup"]}}`, 201)
		s.json("PUT", "/v1/buckets/main/collections/plain", "", 201)
		s.json("PUT", "/v1/buckets/main/collections/files", `{"data": {"attachment": {"bundle": true}}}`, 201)
		s.json("PUT", "/v1/buckets/main/collections/huge", `{"data": {"attachment": {"bundle": true}}}`, 201)
		s.json("PUT", "/v1/buckets/main-preview/collections/boot", `{"data": {"flags": ["startup"]}}`, 201)
		s.json("POST", "/v1/buckets/main/collections/boot/records", `{"data": {"n": 1}}`, 201)
		s.json("POST", "/v1/buckets/main/collections/plain/records", `{"data": {"n": 2}}`, 201)
		s.json("POST", "/v1/buckets/main-preview/collections/boot/records", `{"data": {"n": 3}}`, 201)
		s.json("PUT", "/v1/buckets/main/collections/files/records/no-file", `{"data": {"n": 4}}`, 201)
		upload := func(coll, id, content string) {
			s.bucket, s.coll = "main", coll
			s.upload(id, 201, part{name: "attachment", filename: id + ".txt", content: content})
		}
		upload("files", "one", "first file")
		upload("files", "two", "second file")
		upload("huge", "big", strings.Repeat("x", 41)) // beyond the 40 bytes

		// What the changeset endpoints serve now, as a bundle holds them.
		served := func(preview bool, only func(map[string]any) bool) []any {
			var out []any
			mon := s.json("GET", "/v1/buckets/monitor/collections/changes/changeset?_expected=0", "", 200).body
			var entries []map[string]any
			for _, e := range mon["changes"].([]any) {
				entries = append(entries, e.(map[string]any))
			}
			sort.Slice(entries, func(i, j int) bool {
				return fmt.Sprint(entries[i]["bucket"], "/", entries[i]["collection"]) < fmt.Sprint(entries[j]["bucket"], "/", entries[j]["collection"])
			})
			for _, e := range entries {
				if !preview && strings.Contains(e["bucket"].(string), "preview") {
					continue
				}
				cs := s.json("GET", fmt.Sprintf("/v1/buckets/%s/collections/%s/changeset?_expected=%v", e["bucket"], e["collection"], e["last_modified"]), "", 200).body
				if only == nil || only(cs["metadata"].(map[string]any)) {
					out = append(out, cs)
				}
			}
			return out
		}
		startup := func(m map[string]any) bool {
			flags, _ := m["flags"].([]any)
			return len(flags) > 0 && flags[0] == "startup"
		}
		bundle := func(name string) ([]any, answer) {
			a := s.do("GET", "/attachments/bundles/"+name, "", nil)
			if a.code != 200 {
				return nil, a
			}
			data, err := attachment.UnMozLz4([]byte(a.raw), 1<<24)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			var out []any
			if err := json.Unmarshal(data, &out); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return out, a
		}
		// matches waits until the bundle holds what is served.
		matches := func(name string, only func(map[string]any) bool) answer {
			t.Helper()
			var last string
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				got, a := bundle(name)
				want := served(false, only)
				if a.code == 200 && cmp.Equal(got, want) {
					return a
				}
				last = fmt.Sprintf("%d %s", a.code, cmp.Diff(want, got))
			}
			t.Fatalf("%s does not hold the changesets served: %s", name, last)
			return answer{}
		}
		all := matches("changesets.json.mozlz4", nil)
		boot := matches("startup.json.mozlz4", startup)
		if got, _ := bundle("startup.json.mozlz4"); len(got) != 1 || got[0].(map[string]any)["metadata"].(map[string]any)["id"] != "boot" {
			t.Errorf("startup bundle: %v", got)
		}
		for _, a := range []answer{all, boot} {
			if a.header.Get("ETag") == "" || a.header.Get("Last-Modified") == "" || a.header.Get("Cache-Control") != "public, max-age=3600" {
				t.Errorf("bundle headers: %v", a.header)
			}
		}

		// The zip of files: each record with an attachment, as served, and
		// its file.
		zipOf := func(name string) (map[string]string, int) {
			a := s.do("GET", "/attachments/bundles/"+name, "", nil)
			if a.code != 200 {
				return nil, a.code
			}
			zr, err := zip.NewReader(bytes.NewReader([]byte(a.raw)), int64(len(a.raw)))
			if err != nil {
				t.Fatal(err)
			}
			out := map[string]string{}
			for _, f := range zr.File {
				rc, _ := f.Open()
				b, _ := io.ReadAll(rc)
				rc.Close()
				out[f.Name] = string(b)
			}
			return out, 200
		}
		var files map[string]string
		eventually(t, "the zip of main/files", func() bool { files, _ = zipOf("main--files.zip"); return len(files) == 4 })
		if files["one"] != "first file" || files["two"] != "second file" {
			t.Errorf("zip files: %v", files)
		}
		cs := s.json("GET", "/v1/buckets/main/collections/files/changeset?_expected=1", "", 200).body
		for _, rec := range cs["changes"].([]any) {
			r := rec.(map[string]any)
			if r["attachment"] == nil {
				continue
			}
			var meta map[string]any
			if err := json.Unmarshal([]byte(files[r["id"].(string)+".meta.json"]), &meta); err != nil || !cmp.Equal(meta, r) {
				t.Errorf("%s.meta.json: %v %s", r["id"], err, cmp.Diff(r, meta))
			}
		}
		if _, code := zipOf("main--huge.zip"); code != 404 {
			t.Errorf("a collection beyond the size limit: %d", code)
		}
		if _, code := zipOf("main--plain.zip"); code != 404 {
			t.Errorf("a collection without the flag: %d", code)
		}

		// A change of a collection that is not in the startup bundle:
		// changesets.json changes, startup.json is not written again.
		s.json("POST", "/v1/buckets/main/collections/plain/records", `{"data": {"n": 5}}`, 201)
		all2 := matches("changesets.json.mozlz4", nil)
		if all2.header.Get("ETag") == all.header.Get("ETag") {
			t.Error("changesets.json.mozlz4 kept its ETag")
		}
		if _, a := bundle("startup.json.mozlz4"); a.header.Get("ETag") != boot.header.Get("ETag") {
			t.Errorf("startup.json.mozlz4 was written again: %s, was %s", a.header.Get("ETag"), boot.header.Get("ETag"))
		}

		// The flag goes away: so does the zip.
		s.json("PATCH", "/v1/buckets/main/collections/files", `{"data": {"attachment": {"bundle": false}}}`, 200)
		eventually(t, "the zip is removed", func() bool { _, code := zipOf("main--files.zip"); return code == 404 })

		// Writes keep coming while bundles are built: the last bundles
		// hold the last state.
		var wg sync.WaitGroup
		for w := 0; w < 3; w++ {
			wg.Go(func() {
				for i := 0; i < 15; i++ {
					s.json("POST", "/v1/buckets/main/collections/boot/records", fmt.Sprintf(`{"data": {"w": %d, "i": %d}}`, w, i), 201)
					time.Sleep(time.Duration(w*7+3) * time.Millisecond)
				}
			})
		}
		wg.Wait()
		matches("changesets.json.mozlz4", nil)
		matches("startup.json.mozlz4", startup)
	})
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("%s: not after 10 s", what)
}

// mozlz4 round trips, and refuses what is not mozlz4 or too large.
func TestMozLz4(t *testing.T) {
	for _, data := range [][]byte{nil, []byte("[]"), bytes.Repeat([]byte(`{"id": "abc", "last_modified": 123}, `), 5000), []byte("\x00\xff\x10 random-ish")} {
		enc, err := attachment.MozLz4(data)
		if err != nil || !bytes.HasPrefix(enc, []byte("mozLz40\x00")) {
			t.Fatalf("%v %q", err, enc[:min(len(enc), 12)])
		}
		dec, err := attachment.UnMozLz4(enc, len(data))
		if err != nil || !bytes.Equal(dec, data) {
			t.Errorf("round trip of %d bytes: %v", len(data), err)
		}
	}
	enc, _ := attachment.MozLz4([]byte("hello hello hello"))
	if _, err := attachment.UnMozLz4(enc, 5); err == nil {
		t.Error("no bound")
	}
	if _, err := attachment.UnMozLz4([]byte("lz4"), 100); err == nil {
		t.Error("no header")
	}
}

// The bundles' folder belongs to the server: no upload lands there.
func TestBundlesFolderIsReserved(t *testing.T) {
	s := newServer(t, storetest.Backends()["memory"], map[string]string{"attachment.folder": "{bucket_id}", "attachment.randomize": "false"})
	s.json("PUT", "/v1/buckets/bundles", "", 201)
	s.json("PUT", "/v1/buckets/bundles/collections/c", "", 201)
	s.bucket, s.coll = "bundles", "c"
	if a := s.upload("r", 400, part{name: "attachment", filename: "startup.json.txt", content: "x"}); !strings.Contains(a.raw, "bundles/") {
		t.Errorf("%s", a.raw)
	}
}
