package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"kintogo/internal/kerr"
	"kintogo/internal/model"
	"kintogo/internal/pyfmt"
	"kintogo/internal/resource"
)

// readBody reads the request body within the configured size limit.
func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	raw, err := io.ReadAll(r.Body)
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, &kerr.Error{Kind: kerr.TooLarge, Message: fmt.Sprintf("Request body is larger than %d bytes.", tooLarge.Limit)}
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil, kerr.Wrap(kerr.Invalid, "Request body was not received in time (body_read_timeout_seconds).", err)
	}
	if err != nil {
		return nil, kerr.Wrap(kerr.Invalid, "Request body could not be read.", err)
	}
	return raw, nil
}

const (
	mediaJSON       = "application/json"
	mediaMergePatch = "application/merge-patch+json"
	mediaJSONPatch  = "application/json-patch+json"
)

// mediaType checks the request Content-Type against the accepted ones and
// returns it ("application/json" when absent, as Kinto reads such bodies as
// JSON).
func mediaType(r *http.Request, accepted ...string) (string, error) {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return mediaJSON, nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil {
		for _, a := range accepted {
			if mt == a {
				return mt, nil
			}
		}
	}
	quoted := make([]string, len(accepted))
	for i, a := range accepted {
		quoted[i] = "'" + a + "'"
	}
	return "", &kerr.Error{Kind: kerr.UnsupportedMediaType, Details: []kerr.Detail{{
		Location: "header", Name: kerr.Name("Content-Type"),
		Description: "Content-Type header should be one of [" + strings.Join(quoted, ", ") + "]",
	}}}
}

// checkAccept refuses an Accept header that excludes JSON (406).
func checkAccept(r *http.Request) error {
	accept := r.Header.Get("Accept")
	if accept == "" {
		return nil
	}
	for _, part := range strings.Split(accept, ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if mt == "*/*" || mt == "application/*" || mt == mediaJSON {
			return nil
		}
	}
	return &kerr.Error{Kind: kerr.NotAcceptable, Details: []kerr.Detail{{
		Location: "header", Name: kerr.Name("Accept"),
		Description: "Accept header should be one of ['application/json']",
	}}}
}

// decodeJSON parses a body: numbers stay exact (json.Number), an empty body
// is {}, anything but one JSON value is Kinto's "Invalid JSON" 400.
func decodeJSON(raw []byte) (any, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return map[string]any{}, nil
	}
	if err := checkUTF8(raw); err != nil {
		return nil, invalidJSON(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = fmt.Errorf("extra data after the JSON value at offset %d", dec.InputOffset())
		}
	}
	if err == nil {
		err = checkNumbers(v)
	}
	if err != nil {
		return nil, invalidJSON(err)
	}
	return v, nil
}

// invalidJSON is Kinto's 400 for a body that is not JSON.
func invalidJSON(err error) error {
	return &kerr.Error{Kind: kerr.Invalid, Details: []kerr.Detail{
		{Location: "body", Name: kerr.Name(""), Description: "Invalid JSON: " + err.Error()},
		{Location: "body", Name: kerr.Name(""), Description: "Required"},
	}}
}

// checkUTF8 refuses a body that is not UTF-8, in Python's words (Go's
// decoder would silently store U+FFFD instead of the bad bytes).
func checkUTF8(raw []byte) error {
	if utf8.Valid(raw) {
		return nil
	}
	for i := 0; i < len(raw); {
		r, size := utf8.DecodeRune(raw[i:])
		if r != utf8.RuneError || size != 1 {
			i += size
			continue
		}
		reason := "invalid start byte"
		if b := raw[i]; b >= 0xC2 && b <= 0xF4 {
			reason = "invalid continuation byte"
			if need := utf8Len(b); i+need > len(raw) {
				reason = "unexpected end of data"
			}
		}
		return fmt.Errorf("'utf-8' codec can't decode byte 0x%02x in position %d: %s", raw[i], i, reason)
	}
	return nil
}

// utf8Len is the length of the sequence a UTF-8 lead byte starts.
func utf8Len(b byte) int {
	switch {
	case b >= 0xF0:
		return 4
	case b >= 0xE0:
		return 3
	}
	return 2
}

// maxExponent bounds the exponent of numbers in bodies: beyond a double's
// range they mean nothing to clients, and exact arithmetic on them (JSON
// schema minimums use rationals) would cost a request unbounded time.
const maxExponent = 400

