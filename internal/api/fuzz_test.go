package api

import (
	"testing"

	"kintogo/internal/kerr"
	"kintogo/internal/resource"
	"kintogo/internal/storage"
)

// FuzzBody feeds arbitrary bodies to the request-body parsers: they must
// never panic, and every refusal must be a validation error (a 400).
func FuzzBody(f *testing.F) {
	for _, seed := range []string{
		`{"data": {"title": "x", "n": 1e400}, "permissions": {"read": ["system.Everyone"]}}`,
		`{"data": [1, 2]}`, `[1, 2]`, `{"data": "x"}`, `{"permissions": {"fly": []}}`, `{"permissions": {"read": [1]}}`,
		`{"data": {"members": ["system.Everyone"]}}`, `{"foo": 1}`, `{"data":`, ``, `null`,
		`[{"op": "add", "path": "/data/x", "value": 1}, {"op": "add", "path": "/permissions/read/a"}]`,
		`[{"op": "jump", "path": "/a"}]`, `[{"op": "move", "from": "/data/a", "path": "/data/b"}]`,
	} {
		f.Add(seed)
	}
	existing := &storage.Object{ID: "r", LastModified: 1, Data: map[string]any{"a": "b"}}
	f.Fuzz(func(t *testing.T, body string) {
		check := func(err error) {
			if err != nil && !kerr.Is(err, kerr.Invalid) {
				t.Fatalf("%q: %v is not a validation error", body, err)
			}
		}
		v, err := decodeJSON([]byte(body))
		check(err)
		if err != nil {
			return
		}
		for _, k := range []*resource.Kind{resource.Bucket, resource.Collection, resource.Group, resource.Record} {
			env, err := parseEnvelope(v, k)
			check(err)
			if err == nil && env.data != nil {
				check(validateData(k, copyData(env.data)))
				mergePatch(existing.Data, env.data)
			}
		}
		ops, err := validatePatchOps(v)
		check(err)
		if err == nil {
			_, _, err = applyJSONPatch(ops, existing, map[string][]string{"write": {"a"}})
			check(err)
		}
	})
}
