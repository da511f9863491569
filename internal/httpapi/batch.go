package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"

	"kintogo/internal/kerr"
	"kintogo/internal/pyfmt"
	"kintogo/internal/resource"
)

// subRequest is one request of a batch, defaults merged in.
type subRequest struct {
	Method  string
	Path    string
	Headers map[string]string
	Body    any // nil: no body
}

// subResponse is one answer of a batch. Body is the answer's JSON as the
// sub-request wrote it (never decoded again), or a JSON string of a
// non-JSON answer.
type subResponse struct {
	Status  int               `json:"status"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"`
}

var batchMethods = []string{"GET", "HEAD", "DELETE", "TRACE", "POST", "PUT", "PATCH"}

// mergeDefaults merges defaults into a request, recursively, never
// overwriting what the request says.
func mergeDefaults(req, defaults map[string]any) {
	for k, dv := range defaults {
		rv, ok := req[k]
		if !ok {
			req[k] = dv
			continue
		}
		rm, rok := rv.(map[string]any)
		dm, dok := dv.(map[string]any)
		if rok && dok {
			merged := resource.CopyData(rm)
			mergeDefaults(merged, dm)
			req[k] = merged
		}
	}
}

func batchInvalid(name, description string) error {
	return kerr.InvalidParam("body", kerr.Name(name), description)
}

// parseBatch validates a batch body (kinto-protocol.md §9).
func (s *Server) parseBatch(v any) ([]subRequest, error) {
	top, ok := v.(map[string]any)
	if !ok {
		return nil, notMapping("", v)
	}
	for k := range top {
		if k != "requests" && k != "defaults" {
			return nil, batchInvalid("", fmt.Sprintf("Unrecognized keys in mapping: \"{'%s': %s}\"", k, pyfmt.Repr(top[k])))
		}
	}
	rawReqs, present := top["requests"]
	if !present {
		return nil, batchInvalid("requests", "Required")
	}
	list, ok := rawReqs.([]any)
	if !ok {
		return nil, batchInvalid("requests", fmt.Sprintf("%q is not iterable", pyfmt.Str(rawReqs)))
	}
	var defaults map[string]any
	if d, present := top["defaults"]; present {
		if defaults, ok = d.(map[string]any); !ok {
			return nil, notMapping("defaults", d)
		}
	}
	if max := s.cfg.Batch.MaxRequests; max > 0 && int64(len(list)) > max {
		return nil, batchInvalid("requests", fmt.Sprintf("Number of requests is limited to %d", max))
	}
	out := make([]subRequest, 0, len(list))
	for i, raw := range list {
		name := "requests." + strconv.Itoa(i)
		m, ok := raw.(map[string]any)
		if !ok {
			return nil, notMapping(name, raw)
		}
		req := resource.CopyData(m)
		for k := range req {
			switch k {
			case "method", "path", "headers", "body":
			default:
				return nil, batchInvalid(name, fmt.Sprintf("Unrecognized keys in mapping: \"{'%s': %s}\"", k, pyfmt.Repr(req[k])))
			}
		}
		mergeDefaults(req, defaults)
		sub := subRequest{Method: "GET", Headers: map[string]string{}}
		if mv, ok := req["method"]; ok {
			method, _ := mv.(string)
			valid := false
			for _, m := range batchMethods {
				valid = valid || m == method
			}
			if !valid {
				return nil, batchInvalid(name+".method", fmt.Sprintf("%q is not one of %s", pyfmt.Str(mv), strings.Join(batchMethods, ", ")))
			}
			sub.Method = method
		}
		path, _ := req["path"].(string)
		if path == "" {
			return nil, batchInvalid(name+".path", "Required")
		}
		if !strings.HasPrefix(path, "/") {
			return nil, batchInvalid(name+".path", fmt.Sprintf("%q is not a valid path", path))
		}
		if strings.Contains(path, "/batch") || routesToBatch(path) {
			return nil, errRecursiveBatch
		}
		sub.Path = path
		if hv, ok := req["headers"]; ok {
			hm, ok := hv.(map[string]any)
			if !ok {
				return nil, notMapping(name+".headers", hv)
			}
			for k, v := range hm {
				str, ok := v.(string)
				if !ok {
					return nil, batchInvalid(name+".headers."+k, fmt.Sprintf("%s is not a string: {'': ''}", pyfmt.Str(v)))
				}
				sub.Headers[k] = str
			}
		}
		if bv, ok := req["body"]; ok {
			if _, isMap := bv.(map[string]any); !isMap {
				return nil, notMapping(name+".body", bv)
			}
			sub.Body = bv
		}
		out = append(out, sub)
	}
	return out, nil
}

