package resource

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	jsonpatch "github.com/evanphx/json-patch/v5"

	"kintogo/internal/kerr"
	"kintogo/internal/pyfmt"
	"kintogo/internal/query"
	"kintogo/internal/storage"
)

// PatchKind is how a PATCH body changes an object.
type PatchKind int

// The kinds of PATCH.
const (
	// Shallow merges the body's data into the object's top-level fields
	// (application/json).
	Shallow PatchKind = iota
	// Merge applies RFC 7396 (application/merge-patch+json).
	Merge
	// JSONPatch applies RFC 6902 operations (application/json-patch+json).
	JSONPatch
)

var patchOps = []string{"test", "add", "remove", "replace", "move", "copy"}

// ValidatePatchOps checks a JSON-Patch body: an array of operations, each
// with a known op and a path starting with "/".
func ValidatePatchOps(v any) ([]any, error) {
	ops, ok := v.([]any)
	if !ok {
		return nil, kerr.InvalidParam("body", kerr.Name(""), fmt.Sprintf("%q is not iterable", pyfmt.Str(v)))
	}
	for i, raw := range ops {
		op, ok := raw.(map[string]any)
		if !ok {
			return nil, NotMapping(fmt.Sprint(i), raw)
		}
		name, _ := op["op"].(string)
		known := false
		for _, o := range patchOps {
			known = known || o == name
		}
		if !known {
			return nil, kerr.InvalidParam("body", kerr.Name(fmt.Sprintf("%d.op", i)),
				fmt.Sprintf("%q is not one of %s", pyfmt.Str(op["op"]), strings.Join(patchOps, ", ")))
		}
		path, _ := op["path"].(string)
		if !strings.HasPrefix(path, "/") {
			return nil, kerr.InvalidParam("body", kerr.Name(fmt.Sprintf("%d.path", i)), fmt.Sprintf("%q is not a valid JSON pointer", pyfmt.Str(op["path"])))
		}
		for key := range op {
			switch key {
			case "op", "path", "value", "from":
			default:
				return nil, kerr.InvalidParam("body", kerr.Name(fmt.Sprint(i)), fmt.Sprintf("Unrecognized keys in mapping: \"{'%s': %s}\"", key, pyfmt.Repr(op[key])))
			}
		}
	}
	return ops, nil
}

// NotMapping is colander's error for a value that should be an object.
func NotMapping(name string, v any) *kerr.Error {
	return kerr.InvalidParam("body", kerr.Name(name), fmt.Sprintf("%q is not a mapping type: Does not implement dict-like functionality.", pyfmt.Str(v)))
}

// patchFailed is the 400 of an operation the patch library refused.
func patchFailed(err error) error {
	return kerr.InvalidParam("body", nil, "JSON Patch operation failed: "+err.Error())
}

// ApplyJSONPatch applies RFC 6902 operations to the envelope
// {"data": object, "permissions": {perm: {principal: principal}}} as Kinto
// does: read and write always exist, and a permission path needs no value.
//
// Copies are bounded (limit bytes in all, 413 beyond): each copy can double
// the document, so a short patch could otherwise fill the memory.
func ApplyJSONPatch(ops []any, existing *storage.Object, perms map[string][]string, limit int64) (map[string]any, map[string][]string, error) {
	permDoc := map[string]any{"read": map[string]any{}, "write": map[string]any{}}
	for perm, principals := range perms {
		set := map[string]any{}
		for _, p := range principals {
			set[p] = p
		}
		permDoc[perm] = set
	}
	doc := map[string]any{"data": existing.Body(), "permissions": permDoc}
	for _, raw := range ops {
		op := raw.(map[string]any)
		path := op["path"].(string)
		if strings.HasPrefix(path, "/permissions/read/") || strings.HasPrefix(path, "/permissions/write/") {
			op["value"] = path[strings.LastIndex(path, "/")+1:]
		}
	}
	docJSON, err := json.Marshal(doc)
	if err != nil {
		return nil, nil, err
	}
	opsJSON, err := json.Marshal(ops)
	if err != nil {
		return nil, nil, err
	}
	patch, err := jsonpatch.DecodePatch(opsJSON)
	if err != nil {
		return nil, nil, patchFailed(err)
	}
	opts := jsonpatch.NewApplyOptions()
	opts.AccumulatedCopySizeLimit = limit
	patched, err := patch.ApplyWithOptions(docJSON, opts)
	var copies *jsonpatch.AccumulatedCopySizeError
	if errors.As(err, &copies) {
		return nil, nil, tooLarge(limit)
	}
	if err != nil {
		return nil, nil, patchFailed(err)
	}
	result, err := decodeObject(patched)
	if err != nil {
		return nil, nil, err
	}
	data, ok := result["data"].(map[string]any)
	if !ok {
		return nil, nil, NotMapping("data", result["data"])
	}
	outPerms := map[string][]string{}
	if pm, ok := result["permissions"].(map[string]any); ok {
		for perm, set := range pm {
			principals := []string{}
			switch x := set.(type) {
			case map[string]any:
				for _, v := range x {
					if s, ok := v.(string); ok {
						principals = append(principals, s)
					}
				}
			case []any:
				for _, v := range x {
					if s, ok := v.(string); ok {
						principals = append(principals, s)
					}
				}
			}
			sort.Strings(principals)
			outPerms[perm] = principals
		}
	}
	return data, outPerms, nil
}

// decodeObject decodes a JSON object the patch library produced, numbers
// kept exact.
func decodeObject(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, kerr.Wrap(kerr.Invalid, "JSON Patch produced an invalid document.", err)
	}
	return m, nil
}

// MergePatch applies RFC 7396 to data: null removes a key at any depth,
// objects merge recursively, everything else replaces.
func MergePatch(data, patch map[string]any) map[string]any {
	out := CopyData(data)
	for k, v := range patch {
		if v == nil {
			delete(out, k)
			continue
		}
		if pm, ok := v.(map[string]any); ok {
			base, _ := out[k].(map[string]any)
			out[k] = MergePatch(base, pm)
			continue
		}
		out[k] = v
	}
	return out
}

// ChangedFields is the body of a PATCH answer with Response-Behavior light
// (the top-level fields whose value changed) and diff (those also
// differing from what the client sent).
func ChangedFields(before map[string]any, after *storage.Object, sent map[string]any, diff bool) map[string]any {
	out := map[string]any{}
	body := after.Body()
	for k, v := range body {
		if k == query.IDField || k == query.ModifiedField {
			continue
		}
		if old, had := before[k]; had && reflect.DeepEqual(old, v) {
			continue
		}
		if diff {
			if s, ok := sent[k]; ok && reflect.DeepEqual(s, v) {
				continue
			}
		}
		out[k] = v
	}
	return out
}
