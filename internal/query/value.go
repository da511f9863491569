package query

import (
	"bytes"
	"cmp"
	"encoding/json"
	"sort"
	"strconv"
	"strings"
)

// Native parses a query-string value the way Kinto does: as JSON when it is
// valid JSON (`1` is a number, `true` a boolean, `"1"` a string, `[1,2]` a
// list), otherwise as the raw string. Numbers are json.Number.
func Native(s string) any {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return s
	}
	if dec.More() {
		return s
	}
	// Trailing garbage after a valid value ("1 2") is not JSON either.
	var rest json.RawMessage
	if err := dec.Decode(&rest); err == nil {
		return s
	}
	return v
}

// typeRank orders JSON types as PostgreSQL's jsonb does:
// null < string < number < boolean < array < object.
func typeRank(v any) int {
	switch v.(type) {
	case nil:
		return 0
	case string:
		return 1
	case json.Number, float64, int64, int:
		return 2
	case bool:
		return 3
	case []any:
		return 4
	case map[string]any:
		return 5
	}
	return 6
}

// Compare orders two JSON values with the jsonb ordering used by Kinto for
// comparisons, sorting and pagination. Values of different types compare by
// type; arrays and objects compare by length first, then element by element.
func Compare(a, b any) int {
	ra, rb := typeRank(a), typeRank(b)
	if ra != rb {
		return cmp.Compare(ra, rb)
	}
	switch x := a.(type) {
	case nil:
		return 0
	case string:
		return strings.Compare(x, b.(string))
	case bool:
		y := b.(bool)
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	case []any:
		y := b.([]any)
		if len(x) != len(y) {
			return cmp.Compare(len(x), len(y))
		}
		for i := range x {
			if c := Compare(x[i], y[i]); c != 0 {
				return c
			}
		}
		return 0
	case map[string]any:
		y := b.(map[string]any)
		if len(x) != len(y) {
			return cmp.Compare(len(x), len(y))
		}
		kx, ky := sortedKeys(x), sortedKeys(y)
		for i := range kx {
			if c := strings.Compare(kx[i], ky[i]); c != 0 {
				return c
			}
			if c := Compare(x[kx[i]], y[ky[i]]); c != 0 {
				return c
			}
		}
		return 0
	}
	return compareNumbers(a, b)
}

// Equal reports JSON equality (numbers by value, 1 == 1.0).
func Equal(a, b any) bool {
	return typeRank(a) == typeRank(b) && Compare(a, b) == 0
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// compareNumbers compares numbers by their exact decimal values (the
// order of their keys, see Key), integers directly.
func compareNumbers(a, b any) int {
	if x, ok := asInt64(a); ok {
		if y, ok := asInt64(b); ok {
			return cmp.Compare(x, y)
		}
	}
	var ka, kb [48]byte
	return bytes.Compare(appendNumberKey(ka[:0], a), appendNumberKey(kb[:0], b))
}

func asInt64(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case int:
		return int64(n), true
	case json.Number:
		i, err := strconv.ParseInt(string(n), 10, 64)
		return i, err == nil
	}
	return 0, false
}

// Text renders a value as PostgreSQL's `->>` does: strings unquoted,
// everything else as JSON text. `like_` filters match against it.
func Text(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return strings.TrimSuffix(buf.String(), "\n")
}