// errRecursiveBatch is Kinto's answer to a sub-request of a batch that
// would run a batch itself.
var errRecursiveBatch = batchInvalid("requests", "Recursive call on /batch endpoint is forbidden.")

// routesToBatch reports whether a sub-request path reaches the batch
// endpoint once routed as the server routes it: percent-escapes decoded,
// the version prefix added, dot segments and repeated slashes cleaned,
// trailing slashes dropped (each of these is a redirect runSub may
// follow). Kinto's own check only looks for "/batch" in the raw path,
// which an escaped spelling passes.
func routesToBatch(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false // refused by runSub before any routing
	}
	p := u.Path
	if !versionPrefix.MatchString(p) {
		p = "/v1" + p
	}
	p = strings.TrimRight(path.Clean(p), "/")
	return p == batchPath
}

// batchPath is the route of the batch endpoint.
const batchPath = "/v1/batch"

// batchFailed aborts a batch: a sub-request failed in a way that fails
// the whole batch (5xx, or a 409 conflict).
type batchFailed struct{ resp *recorder }

func (batchFailed) Error() string { return "batch aborted" }

// batch is POST /batch: the sub-requests run in order through the whole
// handler stack, in one storage transaction. A 4xx is reported in its slot
// (what it started is undone); a 5xx or a 409 fails the whole batch, rolled
// back. Events are published once, after the commit. The answers are kept
// as the sub-requests wrote them, within batch_max_response_bytes.
func (s *Server) batch(w http.ResponseWriter, r *http.Request, c *Call) error {
	if inUnit(r.Context()) {
		// routesToBatch should have refused this path: say so loudly, and
		// never open a transaction inside the batch's.
		s.log.Error("a batch sub-request reached the batch endpoint", "path", r.URL.Path)
		s.nestedBatches.Add(1)
		return errRecursiveBatch
	}
	if _, err := mediaType(r, mediaJSON); err != nil {
		return err
	}
	raw, err := readBody(r)
	if err != nil {
		return err
	}
	v, err := decodeJSON(raw)
	if err != nil {
		return err
	}
	subs, err := s.parseBatch(v)
	if err != nil {
		return err
	}
	observeBatch(w, len(subs), nil)
	budget := s.cfg.Batch.MaxResponseBytes
	// One unit of work for the whole batch: each sub-request runs in a
	// savepoint of it, and its events go out once it commits.
	responses, err := resource.Write(r.Context(), s.engine, func(u *resource.Unit) ([]subResponse, error) {
		// Each run starts afresh: the storage may run this function again.
		ctx := resource.WithUnit(r.Context(), u)
		var responses []subResponse
		var size int64
		for _, sub := range subs {
			rec, path := s.runSub(ctx, r, sub)
			if err := u.Retry(); err != nil {
				return nil, err
			}
			if rec.status >= 500 || rec.status == http.StatusConflict {
				return nil, batchFailed{resp: rec}
			}
			size += int64(rec.body.Len())
			if budget > 0 && size > budget {
				return nil, &kerr.Error{Kind: kerr.TooLarge, Message: fmt.Sprintf(
					"The answers of this batch are larger than %d bytes (batch_max_response_bytes): send fewer or smaller requests.", budget)}
			}
			responses = append(responses, toSubResponse(sub, rec, path))
		}
		return responses, nil
	})
	var failed batchFailed
	if errors.As(err, &failed) {
		for k, vs := range failed.resp.header {
			w.Header()[k] = vs
		}
		observeBatch(w, len(subs), failed.resp.body.Bytes())
		w.WriteHeader(failed.resp.status)
		w.Write(failed.resp.body.Bytes())
		return nil
	}
	if err != nil {
		return err
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"responses": nonNil(responses)})
	return nil
}

