package signer_test

import (
	"bytes"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kintogo/internal/storage/storetest"
)

// What clients verify changes only through review (issue 24's probe): a
// preview's and a destination's buckets, collections and records are
// written by the signer alone (and signer.destination_writers), whoever
// created the source or came first; to-resign signs again exactly what was
// published; a change of the source's published fields is a change to
// review.
func TestSignedDataChangesOnlyThroughReview(t *testing.T) {
	settings := map[string]string{"signer.to_review_enabled": "true",
		"signer.resources": "/buckets/main-workspace -> /buckets/main-preview -> /buckets/main"}
	const ws, pv, dst = "/buckets/main-workspace/collections/c", "/buckets/main-preview/collections/c", "/buckets/main/collections/c"
	eachBackend(t, func(t *testing.T, open storetest.Open) {
		f := newFlow(t, open, settings)
		// Nobody takes the published buckets before the signer.
		for _, b := range []string{"/buckets/main", "/buckets/main-preview"} {
			if a := f.call("PUT", b, "edith:her", "", 0); a.code != 403 {
				t.Fatalf("PUT %s by a user: %d %v", b, a.code, a.body)
			}
		}
		f.setUp("/buckets/main-workspace", ws)
		f.status(ws, tarte, "to-review", 200)
		f.status(ws, sam, "to-sign", 200)
		sig := f.verify(dst)
		// The source's creator (an editor) writes nothing published.
		for _, w := range []struct{ method, path, body string }{
			{"PUT", dst + "/records/injected", `{"data": {"title": "evil"}}`},
			{"DELETE", dst + "/records/in-french", ""},
			{"PATCH", dst, `{"permissions": {"read": []}}`},
			{"PATCH", dst, `{"data": {"schema": {"type": "string"}}}`},
			{"PUT", pv + "/records/injected", `{"data": {"title": "evil"}}`},
			{"PATCH", "/buckets/main", `{"permissions": {"write": ["system.Authenticated"]}}`},
			{"DELETE", "/buckets/main-preview", ""},
			{"PUT", "/buckets/main/collections/other", ""},
		} {
			if a := f.call(w.method, w.path, tarte, w.body, 0); a.code != 403 {
				t.Errorf("%s %s by the source's creator: %d %v", w.method, w.path, a.code, a.body)
			}
		}
		if n := f.call("GET", dst+"/records", "", "", 200).list(); len(n) != 2 {
			t.Errorf("the destination holds %d records, want the 2 reviewed", len(n))
		}
		// A schema changed in the source waits for review; to-resign
		// signs what was published again.
		f.call("PATCH", ws, tarte, `{"data": {"schema": {"type": "object", "required": ["title"]}}}`, 200)
		if st := f.get(ws, tarte)["status"]; st != "work-in-progress" {
			t.Errorf("status after a schema change: %v, want work-in-progress", st)
		}
		f.status(ws, "edith:her", "to-resign", 200)
		if got := f.get(dst, ""); got["schema"] != nil {
			t.Errorf("to-resign published the unreviewed schema: %v", got["schema"])
		}
		if again := f.verify(dst); again == "" || strings.Contains(again, "evil") {
			t.Errorf("signature after to-resign: %q (was %q)", again, sig)
		}
		// Through review, it is published.
		f.status(ws, tarte, "to-review", 200)
		f.status(ws, sam, "to-sign", 200)
		if got := f.get(dst, ""); got["schema"] == nil {
			t.Errorf("the reviewed schema is not published: %v", got)
		}
		f.verify(dst)
	})
}

// A file the destination (or the preview) serves stays while a published
// record names it: an unreviewed upload to the source does not delete it,
// a rollback finds it again, and once the approval publishes the new file
// the old one goes.
func TestPublishedAttachmentsStay(t *testing.T) {
	eachBackend(t, func(t *testing.T, open storetest.Open) {
		dir := t.TempDir()
		f := newFlow(t, open, map[string]string{"signer.to_review_enabled": "true",
			"includes": "kinto_remote_settings kinto_attachment", "attachment.base_path": dir})
		defaultSetUp(f)
		upload := func(content string) string {
			t.Helper()
			var body bytes.Buffer
			mw := multipart.NewWriter(&body)
			w, _ := mw.CreateFormFile("attachment", "cert.txt")
			w.Write([]byte(content))
			mw.Close()
			req, _ := http.NewRequest("POST", f.url+"/v1"+source+"/records/withfile/attachment", &body)
			req.Header.Set("Content-Type", mw.FormDataContentType())
			name, pw, _ := strings.Cut(tarte, ":")
			req.SetBasicAuth(name, pw)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var meta map[string]any
			json.NewDecoder(resp.Body).Decode(&meta)
			if resp.StatusCode >= 300 {
				t.Fatalf("upload: %d %v", resp.StatusCode, meta)
			}
			return meta["location"].(string)
		}
		exists := func(loc string) bool {
			_, err := os.Stat(filepath.Join(dir, filepath.FromSlash(loc)))
			return err == nil
		}
		first := upload("first")
		f.status(source, tarte, "to-review", 200)
		f.status(source, sam, "to-sign", 200)
		second := upload("second") // unreviewed
		time.Sleep(50 * time.Millisecond)
		if !exists(first) {
			t.Fatalf("an unreviewed upload deleted the file the destination serves")
		}
		f.status(source, tarte, "to-rollback", 200)
		rec := f.get(source+"/records/withfile", tarte)
		if loc := rec["attachment"].(map[string]any)["location"]; loc != first || !exists(first) {
			t.Fatalf("after the rollback the source names %v (exists: %v), want %s", loc, exists(first), first)
		}
		second = upload("second again")
		f.status(source, tarte, "to-review", 200)
		f.status(source, sam, "to-sign", 200)
		deadline := time.Now().Add(5 * time.Second)
		for exists(first) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if exists(first) || !exists(second) {
			t.Errorf("after the approval: first exists %v, second exists %v", exists(first), exists(second))
		}
	})
}
