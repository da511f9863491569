package notify

import (
	"fmt"
	"strconv"
	"strings"

	"kintogo/internal/pyfmt"
)

// Format renders template as Python's str.format renders it with keyword
// arguments, which is how kinto-emailer and kinto-slack render their
// hooks' templates: `{name}`, `{name[key]}` (a mapping's key, a list's
// index), `{name!r}`, `{{` and `}}`. Values render as Python's str()
// (None, True, 1.5, lists and dicts as their repr). A format spec
// (`{n:>5}`) is accepted and ignored. lookup gives a top-level name's
// value; a missing name, key or index is an error, as are unbalanced
// braces.
func Format(template string, lookup func(name string) (any, bool)) (string, error) {
	var b strings.Builder
	for i := 0; i < len(template); i++ {
		c := template[i]
		switch {
		case c == '{' && i+1 < len(template) && template[i+1] == '{':
			b.WriteByte('{')
			i++
		case c == '}' && i+1 < len(template) && template[i+1] == '}':
			b.WriteByte('}')
			i++
		case c == '}':
			return "", fmt.Errorf("single '}' encountered in format string")
		case c == '{':
			end := strings.IndexByte(template[i:], '}')
			if end < 0 {
				return "", fmt.Errorf("single '{' encountered in format string")
			}
			field := template[i+1 : i+end]
			i += end
			s, err := render(field, lookup)
			if err != nil {
				return "", err
			}
			b.WriteString(s)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// render is one replacement field.
func render(field string, lookup func(string) (any, bool)) (string, error) {
	field, _, _ = strings.Cut(field, ":") // the format spec
	field, conv, _ := strings.Cut(field, "!")
	name := field
	rest := ""
	if i := strings.IndexAny(field, "[."); i >= 0 {
		name, rest = field[:i], field[i:]
	}
	if name == "" {
		return "", fmt.Errorf("positional field {%s}: the templates take names only", field)
	}
	v, ok := lookup(name)
	if !ok {
		return "", fmt.Errorf("KeyError: %s", pyfmt.Repr(name))
	}
	for rest != "" {
		switch rest[0] {
		case '.':
			return "", fmt.Errorf("attribute %s of %s: the values have none", rest, name)
		case '[':
		default:
			return "", fmt.Errorf("only '.' or '[' may follow ']' in format field specifier")
		}
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return "", fmt.Errorf("missing ']' in format string")
		}
		key := rest[1:end]
		rest = rest[end+1:]
		switch val := v.(type) {
		case map[string]any:
			if v, ok = val[key]; !ok {
				return "", fmt.Errorf("KeyError: %s", pyfmt.Repr(key))
			}
		case []any:
			n, err := strconv.Atoi(key)
			if err != nil || n < 0 || n >= len(val) {
				return "", fmt.Errorf("IndexError: %s", key)
			}
			v = val[n]
		default:
			return "", fmt.Errorf("%s is not subscriptable", name)
		}
	}
	switch conv {
	case "":
		return pyfmt.Str(v), nil
	case "r", "a":
		return pyfmt.Repr(v), nil
	case "s":
		return pyfmt.Str(v), nil
	}
	return "", fmt.Errorf("unknown conversion specifier %s", conv)
}