func nonNil(rs []subResponse) []subResponse {
	if rs == nil {
		return []subResponse{}
	}
	return rs
}

// runSub runs one sub-request through the server, following a redirect of
// its own (a trailing slash) once, and returns its answer and final path.
func (s *Server) runSub(ctx context.Context, parent *http.Request, sub subRequest) (*recorder, string) {
	path := sub.Path
	if !versionPrefix.MatchString(path) {
		path = "/v1" + path
	}
	var rec *recorder
	for hops := 0; hops < 2; hops++ {
		var body []byte
		if sub.Body != nil {
			body, _ = json.Marshal(sub.Body)
		}
		req, err := http.NewRequestWithContext(ctx, sub.Method, path, bytes.NewReader(body))
		if err != nil {
			rec = newRecorder()
			s.renderError(rec, parent, kerr.InvalidParam("body", kerr.Name("path"), "Invalid URL path."))
			return rec, path
		}
		req.Host = parent.Host
		req.RemoteAddr = parent.RemoteAddr
		for k, vs := range parent.Header {
			if k != "Content-Length" && k != "Content-Type" {
				req.Header[k] = vs
			}
		}
		if sub.Body != nil {
			req.Header.Set("Content-Type", "application/json; charset=utf-8")
		}
		for k, v := range sub.Headers {
			req.Header.Set(k, v)
		}
		rec = newRecorder()
		s.ServeHTTP(rec, req)
		if rec.status != http.StatusTemporaryRedirect {
			break
		}
		loc, err := url.Parse(rec.header.Get("Location"))
		if err != nil || loc.Path == "" {
			break
		}
		path = loc.RequestURI()
	}
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return rec, path
}

// kintoHeaderNames spells headers as Kinto does where Go's canonical form
// differs (on the wire the case does not matter; in a batch body it shows).
var kintoHeaderNames = map[string]string{"Etag": "ETag", "Www-Authenticate": "WWW-Authenticate"}

// emptyBody is the body of a sub-response without one (HEAD, 304).
var emptyBody = json.RawMessage(`""`)

func toSubResponse(sub subRequest, rec *recorder, path string) subResponse {
	out := subResponse{Status: rec.status, Headers: map[string]string{}, Body: emptyBody}
	if u, err := url.Parse(path); err == nil {
		out.Path = u.Path
	}
	keys := make([]string, 0, len(rec.header))
	for k := range rec.header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		name := k
		if kinto, ok := kintoHeaderNames[k]; ok {
			name = kinto
		}
		out.Headers[name] = strings.Join(rec.header[k], ", ")
	}
	if rec.status == http.StatusUnauthorized {
		// Kinto's batch 401s carry no CORS exposure.
		delete(out.Headers, "Access-Control-Expose-Headers")
	}
	body := bytes.TrimSpace(rec.body.Bytes())
	switch {
	case sub.Method == http.MethodHead || len(body) == 0:
	case json.Valid(body):
		out.Body = body
	default:
		out.Body = jsonString(string(body))
	}
	return out
}

// jsonString encodes s as a JSON string, without Go's escaping of <, >
// and & (Kinto does not escape them).
func jsonString(s string) json.RawMessage {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	return bytes.TrimSpace(buf.Bytes())
}