// checkNumbers refuses numbers with exponents beyond maxExponent.
func checkNumbers(v any) error {
	switch x := v.(type) {
	case json.Number:
		s := string(x)
		if i := strings.IndexAny(s, "eE"); i >= 0 {
			exp, err := strconv.Atoi(strings.TrimPrefix(s[i+1:], "+"))
			if err != nil || exp > maxExponent || exp < -maxExponent {
				return fmt.Errorf("number %s is out of range", s)
			}
		}
	case []any:
		for _, item := range x {
			if err := checkNumbers(item); err != nil {
				return err
			}
		}
	case map[string]any:
		for _, item := range x {
			if err := checkNumbers(item); err != nil {
				return err
			}
		}
	}
	return nil
}

// notMapping is colander's error for a value that should be an object.
var notMapping = resource.NotMapping

// parseEnvelope validates the envelope of a body for objects of kind k.
func parseEnvelope(v any, k *model.Kind) (*resource.Body, error) {
	top, ok := v.(map[string]any)
	if !ok {
		return nil, notMapping("", v)
	}
	var unknown []string
	for key := range top {
		if key != "data" && key != "permissions" {
			unknown = append(unknown, key)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		parts := make([]string, len(unknown))
		for i, key := range unknown {
			parts[i] = fmt.Sprintf("'%s': %s", key, pyfmt.Repr(top[key]))
		}
		return nil, kerr.InvalidParam("body", kerr.Name(""), fmt.Sprintf("Unrecognized keys in mapping: \"{%s}\"", strings.Join(parts, ", ")))
	}
	e := &resource.Body{}
	if d, present := top["data"]; present {
		m, ok := d.(map[string]any)
		if !ok {
			return nil, notMapping("data", d)
		}
		e.Data = m
	}
	if p, present := top["permissions"]; present {
		m, ok := p.(map[string]any)
		if !ok {
			return nil, notMapping("permissions", p)
		}
		e.HasPerms = true
		e.Perms = map[string][]string{}
		names := make([]string, 0, len(m))
		for perm := range m {
			names = append(names, perm)
		}
		sort.Strings(names)
		for _, perm := range names {
			if !k.AllowsPerm(perm) {
				return nil, kerr.InvalidParam("body", kerr.Name("permissions"), fmt.Sprintf("%q is not one of %s", perm, strings.Join(k.Perms, ", ")))
			}
			if m[perm] == nil {
				e.NullPerms = append(e.NullPerms, perm)
				continue
			}
			list, ok := m[perm].([]any)
			if !ok {
				return nil, kerr.InvalidParam("body", kerr.Name("permissions."+perm), fmt.Sprintf("%q is not iterable", pyfmt.Str(m[perm])))
			}
			principals := []string{}
			for i, item := range list {
				p, ok := item.(string)
				if !ok {
					return nil, kerr.InvalidParam("body", kerr.Name(fmt.Sprintf("permissions.%s.%d", perm, i)), fmt.Sprintf("%s is not a string: {'': ''}", pyfmt.Str(item)))
				}
				principals = append(principals, p)
			}
			e.Perms[perm] = dedupe(principals)
		}
	}
	return e, nil
}

func dedupe(list []string) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, s := range list {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

var quotedInt = regexp.MustCompile(`^"[0-9]+"$`)

func parsePrecondition(r *http.Request, name string) (resource.Precondition, error) {
	v := strings.TrimSpace(r.Header.Get(name))
	if v == "" {
		return resource.Precondition{}, nil
	}
	if v == "*" {
		return resource.Precondition{Set: true, Any: true}, nil
	}
	if quotedInt.MatchString(v) {
		n, err := strconv.ParseInt(strings.Trim(v, `"`), 10, 64)
		if err == nil {
			return resource.Precondition{Set: true, Timestamp: n}, nil
		}
	}
	return resource.Precondition{}, kerr.InvalidParam("header", kerr.Name(name), "The value should be integer between double quotes.")
}

// preconditions reads If-Match and If-None-Match.
func preconditions(r *http.Request) (pre resource.Preconditions, err error) {
	if pre.IfMatch, err = parsePrecondition(r, "If-Match"); err != nil {
		return
	}
	pre.IfNoneMatch, err = parsePrecondition(r, "If-None-Match")
	return
}

// deadlineBody bounds the time a client may take to send its body: the
// connection's read deadline is set when the handler starts and lifted
// once the body is read, so that a request trickling its body is cut, as
// one trickling its headers is (ReadHeaderTimeout), while an event stream
// that follows keeps its connection.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func withBodyDeadline(w http.ResponseWriter, r *http.Request, timeout time.Duration) {
	rc := http.NewResponseController(w)
	if rc.SetReadDeadline(time.Now().Add(timeout)) != nil {
		return // not a network connection (a batch sub-request)
	}
	r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}
