package query

import (
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
//
// Filters from Parse or Compile carry their compiled `like_` patterns and
// list sets; others are evaluated the straightforward way (see Compile).
// A hand-built filter whose Value has the wrong type for its Op (LIKE
// without a string, HAS without a bool, a list operator without a []any)
// matches no value instead of panicking: EXCLUDE then excludes nothing, the
// others match nothing.
func Match(obj Fielder, filters []Filter) bool {
	for i := range filters {
		if !filters[i].match(obj) {
			return false
		}
	}
	return true
}

func (f *Filter) match(obj Fielder) bool {
	v, ok := obj.Field(f.Field)
	switch f.Op {
	case HAS:
		want, isBool := f.Value.(bool)
		return isBool && ok == want
	case NEQ:
		return !ok || !Equal(v, f.Value)
	case EXCLUDE:
		return !ok || !f.inList(v)
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
		return f.inList(v)
	case LIKE:
		if m := f.compiled; m.fits(f) {
			return m.like.match(Text(v))
		}
		pattern, isString := f.Value.(string)
		return isString && cachedLike(pattern).match(Text(v))
	case CONTAINS, CONTAINSANY:
		arr, isArr := v.([]any)
		if !isArr {
			return false
		}
		if m := f.compiled; m.fits(f) {
			if f.Op == CONTAINS {
				return m.set.containsAll(arr)
			}
			return m.set.containsAny(arr)
		}
		return containsLinear(arr, f)
	}
	return false
}

// inList reports whether v is Equal to one of the filter's list values.
func (f *Filter) inList(v any) bool {
	if m := f.compiled; m.fits(f) {
		return m.set.has(v)
	}
	list, _ := f.Value.([]any)
	for _, x := range list {
		if Equal(v, x) {
			return true
		}
	}
	return false
}

// containsLinear is contains_/contains_any_ for a filter not compiled: every
// wanted value against every element.
func containsLinear(arr []any, f *Filter) bool {
	want, _ := f.Value.([]any)
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

// AfterLast reports whether obj comes strictly after the last object of the
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
