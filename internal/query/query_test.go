package query

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"kintogo/internal/kerr"
)

func params(raw string) []Param {
	p, err := ParseRaw(raw)
	if err != nil {
		panic(err)
	}
	return p
}

func num(s string) json.Number { return json.Number(s) }

func TestNative(t *testing.T) {
	tests := []struct {
		in   string
		want any
	}{
		{"1", num("1")},
		{"1.5", num("1.5")},
		{"true", true},
		{"null", nil},
		{`"1"`, "1"},
		{"Ben", "Ben"},
		{"[1,2]", []any{num("1"), num("2")}},
		{`{"x":1}`, map[string]any{"x": num("1")}},
		{"1 2", "1 2"},
		{"", ""},
		{"y,z", "y,z"},
	}
	for _, tt := range tests {
		if got := Native(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Native(%q) = %#v, want %#v", tt.in, got, tt.want)
		}
	}
}

func TestCompareOrdersLikeJSONB(t *testing.T) {
	// null < strings < numbers < booleans < arrays < objects
	ordered := []any{nil, "", "a", "b", num("-1"), num("2"), num("10"), num("10.5"), false, true,
		[]any{}, []any{num("9")}, []any{num("1"), num("2")}, map[string]any{}, map[string]any{"a": num("1")}}
	for i := range ordered {
		for j := range ordered {
			got := Compare(ordered[i], ordered[j])
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got != want {
				t.Errorf("Compare(%v, %v) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
	if !Equal(num("1"), num("1.0")) || Equal(num("1"), "1") {
		t.Error("numbers compare by value, not as strings")
	}
	if Compare(num("12345678901234567890"), num("12345678901234567891")) >= 0 {
		t.Error("big integers compare exactly")
	}
}

func TestParseFilters(t *testing.T) {
	tests := []struct {
		raw  string
		want []Filter
	}{
		{"title=apple", []Filter{{Field: "title", Op: EQ, Value: "apple"}}},
		{"n=10", []Filter{{Field: "n", Op: EQ, Value: num("10")}}},
		{"n=%2210%22", []Filter{{Field: "n", Op: EQ, Value: "10"}}},
		{"min_n=3&max_n=7", []Filter{{Field: "n", Op: MIN, Value: num("3")}, {Field: "n", Op: MAX, Value: num("7")}}},
		{"in_title=apple,fig", []Filter{{Field: "title", Op: IN, Value: []any{"apple", "fig"}}}},
		{"exclude_n=1,2", []Filter{{Field: "n", Op: EXCLUDE, Value: []any{num("1"), num("2")}}}},
		{"contains_any_tags=y,z", []Filter{{Field: "tags", Op: CONTAINSANY, Value: []any{"y,z"}}}},
		{"contains_tags=[%22x%22]", []Filter{{Field: "tags", Op: CONTAINS, Value: []any{"x"}}}},
		{"has_meta=false", []Filter{{Field: "meta", Op: HAS, Value: false}}},
		{"like_title=*an*", []Filter{{Field: "title", Op: LIKE, Value: "*an*"}}},
		{"meta.origin=fr", []Filter{{Field: "meta.origin", Op: EQ, Value: "fr"}}},
		{"id=123", []Filter{{Field: "id", Op: EQ, Value: "123"}}},
		{"_since=%22100%22&_before=200", []Filter{{Field: "last_modified", Op: GT, Value: int64(100)}, {Field: "last_modified", Op: LT, Value: int64(200)}}},
		{"_expected=1&_=x&_limit=3", nil},
		{"eq_n=1", []Filter{{Field: "n", Op: EQ, Value: num("1")}}},
		{"has_children=true", []Filter{{Field: "children", Op: HAS, Value: true}}},
	}
	for _, tt := range tests {
		q, err := Parse(params(tt.raw), Schema{}, 0)
		if err != nil {
			t.Errorf("%s: %v", tt.raw, err)
			continue
		}
		if !reflect.DeepEqual(exported(q.Filters), tt.want) {
			t.Errorf("%s: filters %#v, want %#v", tt.raw, q.Filters, tt.want)
		}
	}
}

// exported is filters without their compiled matchers, for comparisons.
func exported(filters []Filter) []Filter {
	var out []Filter
	for _, f := range filters {
		out = append(out, Filter{Field: f.Field, Op: f.Op, Value: f.Value})
	}
	return out
}

func TestParseErrors(t *testing.T) {
	closed := Schema{Closed: true, Fields: []string{"bucket"}}
	tests := []struct {
		raw, message string
		schema       Schema
	}{
		{"_limit=abc", `"abc" is not a number`, Schema{}},
		{"_since=abc", `"abc" is not a number`, Schema{}},
		{"_before=xyz", `"xyz" is not a number`, Schema{}},
		{"_since=-5", "Invalid value for _since", Schema{}},
		{"_limit=-1", "-1 is less than minimum value 0", Schema{}},
		{"nope=1", "Unknown filter field 'nope'", closed},
		{"_sort=nope", "Unknown sort field 'nope'", closed},
		{"_fields=nope", "Fields nope do not exist", closed},
		{"in_id=1,2", "Invalid value for in_id", Schema{}},
		{"in_last_modified=1,2", "Invalid value for in_last_modified", Schema{}},
		{"like_title=12", "Invalid value for like_title", Schema{}},
		{"contains_id=a", "Field 'id' is not an array", Schema{}},
		{"last_modified=abc", "Invalid value for last_modified", Schema{}},
		{"a=%00", "Invalid character 0x00", Schema{}},
		{"_token=garbage", "_token has invalid content", Schema{}},
		{"_token=e30=", "_token has invalid content", Schema{}}, // {}
	}
	for _, tt := range tests {
		_, err := Parse(params(tt.raw), tt.schema, 0)
		ke, ok := err.(*kerr.Error)
		if !ok || ke.Kind != kerr.Invalid {
			t.Errorf("%s: error %v, want a validation error", tt.raw, err)
			continue
		}
		if d := ke.Details.([]kerr.Detail); d[0].Description != tt.message {
			t.Errorf("%s: %q, want %q", tt.raw, d[0].Description, tt.message)
		}
	}
}

func TestParseFutureTimestamp(t *testing.T) {
	now := int64(1_700_000_000_000)
	if _, err := Parse(params("_since=1700000000001"), Schema{}, now); err != nil {
		t.Errorf("a near-future _since is fine: %v", err)
	}
	if _, err := Parse(params("_since=1900000000000"), Schema{}, now); err == nil {
		t.Error("a _since more than a day ahead must be refused")
	}
}

func TestSortAndTieBreaker(t *testing.T) {
	q, _ := Parse(params("_sort=n,-title,+x.y,bad%20token"), Schema{}, 0)
	want := []Sort{{"n", false}, {"title", true}, {"x.y", false}, {"last_modified", true}}
	if !reflect.DeepEqual(q.Sort, want) {
		t.Errorf("sort %v, want %v", q.Sort, want)
	}
	q, _ = Parse(params("_sort=last_modified"), Schema{}, 0)
	if !reflect.DeepEqual(q.Sort, []Sort{{"last_modified", false}}) {
		t.Errorf("explicit last_modified sort: %v", q.Sort)
	}
}

type obj map[string]any

func (o obj) Field(p string) (any, bool) { return Lookup(o, p) }

func TestMatchMissingFields(t *testing.T) {
	o := obj{"n": num("5"), "tags": []any{"x", "y"}, "title": "Banana", "meta": map[string]any{"kg": num("4")}, "z": nil}
	tests := []struct {
		f    Filter
		want bool
	}{
		{Filter{Field: "n", Op: EQ, Value: num("5.0")}, true},
		{Filter{Field: "missing", Op: NEQ, Value: num("1")}, true},
		{Filter{Field: "missing", Op: GT, Value: num("1")}, true},
		{Filter{Field: "missing", Op: MIN, Value: num("1")}, true},
		{Filter{Field: "missing", Op: LT, Value: num("1")}, false},
		{Filter{Field: "missing", Op: MAX, Value: num("1")}, false},
		{Filter{Field: "missing", Op: EQ, Value: nil}, false},
		{Filter{Field: "z", Op: EQ, Value: nil}, true},
		{Filter{Field: "z", Op: HAS, Value: true}, true},
		{Filter{Field: "missing", Op: HAS, Value: false}, true},
		{Filter{Field: "missing", Op: EXCLUDE, Value: []any{"a"}}, true},
		{Filter{Field: "missing", Op: IN, Value: []any{"a"}}, false},
		{Filter{Field: "title", Op: LIKE, Value: "an"}, true},
		{Filter{Field: "title", Op: LIKE, Value: "b*A"}, true},
		{Filter{Field: "title", Op: LIKE, Value: "x*"}, false},
		{Filter{Field: "title", Op: LIKE, Value: "b.n"}, false},
		{Filter{Field: "tags", Op: CONTAINS, Value: []any{"x", "y"}}, true},
		{Filter{Field: "tags", Op: CONTAINS, Value: []any{"x", "q"}}, false},
		{Filter{Field: "tags", Op: CONTAINSANY, Value: []any{"q", "y"}}, true},
		{Filter{Field: "title", Op: CONTAINS, Value: []any{"B"}}, false},
		{Filter{Field: "meta.kg", Op: GT, Value: num("3")}, true},
		{Filter{Field: "n", Op: LT, Value: "a"}, false}, // numbers sort after strings
	}
	for _, tt := range tests {
		if got := Match(o, []Filter{tt.f}); got != tt.want {
			t.Errorf("%v: %v, want %v", tt.f, got, tt.want)
		}
	}
}

func TestTokenRoundTrip(t *testing.T) {
	sorts := []Sort{{"n", false}, {"meta.kg", true}, {"last_modified", true}}
	last := obj{"n": num("3"), "last_modified": int64(42)}
	tok := Token(last, sorts, 7)
	q, err := Parse(params("_sort=n,-meta.kg&_token="+tok), Schema{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if q.Offset != 7 || !reflect.DeepEqual(q.After, map[string]any{"n": num("3"), "last_modified": int64(42)}) {
		t.Errorf("after %v offset %d", q.After, q.Offset)
	}
	if !q.AfterLast(obj{"n": num("4"), "last_modified": int64(1)}) || q.AfterLast(obj{"n": num("2"), "last_modified": int64(99)}) {
		t.Error("keyset rule")
	}
}

func TestParseRawKeepsOrder(t *testing.T) {
	p := params("b=2&a=1&b=3&_token=x")
	p = Set(p, "_limit", "5")
	p = Set(p, "_token", "y")
	if got := Encode(p); got != "b=2&a=1&b=3&_token=y&_limit=5" {
		t.Errorf("encode %s", got)
	}
	if _, err := ParseRaw("a=%ff"); err == nil {
		t.Error("invalid UTF-8 must be refused")
	}
	if !strings.Contains(Encode([]Param{{"_since", `"1"`}}), "%221%22") {
		t.Error("values are escaped")
	}
}

func TestHugeExponentsCompareQuickly(t *testing.T) {
	if Compare(num("1e999999999"), num("2")) <= 0 || Compare(num("-1e999999999"), num("1e-999999999")) >= 0 {
		t.Error("huge exponents")
	}
}
