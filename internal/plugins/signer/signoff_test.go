package signer_test

import (
	"regexp"
	"testing"

	"kintogo/internal/storage/storetest"
)

// The scenarios of the reference's tests/signer/test_signoff_flow.py,
// replayed over HTTP: same steps, same expected answers.

const (
	source = "/buckets/alice/collections/scid"
	dest   = "/buckets/alice/collections/dcid"
)

var iso8601 = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}\+00:00$`)

type scenario struct {
	name     string
	settings map[string]string
	run      func(f *flow)
}

func runScenarios(t *testing.T, scenarios []scenario, setUp func(f *flow)) {
	eachBackend(t, func(t *testing.T, open storetest.Open) {
		for _, sc := range scenarios {
			t.Run(sc.name, func(t *testing.T) {
				f := newFlow(t, open, sc.settings)
				setUp(f)
				sc.run(f)
			})
		}
	})
}

func defaultSetUp(f *flow) { f.setUp("/buckets/alice", source) }

var reviewOn = map[string]string{"signer.to_review_enabled": "true"}

func TestCollectionStatus(t *testing.T) {
	runScenarios(t, []scenario{
		{"refreshed even if never signed", nil, func(f *flow) {
			before := f.get(source, tarte)["last_signature_date"].(string)
			f.status(source, tarte, "to-resign", 200)
			after := f.get(source, tarte)
			if after["status"] != "work-in-progress" || !(before < after["last_signature_date"].(string)) {
				f.t.Fatalf("after to-resign: %v (before %s)", after, before)
			}
			if _, ok := after["last_review_date"]; ok {
				f.t.Fatal("last_review_date set")
			}
			if _, ok := after["last_review_request_date"]; ok {
				f.t.Fatal("last_review_request_date set")
			}
		}},
		{"unknown value", nil, func(f *flow) {
			a := f.status(source, tarte, "married", 400)
			if a.body["errno"].(interface{ String() string }).String() != "109" || a.body["error"] != "Bad Request" || a.body["message"] != "Invalid status 'married'" {
				f.t.Fatalf("%v", a.body)
			}
			f.wantStatus(source, "work-in-progress")
		}},
		{"cannot be set to signed manually", nil, func(f *flow) {
			if m := f.status(source, tarte, "signed", 400).body["message"]; m != "Cannot set status to 'signed'" {
				f.t.Fatalf("message %v", m)
			}
			f.wantStatus(source, "work-in-progress")
		}},
		{"work-in-progress manually", nil, func(f *flow) {
			f.status(source, tarte, "to-review", 200)
			f.status(source, tarte, "work-in-progress", 200)
		}},
		{"maintained as signed manually", nil, func(f *flow) {
			f.status(source, tarte, "to-sign", 200)
			f.status(source, tarte, "signed", 200)
			f.call("PATCH", source, tarte, `{"data": {"author": "dali"}}`, 200)
		}},
		{"cannot be removed", nil, func(f *flow) {
			f.status(source, tarte, "to-sign", 200)
			f.call("PUT", source, tarte, `{"data": {}}`, 400)
		}},
		{"cannot be emptied", nil, func(f *flow) {
			f.status(source, tarte, "to-sign", 200)
			f.call("PUT", source, tarte, `{"data": {"status": ""}}`, 400)
		}},
		{"can be reset", nil, func(f *flow) {
			f.status(source, tarte, "to-sign", 200)
			f.wantStatus(source, "signed")
			f.status(source, tarte, "to-review", 200)
			f.wantStatus(source, "to-review")
		}},
		{"work-in-progress when records are posted", nil, func(f *flow) {
			f.wantStatus(source, "work-in-progress")
			f.status(source, tarte, "to-sign", 200)
			f.wantStatus(source, "signed")
			f.call("POST", source+"/records", tarte, `{"data": {"title": "Hallo"}}`, 201)
			f.wantStatus(source, "work-in-progress")
		}},
	}, defaultSetUp)
}

func TestForceReview(t *testing.T) {
	runScenarios(t, []scenario{
		{"to-sign without review", reviewOn, func(f *flow) {
			f.status(source, tarte, "to-sign", 400)
			f.wantStatus(source, "work-in-progress")
		}},
		{"signed to to-sign not allowed", reviewOn, func(f *flow) {
			f.status(source, tarte, "to-review", 200)
			f.status(source, sam, "to-sign", 200)
			f.wantStatus(source, "signed")
			if m := f.status(source, sam, "to-sign", 400).body["message"]; m != "Collection already signed" {
				f.t.Fatalf("message %v", m)
			}
		}},
		{"editor cannot be reviewer", reviewOn, func(f *flow) {
			f.status(source, tarte, "to-review", 200)
			if m := f.status(source, tarte, "to-sign", 403).body["message"]; m != "Last editor cannot review" {
				f.t.Fatalf("message %v", m)
			}
			f.wantStatus(source, "to-review")
			f.status(source, sam, "to-sign", 200)
			f.wantStatus(source, "signed")
			f.verify(dest)
		}},
	}, defaultSetUp)
}

func TestRefreshSignature(t *testing.T) {
	setUp := func(f *flow) {
		defaultSetUp(f)
		f.status(source, tarte, "to-review", 200)
		f.status(source, sam, "to-sign", 200)
		f.wantStatus(source, "signed")
	}
	etag := func(f *flow) string {
		return f.call("HEAD", dest+"/records", tarte, "", 200).header.Get("ETag")
	}
	runScenarios(t, []scenario{
		{"resign keeps the destination timestamp", reviewOn, func(f *flow) {
			before := etag(f)
			f.status(source, tarte, "to-resign", 200)
			if after := etag(f); after != before {
				f.t.Fatalf("ETag %s, was %s", after, before)
			}
		}},
		{"review and re-sign keep the destination timestamp", reviewOn, func(f *flow) {
			before := etag(f)
			f.status(source, sam, "to-review", 200)
			f.status(source, tarte, "to-sign", 200)
			if after := etag(f); after != before {
				f.t.Fatalf("ETag %s, was %s", after, before)
			}
		}},
		{"editor can retrigger", reviewOn, func(f *flow) {
			f.status(source, tarte, "to-resign", 200)
			f.wantStatus(source, "signed")
		}},
		{"reviewer can retrigger", reviewOn, func(f *flow) {
			f.status(source, sam, "to-resign", 200)
			f.wantStatus(source, "signed")
		}},
		{"non reviewer can retrigger", reviewOn, func(f *flow) {
			f.call("PATCH", "/buckets/alice", tarte, `{"permissions": {"write": ["`+f.users["walter:white"]+`"]}}`, 200)
			f.status(source, "walter:white", "to-resign", 200)
			f.wantStatus(source, "signed")
		}},
		{"refreshed with pending changes", reviewOn, func(f *flow) {
			f.call("POST", source+"/records", tarte, `{"data": {"title": "pending change"}}`, 201)
			before := f.get(dest, tarte)["last_modified"]
			f.status(source, tarte, "to-resign", 200)
			f.wantStatus(source, "work-in-progress")
			if f.get(dest, tarte)["last_modified"] == before {
				f.t.Fatal("signature not refreshed")
			}
			f.verify(dest)
		}},
		{"a new signature at each re-sign", nil, func(f *flow) {
			// Remote Settings' browser tests take new signature bytes as
			// the proof of a re-sign: two in a row give two, both valid.
			seen := map[string]bool{f.verify(dest): true}
			for i := 0; i < 2; i++ {
				f.status(source, tarte, "to-resign", 200)
				f.wantStatus(source, "signed")
				sig := f.verify(dest)
				if seen[sig] {
					f.t.Fatalf("re-sign %d gave a signature already served: %s", i+1, sig)
				}
				seen[sig] = true
			}
		}},
	}, setUp)
}

func TestTrackingFields(t *testing.T) {
	runScenarios(t, []scenario{
		{"last edit", nil, func(f *flow) {
			f.call("POST", source+"/records", tarte, `{"data": {"title": "Hallo"}}`, 201)
			got := f.get(source, tarte)
			if got["last_edit_by"] != f.users[tarte] || !iso8601.MatchString(got["last_edit_date"].(string)) {
				f.t.Fatalf("%v", got)
			}
		}},
		{"last review request", nil, func(f *flow) {
			f.status(source, tarte, "to-review", 200)
			got := f.get(source, tarte)
			if got["last_review_request_by"] != f.users[tarte] || !iso8601.MatchString(got["last_review_request_date"].(string)) {
				f.t.Fatalf("%v", got)
			}
		}},
		{"last review", nil, func(f *flow) {
			f.status(source, tarte, "to-sign", 200)
			got := f.get(source, tarte)
			if got["status"] != "signed" || got["last_review_by"] != f.users[tarte] || !iso8601.MatchString(got["last_review_date"].(string)) ||
				got["last_signature_by"] != f.users[tarte] || !iso8601.MatchString(got["last_signature_date"].(string)) {
				f.t.Fatalf("%v", got)
			}
		}},
		{"last review differs from last signature on refresh", nil, func(f *flow) {
			f.status(source, tarte, "to-sign", 200)
			reviewer := f.get(source, tarte)["last_review_by"]
			f.status(source, tarte, "to-resign", 200)
			got := f.get(source, tarte)
			if got["status"] != "signed" || got["last_signature_date"] == got["last_review_date"] || got["last_review_by"] != reviewer {
				f.t.Fatalf("%v", got)
			}
		}},
		{"editor can be reviewer", nil, func(f *flow) {
			f.status(source, tarte, "to-review", 200)
			f.status(source, tarte, "to-sign", 200)
			f.wantStatus(source, "signed")
		}},
		{"tracking fields cannot be changed nor removed", nil, func(f *flow) {
			f.call("POST", source+"/records", tarte, `{"data": {"title": "Hallo"}}`, 201)
			f.status(source, tarte, "to-review", 200)
			f.status(source, sam, "to-sign", 200)
			got := f.get(source, tarte)
			if got["status"] != "signed" {
				f.t.Fatalf("status %v", got["status"])
			}
			for _, field := range []string{"last_edit_by", "last_edit_date", "last_review_request_by", "last_review_request_date",
				"last_review_by", "last_review_date", "last_signature_by", "last_signature_date"} {
				if _, ok := got[field]; !ok {
					f.t.Fatalf("no %s in %v", field, got)
				}
				a := f.call("PATCH", source, tarte, `{"data": {"`+field+`": "changed"}}`, 400)
				if want := "Cannot change <TRACKING_FIELDS." + upper(field) + ": '" + field + "'>"; a.body["message"] != want {
					f.t.Fatalf("message %v, want %s", a.body["message"], want)
				}
				changed := copyMap(got)
				delete(changed, field)
				f.call("PUT", source, tarte, jsonOf(map[string]any{"data": changed}), 400)
			}
		}},
	}, defaultSetUp)
}

var withPreview = map[string]string{
	"signer.to_review_enabled": "true",
	"signer.resources":         source + " -> /buckets/preview/collections/pcid -> " + dest,
	// The reference's scenarios read and write previews and destinations
	// as users, whom the reference makes writers of their buckets:
	// kintogo reserves them to the signer unless this names them.
	"signer.destination_writers": "system.Authenticated",
}

const preview = "/buckets/preview/collections/pcid"

func TestRollbackChanges(t *testing.T) {
	setUp := func(f *flow) {
		defaultSetUp(f)
		f.status(source, tarte, "to-review", 200)
		f.status(source, sam, "to-sign", 200)
		f.wantStatus(source, "signed")
		f.call("PUT", source+"/records/r1", tarte, `{"data": {"title": "Hallo"}}`, 201)
		f.call("PUT", source+"/records/r2", tarte, `{"data": {"title": "Bon dia"}}`, 201)
		f.wantStatus(source, "work-in-progress")
	}
	signedNow := func(f *flow) {
		f.wantStatus(source, "signed")
	}
	runScenarios(t, []scenario{
		{"400 if signed", withPreview, func(f *flow) {
			f.status(source, tarte, "to-review", 200)
			f.status(source, sam, "to-sign", 200)
			if m := f.status(source, tarte, "to-rollback", 400).body["message"]; m != "Collection has no work-in-progress" {
				f.t.Fatalf("message %v", m)
			}
		}},
		{"no pending changes", withPreview, func(f *flow) {
			f.call("DELETE", source+"/records/r1", tarte, "", 200)
			f.call("DELETE", source+"/records/r2", tarte, "", 200)
			f.status(source, tarte, "to-rollback", 200)
			signedNow(f)
		}},
		{"review already requested", withPreview, func(f *flow) {
			f.status(source, tarte, "to-review", 200)
			f.status(source, tarte, "to-rollback", 200)
			signedNow(f)
		}},
		{"tracking fields updated", withPreview, func(f *flow) {
			before := f.get(source, tarte)["last_edit_date"]
			f.status(source, tarte, "to-rollback", 200)
			if after := f.get(source, tarte)["last_edit_date"]; after == before {
				f.t.Fatal("last_edit_date unchanged")
			}
		}},
		{"comments reset", withPreview, func(f *flow) {
			f.call("PATCH", source, tarte, `{"data": {"last_editor_comment": "please check that", "last_reviewer_comment": "looks good"}}`, 200)
			f.status(source, tarte, "to-rollback", 200)
			got := f.get(source, tarte)
			if got["last_editor_comment"] != "" || got["last_reviewer_comment"] != "" {
				f.t.Fatalf("%v", got)
			}
		}},
		{"recreates deleted record", withPreview, func(f *flow) {
			a := f.call("DELETE", source+"/records?_limit=1&_sort=last_modified", tarte, "", 200)
			deleted := a.list()[0].(map[string]any)["id"].(string)
			f.status(source, tarte, "to-rollback", 200)
			if got := f.get(source+"/records/"+deleted, tarte)["title"]; got != "hello" {
				f.t.Fatalf("title %v", got)
			}
		}},
		{"reverts updated records", withPreview, func(f *flow) {
			a := f.call("GET", source+"/records?_limit=1&_sort=last_modified", tarte, "", 200)
			id := a.list()[0].(map[string]any)["id"].(string)
			f.call("PUT", source+"/records/"+id, tarte, `{"data": {"title": "Ave"}}`, 200)
			f.status(source, tarte, "to-rollback", 200)
			if got := f.get(source+"/records/"+id, tarte)["title"]; got != "hello" {
				f.t.Fatalf("title %v", got)
			}
		}},
		{"removes created records", withPreview, func(f *flow) {
			f.status(source, tarte, "to-rollback", 200)
			f.call("GET", source+"/records/r1", tarte, "", 404)
			f.call("GET", source+"/records/r2", tarte, "", 404)
		}},
		{"also resets the preview", withPreview, func(f *flow) {
			setup := f.count(preview, tarte)
			f.status(source, tarte, "to-review", 200)
			before := f.count(preview, tarte)
			if before == setup {
				f.t.Fatal("preview not updated")
			}
			f.status(source, tarte, "to-rollback", 200)
			if after := f.count(preview, tarte); after != setup {
				f.t.Fatalf("preview has %d records, want %d", after, setup)
			}
		}},
		{"preview signature refreshed", withPreview, func(f *flow) {
			before := f.get(preview, tarte)["last_modified"]
			f.status(source, tarte, "to-rollback", 200)
			if f.get(preview, tarte)["last_modified"] == before {
				f.t.Fatal("preview signature unchanged")
			}
			f.verify(preview)
		}},
		{"does not recreate tombstones", withPreview, func(f *flow) {
			f.status(source, tarte, "to-review", 200)
			f.status(source, sam, "to-sign", 200)
			f.call("DELETE", source+"/records/r1", tarte, "", 200)
			f.status(source, tarte, "to-review", 200)
			f.status(source, sam, "to-sign", 200)
			f.call("PUT", source+"/records/r1", tarte, `{"data": {"title": "Servus"}}`, 201)
			f.status(source, tarte, "to-rollback", 200)
			f.call("GET", source+"/records/r1", tarte, "", 404)
			f.call("GET", preview+"/records/r1", tarte, "", 404)
			f.call("GET", dest+"/records/r1", tarte, "", 404)
		}},
	}, setUp)
}

func TestUserGroups(t *testing.T) {
	setUp := func(f *flow) {
		defaultSetUp(f)
		f.call("PUT", "/buckets/alice/groups/scid-editors", tarte, `{"data": {"members": ["`+f.users["emo:billier"]+`"]}}`, 200)
		f.call("PUT", "/buckets/alice/groups/scid-reviewers", tarte, `{"data": {"members": ["`+f.users["ray:weaver"]+`"]}}`, 200)
	}
	runScenarios(t, []scenario{
		{"only editors ask to review", reviewOn, func(f *flow) {
			a := f.status(source, "ray:weaver", "to-review", 403)
			if a.body["errno"].(interface{ String() string }).String() != "121" || a.body["error"] != "Forbidden" || a.body["message"] != "Not in scid-editors group" {
				f.t.Fatalf("%v", a.body)
			}
			f.status(source, "emo:billier", "to-review", 200)
		}},
		{"only reviewers ask to sign", reviewOn, func(f *flow) {
			f.status(source, "emo:billier", "to-review", 200)
			a := f.status(source, "emo:billier", "to-sign", 403)
			if a.body["message"] != "Not in scid-reviewers group" {
				f.t.Fatalf("%v", a.body)
			}
			f.status(source, "ray:weaver", "to-sign", 200)
		}},
	}, setUp)
}

func TestPreviewCollection(t *testing.T) {
	runScenarios(t, []scenario{
		{"updated and signed", withPreview, func(f *flow) {
			f.status(source, tarte, "to-review", 200)
			f.get("/buckets/preview", tarte)
			if _, ok := f.get(preview, tarte)["signatures"]; !ok {
				f.t.Fatal("no signatures on the preview")
			}
			if n := f.count(preview, tarte); n != 2 {
				f.t.Fatalf("%d records in the preview", n)
			}
		}},
		{"receives kinto-admin attributes", withPreview, func(f *flow) {
			f.call("PATCH", source, tarte, `{"data": {"status": "to-review", "displayFields": ["age"], "schema": {"type": "object"}}}`, 200)
			got := f.get(preview, tarte)
			if jsonOf(got["displayFields"]) != `["age"]` || got["schema"] == nil {
				f.t.Fatalf("%v", got)
			}
		}},
		{"preview also re-signed", withPreview, func(f *flow) {
			f.status(source, tarte, "to-review", 200)
			f.status(source, sam, "to-sign", 200)
			destBefore, previewBefore := f.get(dest, tarte)["last_modified"], f.get(preview, tarte)["last_modified"]
			f.wantStatus(source, "signed")
			f.status(source, tarte, "to-resign", 200)
			if f.get(dest, tarte)["last_modified"] == destBefore || f.get(preview, tarte)["last_modified"] == previewBefore {
				f.t.Fatal("not re-signed")
			}
			f.verify(dest)
			f.verify(preview)
		}},
		{"emptied when source records are deleted", withPreview, func(f *flow) {
			f.status(source, tarte, "to-review", 200)
			f.status(source, sam, "to-sign", 200)
			for _, r := range f.call("GET", source+"/records", tarte, "", 200).list() {
				f.call("DELETE", source+"/records/"+r.(map[string]any)["id"].(string), tarte, "", 200)
			}
			f.status(source, tarte, "to-review", 200)
			if n := f.count(preview, tarte); n != 0 {
				f.t.Fatalf("%d records in the preview", n)
			}
		}},
		{"emptied when all source records are deleted at once", withPreview, func(f *flow) {
			f.status(source, tarte, "to-review", 200)
			f.status(source, sam, "to-sign", 200)
			f.call("DELETE", source+"/records", tarte, "", 200)
			f.status(source, tarte, "to-review", 200)
			if n := f.count(preview, tarte); n != 0 {
				f.t.Fatalf("%d records in the preview", n)
			}
		}},
		{"editor comment reset on review", withPreview, func(f *flow) {
			f.call("PATCH", source, tarte, `{"data": {"last_editor_comment": "please check that", "last_reviewer_comment": "looks good"}}`, 200)
			f.status(source, tarte, "to-review", 200)
			if got := f.get(source, tarte)["last_editor_comment"]; got != "" {
				f.t.Fatalf("last_editor_comment %v", got)
			}
		}},
	}, defaultSetUp)
}

func TestCollectionDelete(t *testing.T) {
	settings := map[string]string{
		"signer.to_review_enabled":   "true",
		"signer.destination_writers": "system.Authenticated", // (see withPreview)
		"signer.resources": "/buckets/source -> /buckets/preview -> /buckets/destination\n" +
			"/buckets/source/collections/no-preview -> /buckets/destination/collections/no-preview\n" +
			"/buckets/some-bucket -> /buckets/some-other",
	}
	setUp := func(f *flow) {
		f.setUp("/buckets/source", "/buckets/source/collections/cid")
		f.call("PUT", "/buckets/source/collections/no-preview", tarte, "", 201)
		f.call("PUT", "/buckets/destination/collections/extra", tarte, "", 201)
		f.call("PUT", "/buckets/preview/collections/no-preview", tarte, "", 201)
	}
	runScenarios(t, []scenario{
		{"preview in use", settings, func(f *flow) {
			f.call("DELETE", "/buckets/preview/collections/cid", tarte, "", 403)
		}},
		{"destination in use", settings, func(f *flow) {
			f.call("DELETE", "/buckets/destination/collections/cid", tarte, "", 403)
			f.call("DELETE", "/buckets/destination/collections/no-preview", tarte, "", 403)
		}},
		{"preview once the source is deleted", settings, func(f *flow) {
			f.call("DELETE", "/buckets/source/collections/cid", tarte, "", 200)
			f.call("DELETE", "/buckets/preview/collections/cid", tarte, "", 200)
		}},
		{"unused preview", settings, func(f *flow) {
			f.call("DELETE", "/buckets/preview/collections/no-preview", tarte, "", 200)
		}},
		{"unused destination", settings, func(f *flow) {
			f.call("DELETE", "/buckets/destination/collections/extra", tarte, "", 200)
		}},
	}, setUp)
}

// devSetUp is the setUp of the reference's NoReviewTest and NoPreviewTest:
// the dev bucket's normandy (review off) and onecrl collections, and a
// bucket where a preview would go.
func devSetUp(previewBucket, previewBody string) func(f *flow) {
	return func(f *flow) {
		f.setUp("/buckets/dev", "/buckets/dev/collections/normandy")
		f.call("PUT", previewBucket, tarte, previewBody, 0)
		f.call("PUT", "/buckets/dev/collections/onecrl", tarte, "", 201)
		f.call("PUT", "/buckets/dev/collections/normandy", tarte, "", 200)
		f.call("PUT", "/buckets/dev/groups/normandy-reviewers", tarte, `{"data": {"members": ["`+f.users[tarte]+`"]}}`, 200)
	}
}

func TestNoReview(t *testing.T) {
	settings := map[string]string{
		"signer.resources": "/buckets/dev -> /buckets/stage -> /buckets/prod", "signer.to_review_enabled": "true",
		"signer.dev.normandy.to_review_enabled": "false",
	}
	// The preview bucket readable: explicit 404s rather than 403s.
	setUp := devSetUp("/buckets/stage", `{"permissions": {"read": ["system.Everyone"]}}`)
	runScenarios(t, []scenario{
		{"preview created when review enabled", settings, func(f *flow) {
			f.get("/buckets/stage/collections/onecrl", tarte)
		}},
		{"preview created when review disabled", settings, func(f *flow) {
			f.get("/buckets/stage/collections/normandy", tarte)
		}},
		{"preview updated when review enabled", settings, func(f *flow) {
			f.grows("/buckets/stage/collections/onecrl", "preview not updated", func() {
				f.call("POST", "/buckets/dev/collections/onecrl/records", tarte, `{"data": {"title": "Hallo"}}`, 201)
				f.status("/buckets/dev/collections/onecrl", tarte, "to-review", 200)
			})
		}},
		{"preview updated when review disabled", settings, func(f *flow) {
			f.grows("/buckets/stage/collections/normandy", "preview not updated", func() {
				f.call("POST", "/buckets/dev/collections/normandy/records", tarte, `{"data": {"title": "Hallo"}}`, 201)
				f.status("/buckets/dev/collections/normandy", tarte, "to-sign", 200)
			})
		}},
	}, setUp)
}

func TestNoPreview(t *testing.T) {
	settings := map[string]string{
		"signer.resources": "/buckets/dev -> /buckets/prod", "signer.to_review_enabled": "true",
		"signer.dev.normandy.to_review_enabled": "false",
	}
	setUp := devSetUp("/buckets/preview", "")
	runScenarios(t, []scenario{
		{"no preview when review enabled", settings, func(f *flow) {
			f.call("GET", "/buckets/preview/collections/onecrl", tarte, "", 404)
		}},
		{"no preview when review disabled", settings, func(f *flow) {
			f.call("GET", "/buckets/preview/collections/normandy", tarte, "", 404)
		}},
		{"no preview updated when review enabled", settings, func(f *flow) {
			f.call("POST", "/buckets/dev/collections/onecrl/records", tarte, `{"data": {"title": "Hallo"}}`, 201)
			f.status("/buckets/dev/collections/onecrl", tarte, "to-review", 200)
			f.call("GET", "/buckets/preview/collections/onecrl", tarte, "", 404)
		}},
		{"destination updated when review disabled", settings, func(f *flow) {
			f.grows("/buckets/prod/collections/normandy", "destination not updated", func() {
				f.call("POST", "/buckets/dev/collections/normandy/records", tarte, `{"data": {"title": "Hallo"}}`, 201)
				f.status("/buckets/dev/collections/normandy", tarte, "to-sign", 200)
				f.call("GET", "/buckets/preview/collections/normandy", tarte, "", 404)
			})
		}},
	}, setUp)
}

func TestPerBucket(t *testing.T) {
	settings := map[string]string{
		"signer.resources": "/buckets/stage -> /buckets/preview -> /buckets/prod", "signer.to_review_enabled": "true",
		"signer.stage.specific.to_review_enabled": "false",
	}
	setUp := func(f *flow) {
		f.setUp("/buckets/stage", "/buckets/stage/collections/cid")
		f.call("PUT", "/buckets/stage/groups/specific-reviewers", tarte, `{"data": {"members": ["`+f.users[tarte]+`"]}}`, 201)
	}
	runScenarios(t, []scenario{
		{"destination and preview created and signed", settings, func(f *flow) {
			f.call("PUT", "/buckets/stage/collections/pim", tarte, "", 201)
			for _, c := range []string{"/buckets/preview/collections/pim", "/buckets/prod/collections/pim"} {
				if _, ok := f.get(c, tarte)["signatures"]; !ok {
					f.t.Fatalf("%s not signed", c)
				}
			}
			f.wantStatus("/buckets/stage/collections/pim", "signed")
		}},
		{"review overridden for a collection", settings, func(f *flow) {
			f.call("PUT", "/buckets/stage/collections/specific", tarte, `{"data": {"status": "to-sign"}}`, 201)
		}},
	}, setUp)
}

func TestGroupCreation(t *testing.T) {
	settings := map[string]string{
		"signer.to_review_enabled": "true", "signer.resources": "/buckets/stage;/buckets/preview;/buckets/prod",
	}
	const (
		editors   = "/buckets/stage/groups/good-editors"
		reviewers = "/buckets/stage/groups/good-reviewers"
		coll      = "/buckets/stage/collections/good"
	)
	other := "otra:persona"
	setUp := func(f *flow) { f.call("PUT", "/buckets/stage", tarte, "", 201) }
	runScenarios(t, []scenario{
		{"not touched if existing", settings, func(f *flow) {
			before := f.call("PUT", editors, tarte, "", 201).data()["last_modified"]
			f.call("PUT", coll, tarte, "", 201)
			if after := f.get(editors, tarte)["last_modified"]; after != before {
				f.t.Fatalf("editors changed: %v != %v", after, before)
			}
		}},
		{"created if missing", settings, func(f *flow) {
			f.call("GET", editors, tarte, "", 404)
			f.call("GET", reviewers, tarte, "", 404)
			f.call("PUT", coll, tarte, "", 201)
			f.get(editors, tarte)
			f.get(reviewers, tarte)
		}},
		{"groups may write the source", settings, func(f *flow) {
			f.call("PUT", editors, tarte, `{"data": {"members": ["`+f.users[other]+`"]}}`, 201)
			f.call("PUT", coll, tarte, "", 201)
			f.call("POST", coll+"/records", other, "", 201)
		}},
		{"permissions and members", settings, func(f *flow) {
			f.call("PUT", coll, tarte, "", 201)
			for _, g := range []string{editors, reviewers} {
				a := f.call("GET", g, tarte, "", 200)
				if jsonOf(a.body["permissions"].(map[string]any)["write"]) != jsonOf([]string{f.users[tarte]}) {
					f.t.Fatalf("%s: %v", g, a.body)
				}
			}
			if got := jsonOf(f.get(editors, tarte)["members"]); got != jsonOf([]string{f.users[tarte]}) {
				f.t.Fatalf("editors %s", got)
			}
			if got := jsonOf(f.get(reviewers, tarte)["members"]); got != "[]" {
				f.t.Fatalf("reviewers %s", got)
			}
		}},
		{"refused without group:create", settings, func(f *flow) {
			f.call("PATCH", "/buckets/stage", tarte, `{"permissions": {"collection:create": ["`+f.users[other]+`"]}}`, 200)
			f.call("PUT", coll, other, "", 403)
			f.call("GET", coll, tarte, "", 404)
			f.call("GET", editors, tarte, "", 404)
			f.call("GET", reviewers, tarte, "", 404)
		}},
		{"created with group:create", settings, func(f *flow) {
			f.call("PATCH", "/buckets/stage", tarte, `{"permissions": {"collection:create": ["`+f.users[other]+`"], "group:create": ["`+f.users[other]+`"]}}`, 200)
			f.call("PUT", coll, other, "", 201)
			f.get(editors, tarte)
			f.get(reviewers, tarte)
		}},
	}, setUp)
}

func TestBatchCreation(t *testing.T) {
	settings := map[string]string{"signer.resources": "/buckets/main-workspace -> /buckets/main-preview -> /buckets/main",
		"signer.destination_writers": "system.Authenticated"} // (see withPreview)
	setUp := func(f *flow) {
		for _, b := range []string{"/buckets/main-workspace", "/buckets/main-preview", "/buckets/main"} {
			f.call("PUT", b, tarte, "", 201)
		}
		f.call("POST", "/batch", tarte, `{"requests": [{"method": "PUT", "path": "/buckets/main-workspace/collections/a"}]}`, 200)
		f.call("GET", "/buckets/main-preview/collections/a", "", "", 200)
		f.call("GET", "/buckets/main/collections/a", "", "", 200)
	}
	runScenarios(t, []scenario{
		{"batch creation", settings, func(f *flow) {
			f.call("POST", "/batch", tarte, `{"requests": [{"method": "PUT", "path": "/buckets/main-workspace/collections/b"},
				{"method": "PATCH", "path": "/buckets/main-workspace/collections/a", "body": {"data": {"foo": 42}}}]}`, 200)
			f.call("GET", "/buckets/main-preview/collections/b", "", "", 200)
			f.call("GET", "/buckets/main/collections/b", "", "", 200)
		}},
	}, setUp)
}

// A plural DELETE of a source's records marks it in progress once; a
// record written after a review request in the same batch marks it in
// progress again.
func TestInProgressOncePerRequest(t *testing.T) {
	eachBackend(t, func(t *testing.T, open storetest.Open) {
		f := newFlow(t, open, map[string]string{"includes": "kinto_remote_settings kinto.plugins.history"})
		defaultSetUp(f)
		for i := 0; i < 20; i++ {
			f.call("POST", source+"/records", tarte, `{"data": {}}`, 201)
		}
		f.status(source, tarte, "to-sign", 200)
		updates := func() int {
			return len(f.call("GET", "/buckets/alice/history?resource_name=collection&collection_id=scid&user_id=plugin:remote-settings", tarte, "", 200).list())
		}
		before := updates()
		f.call("DELETE", source+"/records", tarte, "", 200)
		f.wantStatus(source, "work-in-progress")
		if n := updates() - before; n != 1 {
			t.Fatalf("%d plugin updates of the source for the plural DELETE, want 1", n)
		}
		f.call("POST", "/batch", tarte, `{"requests": [
			{"method": "POST", "path": "`+source+`/records", "body": {"data": {"n": 1}}},
			{"method": "PATCH", "path": "`+source+`", "body": {"data": {"status": "to-review"}}},
			{"method": "POST", "path": "`+source+`/records", "body": {"data": {"n": 2}}}]}`, 200)
		f.wantStatus(source, "work-in-progress")
	})
}

// A review request keeps the editor's comment it sends, even the one the
// collection had (the reference resets it only when the request has none).
func TestEditorCommentKeptWhenSent(t *testing.T) {
	f := newFlow(t, storetest.Memory, withPreview)
	defaultSetUp(f)
	f.call("PATCH", source, tarte, `{"data": {"last_editor_comment": "please"}}`, 200)
	f.call("PATCH", source, tarte, `{"data": {"status": "to-review", "last_editor_comment": "please"}}`, 200)
	if got := f.get(source, tarte)["last_editor_comment"]; got != "please" {
		t.Fatalf("last_editor_comment %v", got)
	}
}
