package httpapi

import (
	"net/http"
	"regexp"
	"strings"

	"kintogo/internal/kerr"
)

// corsPolicy is the cors_origins setting, as Kinto (Cornice) applies it:
// each origin is a shell pattern (fnmatch: `*`, `?`, `[...]`); with `*`
// among them, answers allow every origin with `*`; otherwise the request's
// origin is echoed when it matches, and a request from any other origin is
// refused with a 400 before its endpoint runs.
type corsPolicy struct {
	any      bool
	patterns []*regexp.Regexp
}

func newCORSPolicy(origins []string) corsPolicy {
	var p corsPolicy
	for _, o := range origins {
		if o == "*" {
			p.any = true
			continue
		}
		p.patterns = append(p.patterns, fnmatch(o))
	}
	return p
}

// fnmatch compiles a shell pattern as Python's fnmatch.fnmatchcase reads
// it: `*` matches anything (slashes too), `?` one character, `[...]` a set
// (`[!...]` its complement); everything else stands for itself.
func fnmatch(pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(pattern); i++ {
		switch ch := pattern[i]; ch {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		case '[':
			end := strings.IndexByte(pattern[i+1:], ']')
			if end < 0 {
				b.WriteString(`\[`)
				continue
			}
			set := pattern[i+1 : i+1+end]
			i += end + 1
			if strings.HasPrefix(set, "!") {
				set = "^" + set[1:]
			}
			b.WriteString("[" + strings.ReplaceAll(set, `\`, `\\`) + "]")
		default:
			b.WriteString(regexp.QuoteMeta(string(ch)))
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		// An unusual set: match the pattern literally.
		return regexp.MustCompile("^" + regexp.QuoteMeta(pattern) + "$")
	}
	return re
}

// allows reports whether requests from origin are accepted.
func (p corsPolicy) allows(origin string) bool {
	if p.any {
		return true
	}
	for _, re := range p.patterns {
		if re.MatchString(origin) {
			return true
		}
	}
	return false
}

// allowOrigin sets Access-Control-Allow-Origin for an accepted origin.
func (p corsPolicy) allowOrigin(h http.Header, origin string) {
	if p.any {
		h.Set("Access-Control-Allow-Origin", "*")
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
}

// originNotAllowed is Kinto's answer to a request from an origin that
// cors_origins does not list.
func originNotAllowed(origin string) error {
	return kerr.InvalidParam("header", kerr.Name("Origin"), origin+" not allowed")
}
