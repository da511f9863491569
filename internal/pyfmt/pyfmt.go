// Package pyfmt renders JSON values as Python prints them. Kinto's error
// messages (colander, jsonschema) embed Python's rendering of the faulty
// value, and clients and the conformance corpus compare those messages.
package pyfmt

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Repr renders v as Python's repr() of the decoded JSON value: None, True,
// 'text', [1, 'a'], {'k': 1}.
func Repr(v any) string { return render(v, true) }

// Str renders v as Python's str(): like Repr, but a top-level string is
// not quoted.
func Str(v any) string { return render(v, false) }

func render(v any, quoteStrings bool) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case string:
		if quoteStrings {
			return "'" + strings.ReplaceAll(x, "'", `\'`) + "'"
		}
		return x
	case json.Number:
		return x.String()
	case []any:
		parts := make([]string, len(x))
		for i, item := range x {
			parts[i] = render(item, true)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = render(k, true) + ": " + render(x[k], true)
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprint(v)
}
