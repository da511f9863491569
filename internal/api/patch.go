package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strings"

	jsonpatch "github.com/evanphx/json-patch/v5"

	"kintogo/internal/kerr"
	"kintogo/internal/pyfmt"
	"kintogo/internal/query"
	"kintogo/internal/storage"
)

var patchOps = []string{"test", "add", "remove", "replace", "move", "copy"}

// validatePatchOps checks a JSON-Patch body: an array of operations, each
// with a known op and a path starting with "/".
func validatePatchOps(v any) ([]any, error) {
	ops, ok := v.([]any)
	if !ok {
		return nil, kerr.InvalidParam("body", kerr.Name(""), fmt.Sprintf("%q is not iterable", pyfmt.Str(v)))
	}
	for i, raw := range ops {
		op, ok := raw.(map[string]any)
		if !ok {
			return nil, notMapping(fmt.Sprint(i), raw)
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

// copyLimit bounds the bytes JSON-Patch copies may add to a document: what
// a request body may hold (the result is checked against it too), or 1 MiB
// when max_body_bytes sets no limit.
func (s *Server) copyLimit() int64 {
	if s.maxBody > 0 {
		return s.maxBody
	}
	return 1 << 20
}

// patchFailed is the 400 of an operation the patch library refused.
func patchFailed(err error) error {
	return kerr.InvalidParam("body", nil, "JSON Patch operation failed: "+err.Error())
}

func decodeObject(raw []byte) (map[string]any, error) {
	v, err := decodeJSON(raw)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, notMapping("", v)
	}
	return m, nil
}

// applyJSONPatch applies RFC 6902 operations to the envelope
// {"data": object, "permissions": {perm: {principal: principal}}} as Kinto
// does: read and write always exist, and a permission path needs no value.
//
// Copies are bounded (limit bytes in all, 413 beyond): each copy can double
// the document, so a short patch could otherwise fill the memory.
func applyJSONPatch(ops []any, existing *storage.Object, perms map[string][]string, limit int64) (map[string]any, map[string][]string, error) {
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
	var tooLarge *jsonpatch.AccumulatedCopySizeError
	if errors.As(err, &tooLarge) {
		return nil, nil, &kerr.Error{Kind: kerr.TooLarge, Message: fmt.Sprintf("Resulting object is larger than %d bytes.", limit)}
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
		return nil, nil, notMapping("data", result["data"])
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

// mergePatch applies RFC 7396 to data: null removes a key at any depth,
// objects merge recursively, everything else replaces.
func mergePatch(data, patch map[string]any) map[string]any {
	out := copyData(data)
	for k, v := range patch {
		if v == nil {
			delete(out, k)
			continue
		}
		if pm, ok := v.(map[string]any); ok {
			base, _ := out[k].(map[string]any)
			out[k] = mergePatch(base, pm)
			continue
		}
		out[k] = v
	}
	return out
}

// patched is what a PATCH produced: the written object, and what the
// light and diff answers compare it with.
type patched struct {
	written
	before, sent map[string]any
}

// patchObject is PATCH on an object, with plain JSON (shallow merge),
// JSON merge-patch or JSON-Patch bodies.
func (s *Server) patchObject(k kindRoute) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		p := k.path(r)
		ctx := r.Context()
		in := readWrite(r, k.kind, mediaJSON, mediaMergePatch, mediaJSONPatch)
		ifMatch, ifNoneMatch, precondErr := preconditions(r)
		behavior := r.Header.Get("Response-Behavior")
		res, err := update(s, ctx, func(tx storage.Tx) (patched, error) {
			var res patched
			if err := s.prepare(ctx, tx, c, p); err != nil {
				return res, err
			}
			if err := s.authorizeObject(ctx, tx, c, p, "write"); err != nil {
				return res, err
			}
			if err := firstErr(checkAccept(r), in.err, precondErr); err != nil {
				return res, err
			}
			switch behavior {
			case "", "full", "light", "diff":
			default:
				return res, kerr.InvalidParam("header", kerr.Name("Response-Behavior"), fmt.Sprintf("%q is not one of full, light, diff", behavior))
			}
			existing, err := tx.Get(ctx, p.Scope(), p.ID)
			if err != nil {
				return res, err
			}
			if err := checkObjectPreconditions(ctx, tx, p, ifMatch, ifNoneMatch, existing); err != nil {
				return res, err
			}
			current, err := tx.Permissions(ctx, p.URI())
			if err != nil {
				return res, err
			}
			visible, err := visiblePermissions(ctx, tx, p.URI(), c.principals())
			if err != nil {
				return res, err
			}
			var data map[string]any
			var newPerms map[string][]string
			switch in.media {
			case mediaJSONPatch:
				d, pm, err := applyJSONPatch(in.ops, existing, visible, s.copyLimit())
				if err != nil {
					return res, err
				}
				data, newPerms, res.sent = d, replacePermissions(k.kind, pm), d
			case mediaMergePatch:
				if in.env.data == nil && !in.env.hasPerms {
					return res, kerr.InvalidParam("body", nil, "Provide at least one of data or permissions")
				}
				data, res.sent = mergePatch(existing.Data, in.env.data), in.env.data
				if in.env.hasPerms {
					merged := map[string][]string{}
					for perm, list := range visible {
						merged[perm] = list
					}
					for perm, list := range in.env.permissions {
						merged[perm] = list
					}
					for _, perm := range in.env.nullPerms {
						delete(merged, perm)
					}
					newPerms = replacePermissions(k.kind, merged)
				}
			default:
				if in.env.data == nil && !in.env.hasPerms {
					return res, kerr.InvalidParam("body", nil, "Provide at least one of data or permissions")
				}
				data, res.sent = copyData(existing.Data), in.env.data
				for key, v := range in.env.data {
					data[key] = v
				}
				if in.env.hasPerms {
					newPerms = in.env.permissions
				}
			}
			if id, ok := data[query.IDField]; ok && id != p.ID {
				return res, kerr.InvalidParam("body", kerr.Name("id"), "Object id does not match existing object")
			}
			if res.obj, err = s.storeObject(ctx, tx, p, existing, data); err != nil {
				return res, err
			}
			res.before = existing.Data
			if err := afterWrite(ctx, tx, p, existing, res.obj); err != nil {
				return res, err
			}
			if newPerms == nil {
				newPerms = current
			}
			if res.perms, err = s.storePermissions(ctx, tx, c, p.URI(), newPerms); err != nil {
				return res, err
			}
			return res, s.recordHistory(ctx, tx, c, "update", p, res.obj)
		})
		if err != nil {
			return err
		}
		s.committed(ctx, "update", p, res.obj)
		if behavior == "light" || behavior == "diff" {
			setTimestamp(w, res.obj.LastModified)
			s.writeJSON(w, http.StatusOK, map[string]any{"data": changedFields(res.before, res.obj, res.sent, behavior == "diff")})
			return nil
		}
		s.writeObject(w, http.StatusOK, res.obj, res.perms)
		return nil
	}
}

// changedFields is the body of Response-Behavior light (the top-level
// fields whose value changed) and diff (those also differing from what the
// client sent).
func changedFields(before map[string]any, after *storage.Object, sent map[string]any, diff bool) map[string]any {
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
