package attachment_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kintogo/internal/app/apptest"
	"kintogo/internal/httpapi"
	"kintogo/internal/storage/storetest"
)

type server struct {
	t            *testing.T
	url          string
	dir          string // attachment.base_path
	auth         string
	bucket, coll string // of uploads
}

func newServer(t *testing.T, open storetest.Open, extra map[string]string) *server {
	dir := t.TempDir()
	settings := map[string]string{
		"includes": "kinto_attachment kinto.plugins.history", "multiauth.policies": "basicauth", "userid_hmac_secret": "s",
		"attachment.base_path": dir, "attachment.folder": "{bucket_id}/{collection_id}",
		"experimental_collection_schema_validation": "true",
	}
	for k, v := range extra {
		settings[k] = v
	}
	ts := httptest.NewServer(apptest.Server(t, open(t), httpapi.Options{}, settings))
	t.Cleanup(ts.Close)
	s := &server{t: t, url: ts.URL, dir: dir, auth: "mat:secret", bucket: "fennec", coll: "fonts"}
	s.json("PUT", "/v1/buckets/fennec", "", 201)
	s.json("PUT", "/v1/buckets/fennec/collections/fonts", `{"data": {"schema": {"type": "object", "properties": {"author": {"type": "string"}}}}}`, 201)
	return s
}

type answer struct {
	code   int
	header http.Header
	body   map[string]any
	raw    string
}

