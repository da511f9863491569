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
		{"title=apple", []Filter{{"title", EQ, "apple"}}},
		{"n=10", []Filter{{"n", EQ, num("10")}}},
		{"n=%2210%22", []Filter{{"n", EQ, "10"}}},
		{"min_n=3&max_n=7", []Filter{{"n", MIN, num("3")}, {"n", MAX, num("7")}}},
		{"in_title=apple,fig", []Filter{{"title", IN, []any{"apple", "fig"}}}},
		{"exclude_n=1,2", []Filter{{"n", EXCLUDE, []any{num("1"), num("2")}}}},
		{"contains_any_tags=y,z", []Filter{{"tags", CONTAINSANY, []any{"y,z"}}}},
		{"contains_tags=[%22x%22]", []Filter{{"tags", CONTAINS, []any{"x"}}}},
		{"has_meta=false", []Filter{{"meta", HAS, false}}},
		{"like_title=*an*", []Filter{{"title", LIKE, "*an*"}}},
		{"meta.origin=fr", []Filter{{"meta.origin", EQ, "fr"}}},
		{"id=123", []Filter{{"id", EQ, "123"}}},
		{"_since=%22100%22&_before=200", []Filter{{"last_modified", GT, int64(100)}, {"last_modified", LT, int64(200)}}},
		{"_expected=1&_=x&_limit=3", nil},
		{"eq_n=1", []Filter{{"n", EQ, num("1")}}},
		{"has_children=true", []Filter{{"children", HAS, true}}},
	}
	for _, tt := range tests {
		q, err := Parse(params(tt.raw), Schema{}, 0)
		if err != nil {
			t.Errorf("%s: %v", tt.raw, err)
			continue
		}
		if !reflect.DeepEqual(q.Filters, tt.want) {
			t.Errorf("%s: filters %#v, want %#v", tt.raw, q.Filters, tt.want)
		}
	}
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
		{Filter{"n", EQ, num("5.0")}, true},
		{Filter{"missing", NEQ, num("1")}, true},
		{Filter{"missing", GT, num("1")}, true},
		{Filter{"missing", MIN, num("1")}, true},
		{Filter{"missing", LT, num("1")}, false},
		{Filter{"missing", MAX, num("1")}, false},
		{Filter{"missing", EQ, nil}, false},
		{Filter{"z", EQ, nil}, true},
		{Filter{"z", HAS, true}, true},
		{Filter{"missing", HAS, false}, true},
		{Filter{"missing", EXCLUDE, []any{"a"}}, true},
		{Filter{"missing", IN, []any{"a"}}, false},
		{Filter{"title", LIKE, "an"}, true},
		{Filter{"title", LIKE, "b*A"}, true},
		{Filter{"title", LIKE, "x*"}, false},
		{Filter{"title", LIKE, "b.n"}, false},
		{Filter{"tags", CONTAINS, []any{"x", "y"}}, true},
		{Filter{"tags", CONTAINS, []any{"x", "q"}}, false},
		{Filter{"tags", CONTAINSANY, []any{"q", "y"}}, true},
		{Filter{"title", CONTAINS, []any{"B"}}, false},
		{Filter{"meta.kg", GT, num("3")}, true},
		{Filter{"n", LT, "a"}, false}, // numbers sort after strings
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
