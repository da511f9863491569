// Package query parses and evaluates Kinto's list queries: filters
// (`min_n=3`, `in_id=a,b`, `like_title=*an*`, ...), `_sort`, `_limit`,
// `_token`, `_fields`, `_since` and `_before`, with Kinto's value rules and
// the PostgreSQL jsonb ordering of values.
//
// It knows nothing of HTTP or storage: it turns query parameters into a
// Query, and evaluates a Query against anything that exposes fields.
package query

import (
	"net/url"
	"strings"
	"unicode/utf8"

	"kintogo/internal/kerr"
)

// Param is one query-string parameter. A query keeps its parameters in
// their original order, because Kinto's Next-Page URLs do.
type Param struct {
	Name, Value string
}

// ParseRaw splits a raw query string into parameters, in order, decoding
// percent-escapes and `+`. Input that is not valid UTF-8 once decoded is a
// 400, as in Kinto.
func ParseRaw(raw string) ([]Param, error) {
	var params []Param
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		name, err1 := url.QueryUnescape(k)
		value, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil || !utf8.ValidString(name) || !utf8.ValidString(value) {
			return nil, &kerr.Error{Kind: kerr.Invalid, Message: "Invalid URL query string."}
		}
		params = append(params, Param{Name: name, Value: value})
	}
	return params, nil
}

// Encode renders parameters back into a query string, in order.
func Encode(params []Param) string {
	var b strings.Builder
	for i, p := range params {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(p.Name))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(p.Value))
	}
	return b.String()
}

// Get returns the value of the first parameter with that name.
func Get(params []Param, name string) (string, bool) {
	for _, p := range params {
		if p.Name == name {
			return p.Value, true
		}
	}
	return "", false
}

// Set replaces the value of the first parameter with that name, dropping
// later ones, or appends it.
func Set(params []Param, name, value string) []Param {
	out := make([]Param, 0, len(params)+1)
	found := false
	for _, p := range params {
		if p.Name == name {
			if found {
				continue
			}
			found = true
			p.Value = value
		}
		out = append(out, p)
	}
	if !found {
		out = append(out, Param{Name: name, Value: value})
	}
	return out
}

// Without returns the parameters other than those named.
func Without(params []Param, names ...string) []Param {
	out := make([]Param, 0, len(params))
outer:
	for _, p := range params {
		for _, n := range names {
			if p.Name == n {
				continue outer
			}
		}
		out = append(out, p)
	}
	return out
}
