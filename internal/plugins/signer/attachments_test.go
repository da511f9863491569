package signer_test

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"testing"

	"kintogo/internal/storage/storetest"
)

// The reference's test_signer_attachments.py: records with files are
// published with their attachment metadata, replaced files too, and a
// signature of mixed records (one whose file changed, one whose data did)
// is no attachment change for kinto-attachment's guard.
func TestSignerAttachments(t *testing.T) {
	upload := func(f *flow, rid string, content string) {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		w, _ := mw.CreateFormFile("attachment", "image.jpg")
		w.Write([]byte(content))
		mw.Close()
		req, _ := http.NewRequest("POST", f.url+"/v1"+source+"/records/"+rid+"/attachment", &body)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.SetBasicAuth("tarte", "en-pion")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("upload: %d", resp.StatusCode)
		}
	}
	eachBackend(t, func(t *testing.T, open storetest.Open) {
		f := newFlow(t, open, map[string]string{
			"includes":                 "kinto_remote_settings kinto_attachment",
			"attachment.base_path":     t.TempDir(),
			"signer.to_review_enabled": "false",
		})
		f.call("PUT", "/buckets/alice", tarte, "", 201)
		f.call("PUT", source, tarte, "", 201)
		f.call("PUT", "/buckets/alice/groups/scid-reviewers", tarte, `{"data": {"members": ["`+f.users[sam]+`"]}}`, 200)
		if _, ok := f.call("GET", "/", "", "", 200).body["capabilities"].(map[string]any)["attachments"]; !ok {
			t.Fatal("no attachments capability")
		}
		plain := f.call("POST", source+"/records", tarte, `{"data": {"title": "no-attach"}}`, 201).data()["id"].(string)
		withFile := f.call("POST", source+"/records", tarte, `{"data": {"title": "hello"}}`, 201).data()["id"].(string)
		upload(f, withFile, "--fake--")
		f.status(source, tarte, "to-review", 200)
		f.status(source, sam, "to-sign", 200)
		published := f.get(dest+"/records/"+withFile, tarte)
		att, ok := published["attachment"].(map[string]any)
		if !ok {
			t.Fatalf("published without its attachment: %v", published)
		}
		before := att["hash"]
		f.verify(dest)

		// Replace the file and change the other record, then publish both.
		f.call("PATCH", source+"/records/"+plain, tarte, `{"data": {"title": "no-attach-updated"}}`, 200)
		upload(f, withFile, "--other-fake--")
		f.status(source, tarte, "to-review", 200)
		f.status(source, sam, "to-sign", 200)
		f.wantStatus(source, "signed")
		after := f.get(dest+"/records/"+withFile, tarte)["attachment"].(map[string]any)["hash"]
		if after == before {
			t.Fatal("the replaced file was not published")
		}
		if got := f.get(dest+"/records/"+plain, tarte)["title"]; got != "no-attach-updated" {
			t.Fatalf("title %v", got)
		}
		f.verify(dest)
	})
}
