package query

import (
	"regexp"
	"sort"
	"strings"
)

// Fielder is anything whose fields a query can read: Field returns the value
// at a dotted path and whether it exists.
type Fielder interface {
	Field(path string) (any, bool)
}

// Lookup finds a dotted path in a JSON object.
func Lookup(data map[string]any, path string) (any, bool) {
	if v, ok := data[path]; ok {
		return v, true
	}
	cur := any(data)
	for _, part := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// Match reports whether obj satisfies every filter, with Kinto's rules for
// missing fields: not_, exclude_, gt_ and min_ match them; the others don't.
func Match(obj Fielder, filters []Filter) bool {
	for _, f := range filters {
		if !matchOne(obj, f) {
			return false
		}
	}
	return true
}

func matchOne(obj Fielder, f Filter) bool {
	v, ok := obj.Field(f.Field)
	switch f.Op {
	case HAS:
		return ok == f.Value.(bool)
	case NEQ:
		return !ok || !Equal(v, f.Value)
	case EXCLUDE:
		if !ok {
			return true
		}
		for _, x := range f.Value.([]any) {
			if Equal(v, x) {
				return false
			}
		}
		return true
	case GT:
		return !ok || Compare(v, f.Value) > 0
	case MIN:
		return !ok || Compare(v, f.Value) >= 0
	}
	if !ok {
		return false
	}
	switch f.Op {
	case EQ:
		return Equal(v, f.Value)
	case LT:
		return Compare(v, f.Value) < 0
	case MAX:
		return Compare(v, f.Value) <= 0
	case IN:
		for _, x := range f.Value.([]any) {
			if Equal(v, x) {
				return true
			}
		}
		return false
	case LIKE:
		return likePattern(f.Value.(string)).MatchString(Text(v))
	case CONTAINS, CONTAINSANY:
		arr, isArr := v.([]any)
		if !isArr {
			return false
		}
		want := f.Value.([]any)
		for _, w := range want {
			found := false
			for _, x := range arr {
				if Equal(x, w) {
					found = true
					break
				}
			}
			if f.Op == CONTAINSANY && found {
				return true
			}
			if f.Op == CONTAINS && !found {
				return false
			}
		}
		return f.Op == CONTAINS
	}
	return false
}

// likePattern turns a like_ value into a case-insensitive regexp: `*` is the
// wildcard, and a value without `*` matches anywhere (`*value*`).
func likePattern(value string) *regexp.Regexp {
	if !strings.Contains(value, "*") {
		value = "*" + value + "*"
	}
	parts := strings.Split(value, "*")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile("(?is)^" + strings.Join(parts, ".*") + "$")
}

// compareField orders two objects on one field, a missing value sorting
// after every present one.
func compareField(a, b Fielder, field string) int {
	va, oka := a.Field(field)
	vb, okb := b.Field(field)
	switch {
	case !oka && !okb:
		return 0
	case !oka:
		return 1
	case !okb:
		return -1
	}
	return Compare(va, vb)
}

// CompareBy orders two objects by the sort keys.
func CompareBy(a, b Fielder, sorts []Sort) int {
	for _, s := range sorts {
		c := compareField(a, b, s.Field)
		if s.Desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

// SortSlice sorts objects by the sort keys, stably.
func SortSlice[T Fielder](objs []T, sorts []Sort) {
	sort.SliceStable(objs, func(i, j int) bool { return CompareBy(objs[i], objs[j], sorts) < 0 })
}

// valuesFielder exposes a pagination token's last_object.
type valuesFielder map[string]any

func (v valuesFielder) Field(path string) (any, bool) { x, ok := v[path]; return x, ok }

// After reports whether obj comes strictly after the last object of the
// previous page (q.After) in sort order: the keyset pagination rule.
func (q *Query) AfterLast(obj Fielder) bool {
	if q.After == nil {
		return true
	}
	return CompareBy(obj, valuesFielder(q.After), q.Sort) > 0
}

// Project keeps only the requested fields of an object's data (plus id and
// last_modified, which the caller always adds). Dotted names keep a nested
// key; when a parent along the path is not an object, its whole value is
// kept.
func Project(data map[string]any, fields []string) map[string]any {
	out := map[string]any{}
	for _, f := range fields {
		projectInto(out, data, strings.Split(f, "."))
	}
	return out
}

func projectInto(dst, src map[string]any, path []string) {
	v, ok := src[path[0]]
	if !ok {
		return
	}
	if len(path) == 1 {
		dst[path[0]] = v
		return
	}
	sub, isObj := v.(map[string]any)
	if !isObj {
		dst[path[0]] = v
		return
	}
	d, exists := dst[path[0]].(map[string]any)
	if !exists {
		d = map[string]any{}
		dst[path[0]] = d
	}
	projectInto(d, sub, path[1:])
}
