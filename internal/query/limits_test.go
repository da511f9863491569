package query

import (
	"fmt"
	"strings"
	"testing"

	"kintogo/internal/kerr"
)

// TestParseLimits checks each bound at its limit (accepted) and one past it
// (refused, with the parameter's name and a description stating the limit).
func TestParseLimits(t *testing.T) {
	list := func(n int) string { return strings.TrimSuffix(strings.Repeat("1,", n), ",") }
	jsonList := func(n int) string { return "[" + list(n) + "]" }
	filters := func(n int, last Param) []Param {
		var ps []Param
		for i := 0; i < n-1; i++ {
			ps = append(ps, Param{Name: fmt.Sprintf("f%d", i), Value: "1"})
		}
		return append(ps, last)
	}
	sortFields := func(n int) string {
		var fs []string
		for i := 0; i < n; i++ {
			fs = append(fs, fmt.Sprintf("f%d", i))
		}
		return strings.Join(fs, ",")
	}
	tests := []struct {
		name    string
		ok, bad []Param
		errName string
		message string
	}{
		{"like_ pattern",
			[]Param{{"like_title", strings.Repeat("a", MaxPatternBytes)}},
			[]Param{{"like_title", strings.Repeat("a", MaxPatternBytes+1)}},
			"like_title", "Pattern too long: at most 1024 bytes are allowed"},
		{"like_ pattern given as JSON counts decoded",
			[]Param{{"like_title", `"` + strings.Repeat("a", MaxPatternBytes) + `"`}},
			[]Param{{"like_title", `"` + strings.Repeat("a", MaxPatternBytes+1) + `"`}},
			"like_title", "Pattern too long: at most 1024 bytes are allowed"},
		{"in_ values",
			[]Param{{"in_n", list(MaxListValues)}},
			[]Param{{"in_n", list(MaxListValues + 1)}},
			"in_n", "Too many values: at most 10000 are allowed"},
		{"exclude_ values",
			[]Param{{"exclude_n", list(MaxListValues)}},
			[]Param{{"exclude_n", list(MaxListValues + 1)}},
			"exclude_n", "Too many values: at most 10000 are allowed"},
		{"contains_ values",
			[]Param{{"contains_tags", jsonList(MaxListValues)}},
			[]Param{{"contains_tags", jsonList(MaxListValues + 1)}},
			"contains_tags", "Too many values: at most 10000 are allowed"},
		{"contains_any_ values",
			[]Param{{"contains_any_tags", jsonList(MaxListValues)}},
			[]Param{{"contains_any_tags", jsonList(MaxListValues + 1)}},
			"contains_any_tags", "Too many values: at most 10000 are allowed"},
		{"filters",
			filters(MaxFilters, Param{"last", "1"}),
			filters(MaxFilters+1, Param{"last", "1"}),
			"last", "Too many filters: at most 100 are allowed in one query"},
		{"_since counts as a filter",
			filters(MaxFilters, Param{"_since", "1"}),
			filters(MaxFilters+1, Param{"_since", "1"}),
			"_since", "Too many filters: at most 100 are allowed in one query"},
		{"_sort fields",
			[]Param{{"_sort", sortFields(MaxSortFields)}},
			[]Param{{"_sort", sortFields(MaxSortFields + 1)}},
			"_sort", "Too many sort fields: at most 100 are allowed"},
		{"_fields entries",
			[]Param{{"_fields", sortFields(MaxFields)}},
			[]Param{{"_fields", sortFields(MaxFields + 1)}},
			"_fields", "Too many fields: at most 100 are allowed"},
	}
	for _, tt := range tests {
		if _, err := Parse(tt.ok, Schema{}, 0); err != nil {
			t.Errorf("%s: at the limit: %v", tt.name, err)
		}
		_, err := Parse(tt.bad, Schema{}, 0)
		ke, ok := err.(*kerr.Error)
		if !ok || ke.Kind != kerr.Invalid {
			t.Errorf("%s: past the limit: error %v, want a validation error", tt.name, err)
			continue
		}
		d := ke.Details.([]kerr.Detail)[0]
		if d.Location != "querystring" || d.Name == nil || *d.Name != tt.errName || d.Description != tt.message {
			t.Errorf("%s: %s %v %q, want querystring %s %q", tt.name, d.Location, d.Name, d.Description, tt.errName, tt.message)
		}
	}
}

// TestCompiledFilterFollowsItsValue: a parsed filter given a new Value by
// its caller matches on the new Value, not on the stale compiled one.
func TestCompiledFilterFollowsItsValue(t *testing.T) {
	q, err := Parse(params("in_n=1,2&like_title=*an*&contains_tags=[1]"), Schema{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	o := obj{"n": num("3"), "title": "Cherry", "tags": []any{num("2")}}
	for i, v := range []any{[]any{num("3")}, "*err*", []any{num("2.0")}} {
		f := q.Filters[i]
		if Match(o, []Filter{f}) {
			t.Errorf("%v: matches before the change", f.Op)
		}
		f.Value = v
		if !Match(o, []Filter{f}) || !Match(o, Compile([]Filter{f})) {
			t.Errorf("%v: the new value %v is not used", f.Op, v)
		}
	}
	if Compile(nil) != nil {
		t.Error("Compile(nil)")
	}
}

// TestMatchDoesNotAllocate: compiled like_ and in_ filters do no per-object
// work beyond reading the object (the old ones compiled a regexp, or
// compared with every value).
func TestMatchDoesNotAllocate(t *testing.T) {
	q, err := Parse(params("like_title=*an*a&in_id=a,b,c&contains_any_tags=[%22x%22,2]"), Schema{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	o := obj{"id": "b", "title": "Banana", "tags": []any{"y", num("2")}}
	if n := testing.AllocsPerRun(100, func() {
		if !Match(o, q.Filters) {
			t.Fatal("no match")
		}
	}); n != 0 {
		t.Errorf("%v allocations per Match", n)
	}
}

// TestLikeOnLastModified: a like_ filter on last_modified used to carry an
// int64 pattern, on which Match panicked.
func TestLikeOnLastModified(t *testing.T) {
	q, err := Parse(params("like_last_modified=%22123%22"), Schema{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !Match(obj{"last_modified": int64(1700000123000)}, q.Filters) || Match(obj{"last_modified": int64(1)}, q.Filters) {
		t.Error("like_ on last_modified reads its text")
	}
	if _, err := Parse(params("like_last_modified=abc"), Schema{}, 0); err == nil {
		t.Error("a like_last_modified value that is no timestamp is still refused")
	}
}

// TestHandBuiltFiltersOfWrongTypeDoNotPanic: Match used to panic on a Value
// of the wrong type for its Op.
func TestHandBuiltFiltersOfWrongTypeDoNotPanic(t *testing.T) {
	o := obj{"a": "x"}
	for _, op := range []Operator{HAS, LIKE, IN, CONTAINS, CONTAINSANY} {
		if Match(o, []Filter{{Field: "a", Op: op, Value: 42}}) {
			t.Errorf("%v with a wrong value matches", op)
		}
	}
	if Match(o, []Filter{{Field: "a", Op: EXCLUDE, Value: 42}}) != true {
		t.Error("exclude_ with a wrong value excludes nothing")
	}
}
