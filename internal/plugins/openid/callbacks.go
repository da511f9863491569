package openid

import (
	"strings"
	"unicode"
)

// defaultTrustedCallbacks are the callbacks trusted when none are set:
// local command-line clients (kinto-http's browser login), and the admin
// UI when it is served.
var defaultTrustedCallbacks = []string{"http://localhost:*/*", "http://127.0.0.1:*/*"}

var defaultPorts = map[string]string{"http": "80", "https": "443"}

// urlParts splits a URL into the parts trusted patterns are compared
// with, refusing what browsers would read otherwise than url.Parse (as
// Kinto's _url_parts): spaces and control characters, user info, hosts
// with other characters than a hostname's, ports that are not digits (or
// *), dot segments in the path.
func urlParts(raw string) (scheme, host, port, rest string, ok bool) {
	for _, r := range raw {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return
		}
	}
	scheme, after, found := strings.Cut(raw, "://")
	scheme = strings.ToLower(scheme)
	if !found || defaultPorts[scheme] == "" {
		return
	}
	netloc := after
	if i := strings.IndexAny(after, "/?#"); i >= 0 {
		netloc = after[:i]
	}
	if strings.Contains(netloc, "@") {
		return
	}
	allowed := "abcdefghijklmnopqrstuvwxyz0123456789.-*"
	hostport := strings.ToLower(netloc)
	if strings.HasPrefix(hostport, "[") {
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return
		}
		host, port = hostport[1:end], strings.TrimPrefix(hostport[end+1:], ":")
		allowed = "0123456789abcdef:."
	} else {
		host, port, _ = strings.Cut(hostport, ":")
	}
	if host == "" || strings.Trim(host, allowed) != "" || strings.Trim(port, "0123456789*") != "" {
		return
	}
	if port == "" {
		port = defaultPorts[scheme]
	}
	rest = after[len(netloc):]
	p := rest
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	p = strings.ReplaceAll(strings.ReplaceAll(strings.ToLower(p), "%2e", "."), "\\", "/")
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return
		}
	}
	if rest == "" {
		rest = "/"
	}
	return scheme, host, port, rest, true
}

// match is shell-style matching where only * is a wildcard (and matches
// / too, as Python's fnmatch).
func match(value, pattern string) bool {
	if !strings.Contains(pattern, "*") {
		return value == pattern
	}
	parts := strings.Split(pattern, "*")
	if !strings.HasPrefix(value, parts[0]) {
		return false
	}
	value = value[len(parts[0]):]
	for i, part := range parts[1:] {
		if i == len(parts)-2 {
			return strings.HasSuffix(value, part)
		}
		j := strings.Index(value, part)
		if j < 0 {
			return false
		}
		value = value[j+len(part):]
	}
	return true
}

// trustedCallback reports whether callback matches one of the patterns
// (* a wildcard in host, port and the rest).
func trustedCallback(callback string, patterns []string) bool {
	scheme, host, port, rest, ok := urlParts(callback)
	if !ok {
		return false
	}
	for _, p := range patterns {
		ps, ph, pp, pr, ok := urlParts(p)
		if ok && scheme == ps && match(host, ph) && match(port, pp) && match(rest, pr) {
			return true
		}
	}
	return false
}