func (s *server) do(method, path, contentType string, body io.Reader, header ...string) answer {
	s.t.Helper()
	req, _ := http.NewRequest(method, s.url+path, body)
	if user, pw, ok := strings.Cut(s.auth, ":"); ok {
		req.SetBasicAuth(user, pw)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{code: resp.StatusCode, header: resp.Header, raw: string(raw)}
	json.Unmarshal(raw, &a.body)
	return a
}

func (s *server) json(method, path, body string, want int) answer {
	s.t.Helper()
	a := s.do(method, path, "application/json", strings.NewReader(body))
	if want != 0 && a.code != want {
		s.t.Fatalf("%s %s: %d %s, want %d", method, path, a.code, a.raw, want)
	}
	return a
}

// part is a multipart part: a file when filename is set (or file is true).
type part struct {
	name, filename, content string
	file                    bool
}

func (s *server) upload(record string, want int, parts ...part) answer {
	s.t.Helper()
	if len(parts) == 0 {
		parts = []part{{name: "attachment", filename: "image.jpg", content: "--fake--"}}
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, p := range parts {
		if p.filename != "" || p.file {
			w, _ := mw.CreateFormFile(p.name, p.filename)
			w.Write([]byte(p.content))
		} else {
			mw.WriteField(p.name, p.content)
		}
	}
	mw.Close()
	a := s.do("POST", "/v1/buckets/"+s.bucket+"/collections/"+s.coll+"/records/"+record+"/attachment", mw.FormDataContentType(), &body)
	if want != 0 && a.code != want {
		s.t.Fatalf("upload to %s: %d %s, want %d", record, a.code, a.raw, want)
	}
	return a
}

// exists reports whether the file at an attachment's location exists.
func (s *server) exists(location string) bool {
	_, err := os.Stat(filepath.Join(s.dir, filepath.FromSlash(location)))
	return err == nil
}

func eachBackend(t *testing.T, fn func(t *testing.T, open storetest.Open)) {
	for name, open := range storetest.Backends() {
		t.Run(name, func(t *testing.T) { fn(t, open) })
	}
}

func TestUploadServeReplaceDelete(t *testing.T) {
	eachBackend(t, func(t *testing.T, open storetest.Open) {
		s := newServer(t, open, nil)
		a := s.upload("r1", 201, part{name: "attachment", filename: "my-report.pdf", content: "--binary--"},
			part{name: "data", content: `{"author": "frutiger"}`}, part{name: "permissions", content: `{"read": ["system.Everyone"]}`})
		meta := a.body
		loc, _ := meta["location"].(string)
		sum := sha256.Sum256([]byte("--binary--"))
		if meta["filename"] != "my-report.pdf" || meta["mimetype"] != "application/octet-stream" || meta["size"] != float64(10) ||
			meta["hash"] != hex.EncodeToString(sum[:]) ||
			!strings.HasPrefix(loc, "fennec/fonts/") || !strings.HasSuffix(loc, ".pdf") || strings.Contains(loc, "report") {
			t.Fatalf("attachment: %v", meta)
		}
		if got := a.header.Get("Location"); got != s.url+"/v1/buckets/fennec/collections/fonts/records/r1" {
			t.Errorf("Location: %s", got)
		}
		rec := s.json("GET", "/v1/buckets/fennec/collections/fonts/records/r1", "", 200)
		data := rec.body["data"].(map[string]any)
		if data["author"] != "frutiger" || data["attachment"].(map[string]any)["location"] != loc {
			t.Errorf("record: %v", data)
		}
		if perms := rec.body["permissions"].(map[string]any); perms["read"] == nil {
			t.Errorf("permissions: %v", perms)
		}
		// Served by kintogo under the capability's base_url.
		root := s.json("GET", "/v1/", "", 200)
		base := root.body["capabilities"].(map[string]any)["attachments"].(map[string]any)["base_url"].(string)
		if base != s.url+"/attachments/" {
			t.Errorf("base_url: %s", base)
		}
		f := s.do("GET", "/attachments/"+loc, "", nil)
		if f.code != 200 || f.raw != "--binary--" || f.header.Get("Content-Type") != "application/pdf" || f.header.Get("ETag") == "" {
			t.Errorf("file: %d %v %q", f.code, f.header, f.raw)
		}
		if r := s.do("GET", "/attachments/"+loc, "", nil, "Range", "bytes=2-7"); r.code != 206 || r.raw != "binary" {
			t.Errorf("range: %d %q", r.code, r.raw)
		}
		if r := s.do("GET", "/attachments/"+loc, "", nil, "If-None-Match", f.header.Get("ETag")); r.code != 304 {
			t.Errorf("If-None-Match: %d", r.code)
		}
		for _, bad := range []string{"/attachments/../secret", "/attachments/.tmp/x", "/attachments/fennec", "/attachments/%2e%2e%2fx", "/attachments/missing.pdf"} {
			if r := s.do("GET", bad, "", nil); r.code != 404 {
				t.Errorf("%s: %d", bad, r.code)
			}
		}
		// Replaced: the old file goes once the new one is linked.
		b := s.upload("r1", 200)
		loc2 := b.body["location"].(string)
		if s.exists(loc) || !s.exists(loc2) {
			t.Errorf("after replacement: old %v new %v", s.exists(loc), s.exists(loc2))
		}
		// Metadata belongs to the plugin.
		if r := s.json("PATCH", "/v1/buckets/fennec/collections/fonts/records/r1", `{"data": {"attachment": {"manual": "true"}}}`, 400); !strings.Contains(r.raw, "Attachment metadata cannot be modified") {
			t.Errorf("manual change: %s", r.raw)
		}
		s.json("PATCH", "/v1/buckets/fennec/collections/fonts/records/r1", `{"data": {"author": "someone"}}`, 200)
		// DELETE of the attachment leaves attachment: null.
		if r := s.do("DELETE", "/v1/buckets/fennec/collections/fonts/records/r1/attachment", "", nil); r.code != 204 {
			t.Fatalf("delete: %d %s", r.code, r.raw)
		}
		if s.exists(loc2) {
			t.Error("deleted attachment's file remains")
		}
		data = s.json("GET", "/v1/buckets/fennec/collections/fonts/records/r1", "", 200).body["data"].(map[string]any)
		if v, ok := data["attachment"]; !ok || v != nil {
			t.Errorf("after delete: %v", data)
		}
		// Deleting the record, its collection or its bucket deletes files.
		for _, target := range []string{"/v1/buckets/fennec/collections/fonts/records/r2", "/v1/buckets/fennec/collections/fonts", "/v1/buckets/fennec"} {
			if target != "/v1/buckets/fennec/collections/fonts/records/r2" {
				s.json("PUT", "/v1/buckets/fennec", "", 0)
				s.json("PUT", "/v1/buckets/fennec/collections/fonts", "", 0)
			}
			loc := s.upload("r2", 201).body["location"].(string)
			s.json("DELETE", target, "", 200)
			if s.exists(loc) {
				t.Errorf("deleting %s left its file", target)
			}
		}
	})
}

func TestUploadRefusals(t *testing.T) {
	s := newServer(t, storetest.Memory, map[string]string{"attachment.max_size_bytes": "10",
		"attachment.resources.fennec.big.max_size_bytes": "0"})
	check := func(a answer, code, errno int, message string) {
		t.Helper()
		if a.code != code || a.body["errno"] != float64(errno) || !strings.Contains(a.raw, message) {
			t.Errorf("got %d %s, want %d errno %d %q", a.code, a.raw, code, errno, message)
		}
	}
	check(s.upload("r", 0, part{name: "attachment", filename: "virus.exe", content: "x"}), 400, 107, "body: File extension is not allowed.")
	check(s.upload("r", 0, part{name: "attachment", filename: "a.jpg", content: "--exceeds-limit--"}), 400, 107, "File size (17 bytes) exceeds the limit (10 bytes).")
	s.upload("r", 201, part{name: "attachment", filename: "a.jpg", content: "0123456789"})
	check(s.upload("r", 0, part{name: "attachment", file: true, content: "x"}), 400, 107, "body: Filename is required.")
	check(s.upload("r", 0, part{name: "fichierjoint", filename: "a.jpg", content: "x"}), 400, 108, "Attachment missing.")
	check(s.upload("r", 0, part{name: "attachment", filename: "a.jpg", content: "x"}, part{name: "my_field", content: "v"}), 400, 108, "body: 'my_field' not in ('data', 'permissions')")
	check(s.upload("r", 0, part{name: "attachment", filename: "a.jpg", content: "x"}, part{name: "data", content: "{>author: 12}"}), 400, 108, "body: data is not valid JSON")
	check(s.upload("r", 0, part{name: "attachment", filename: "a.jpg", content: "x"}, part{name: "data", filename: "data", content: "{}"}), 400, 108, "body: 'data' field should be passed as form data, not files")
	check(s.upload("r", 0, part{name: "attachment", filename: "a.jpg", content: "x"}, part{name: "data", content: `{"author": 12}`}), 400, 107, "author")
	check(s.do("POST", "/v1/buckets/fennec/collections/fonts/records/r/attachment", "application/json", strings.NewReader("{}")), 400, 107, "Content-Type should be multipart/form-data")
	check(s.do("POST", "/v1/buckets/fennec/collections/fonts/records/r/attachment", "multipart/form-data", strings.NewReader("{}")), 400, 107, "Invalid boundary in multipart form: ''")
	// A body cut in the middle of the file is the client's error, not the
	// server's.
	truncated := "--B\r\nContent-Disposition: form-data; name=\"attachment\"; filename=\"a.jpg\"\r\n\r\nxxx"
	check(s.do("POST", "/v1/buckets/fennec/collections/fonts/records/r/attachment", "multipart/form-data; boundary=B", strings.NewReader(truncated)), 400, 107, "Invalid multipart body")
	if a := s.do("GET", "/v1/buckets/fennec/collections/fonts/records/r/attachment", "", nil); a.code != 405 {
		t.Errorf("GET: %d", a.code)
	}
	// The per-collection override lifts the global limit.
	s.json("PUT", "/v1/buckets/fennec/collections/big", "", 201)
	s.coll = "big"
	s.upload("r", 201, part{name: "attachment", filename: "a.jpg", content: "--exceeds-limit--"})
	s.coll = "fonts"
	// Permissions: anonymous 401, another user 403, before any file is kept.
	s.auth = ""
	check(s.upload("r", 0), 401, 104, "")
	s.auth = "jean-louis:pw"
	check(s.upload("r", 0), 403, 121, "")
	check(s.upload("new", 0), 403, 121, "")
	entries, _ := os.ReadDir(filepath.Join(s.dir, ".tmp"))
	if len(entries) != 0 {
		t.Errorf("temporary files left: %v", entries)
	}
	// The heartbeat checks the files.
	if a := s.do("GET", "/v1/__heartbeat__", "", nil); a.code != 200 || a.body["attachments"] != true {
		t.Errorf("heartbeat: %d %s", a.code, a.raw)
	}
}

func TestKeepOldFilesAndBaseURL(t *testing.T) {
	s := newServer(t, storetest.Memory, map[string]string{"attachment.keep_old_files": "true",
		"attachment.base_url": "https://cdn.example.com/files/", "attachment.randomize": "false"})
	first := s.upload("r", 201).body["location"].(string)
	second := s.upload("r", 200).body["location"].(string)
	if first != "https://cdn.example.com/files/fennec/fonts/image.jpg" {
		t.Errorf("location with base_url: %s", first)
	}
	if first == second || !strings.HasSuffix(second, "image-1.jpg") {
		t.Errorf("a kept file's name is not reused: %s %s", first, second)
	}
	rel := func(loc string) string { return strings.TrimPrefix(loc, "https://cdn.example.com/files/") }
	s.json("DELETE", "/v1/buckets/fennec/collections/fonts/records/r", "", 200)
	if !s.exists(rel(first)) || !s.exists(rel(second)) {
		t.Error("keep_old_files: files were deleted")
	}
	caps := s.json("GET", "/v1/", "", 200).body["capabilities"].(map[string]any)["attachments"].(map[string]any)
	if caps["base_url"] != "https://cdn.example.com/files/" || caps["version"] != "9.0.1" {
		t.Errorf("capability: %v", caps)
	}
	if a := s.do("GET", "/attachments/"+rel(first), "", nil); a.code == 200 {
		t.Error("with a base_url, kintogo does not serve the files")
	}
}
