package config

import (
	"regexp"
	"sort"
	"strings"
)

// Unknown is a setting given (in the INI file or the environment) that
// kintogo does not know: it has no effect, which a misspelled name would
// otherwise hide.
type Unknown struct {
	// Where is "the INI file" or "the environment".
	Where string
	// Name is the setting as given (kinto.incldues, KINTO_STRAGE_URL).
	Name string
	// Suggestion is the closest known name, "" when none is close.
	Suggestion string
}

// pluginPrefixes start the names plugins read by themselves (per bucket,
// per collection, per policy, per channel).
const pluginPrefixes = "signer|attachment|multiauth|mail|slack"

// dynamic are the names plugins and Kinto's rules compute: the plugins'
// own, permissions granted by settings, cache headers.
var dynamic = regexp.MustCompile(`^(` + pluginPrefixes + `)\.|_principals$|(^|[._])record_cache_expires_seconds$|_cache_expires_seconds$`)

// dynamicEnv is the same for the environment's names.
var dynamicEnv = regexp.MustCompile(`^KINTO_(` + strings.ToUpper(pluginPrefixes) + `)_|_PRINCIPALS$|_CACHE_EXPIRES_SECONDS$`)

// Compatibility lists the declared settings that kintogo accepts from
// Kinto's files and ignores.
func (s *Settings) Compatibility() []string {
	var out []string
	for _, d := range Table {
		if strings.HasPrefix(d.Doc, "accepted for compatibility") && s.given[d.Name] {
			out = append(out, d.Name)
		}
	}
	return out
}

// Unknown lists the settings given that kintogo does not know, with the
// closest known name.
func (s *Settings) Unknown() []Unknown {
	declared := map[string]bool{"server.host": true, "server.port": true}
	envNames := map[string]string{EnvName("ini"): "ini"}
	for _, d := range Table {
		declared[d.Name] = true
		envNames[EnvName(d.Name)] = d.Name
	}
	var out []Unknown
	for name := range s.given {
		if declared[name] || dynamic.MatchString(name) {
			continue
		}
		out = append(out, Unknown{Where: "the INI file", Name: "kinto." + name, Suggestion: prefixed(closest(name, declared))})
		envNames[EnvName(name)] = name // the environment may override it
	}
	known := map[string]bool{}
	for e := range envNames {
		known[e] = true
	}
	for k := range s.env {
		if !strings.HasPrefix(k, "KINTO_") || envNames[k] != "" || dynamicEnv.MatchString(k) {
			continue
		}
		out = append(out, Unknown{Where: "the environment", Name: k, Suggestion: closest(k, known)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func prefixed(name string) string {
	if name == "" {
		return ""
	}
	return "kinto." + name
}

// closest is the name of known nearest to name, "" when none is near (at
// most a third of its letters, and 3, differ).
func closest(name string, known map[string]bool) string {
	best, bestDist := "", min(3, max(1, len(name)/3))+1
	for k := range known {
		if d := distance(name, k); d < bestDist || d == bestDist && k < best {
			best, bestDist = k, d
		}
	}
	if bestDist > min(3, max(1, len(name)/3)) {
		return ""
	}
	return best
}

// distance is the Damerau-Levenshtein distance (with transpositions of
// adjacent letters: "incldues" is one step from "includes").
func distance(a, b string) int {
	n, m := len(a), len(b)
	d := make([][]int, n+1)
	for i := range d {
		d[i] = make([]int, m+1)
		d[i][0] = i
	}
	for j := 0; j <= m; j++ {
		d[0][j] = j
	}
	for i := 1; i <= n; i++ {
		for j := 1; j <= m; j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[n][m]
}
