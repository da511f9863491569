package query

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// oracleMatch is Match as it was before filters were compiled: the
// straightforward evaluation, kept as the reference the compiled one must
// agree with.
func oracleMatch(obj Fielder, filters []Filter) bool {
	for _, f := range filters {
		if !oracleMatchOne(obj, f) {
			return false
		}
	}
	return true
}

func oracleMatchOne(obj Fielder, f Filter) bool {
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
		return oracleLikePattern(f.Value.(string)).MatchString(Text(v))
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

func oracleLikePattern(value string) *regexp.Regexp {
	if !strings.Contains(value, "*") {
		value = "*" + value + "*"
	}
	parts := strings.Split(value, "*")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile("(?is)^" + strings.Join(parts, ".*") + "$")
}

// Pieces of random strings: case-folding orbits with more than two runes
// (k K U+212A, s S U+017F, σ Σ ς), runes without a simple case pair, regexp
// metacharacters, JSON punctuation (like_ reads non-strings as JSON text),
// U+FFFD.
var diffRunes = []string{
	"a", "A", "b", "k", "K", "\u212a", "s", "S", "\u017f", "σ", "Σ", "ς",
	"ß", "ẞ", "İ", "ı", "i", "é", "É", "ǅ", "ǆ", "Ǆ", ".", "\n", "\ufffd",
	"1", "0", " ", "[", "]", "\"", ",", "{", ":", "\\", "e",
}

// diffNumbers spell equal and nearly equal numbers many ways, including
// values Compare only reads approximately (huge exponents) or not at all.
var diffNumbers = []any{
	num("0"), num("-0"), num("0.0"), num("1"), num("1.0"), num("1e0"), num("10e-1"),
	num("2"), num("0.5"), num("5e-1"), num("-1"), num("-1.0"), num("0.1"),
	num("1e999999999"), num("2e999999999"), num("-1e999999999"), num("1e-999999999"),
	num("1e99999999999999999999"), num("12345678901234567890"), num("12345678901234567891"),
	num("9223372036854775807"), num("9223372036854775808"), num("9.223372036854775807e18"),
	num("1e300"), num("100"), num("1e2"),
	0.0, math.Copysign(0, -1), 1.0, 0.5, 0.1, 2.0, 1e300, math.Inf(1), math.Inf(-1),
	int64(1), int64(2), int64(-1), int64(math.MaxInt64), int64(0),
	1, 0, 100,
}

type diffGen struct{ r *rand.Rand }

func (g diffGen) text(maxRunes int, invalid bool) string {
	var b strings.Builder
	for n := g.r.Intn(maxRunes + 1); n > 0; n-- {
		if invalid && g.r.Intn(20) == 0 {
			b.WriteString("\xff")
			continue
		}
		b.WriteString(diffRunes[g.r.Intn(len(diffRunes))])
	}
	return b.String()
}

func (g diffGen) pattern() string {
	var b strings.Builder
	for n := g.r.Intn(7); n > 0; n-- {
		if g.r.Intn(3) == 0 {
			b.WriteByte('*')
		} else {
			b.WriteString(diffRunes[g.r.Intn(len(diffRunes))])
		}
	}
	return b.String()
}

func (g diffGen) value(depth int) any {
	switch k := g.r.Intn(20); {
	case k < 6:
		return g.text(3, true)
	case k < 12:
		return diffNumbers[g.r.Intn(len(diffNumbers))]
	case k < 13:
		return nil
	case k < 14:
		return g.r.Intn(2) == 0
	case k < 15:
		// No JSON type: Compare finds all such values equal.
		return []any{int32(1), float32(1.5), uint8(3)}[g.r.Intn(3)]
	case k < 18 && depth > 0:
		return g.list(depth-1, 4)
	case depth > 0:
		m := map[string]any{}
		for n := g.r.Intn(3); n > 0; n-- {
			m[[]string{"a", "b", "x"}[g.r.Intn(3)]] = g.value(depth - 1)
		}
		return m
	}
	return g.text(2, false)
}

func (g diffGen) list(depth, max int) []any {
	l := make([]any, g.r.Intn(max+1))
	for i := range l {
		l[i] = g.value(depth)
	}
	return l
}

var diffFields = []string{"a", "b", "t", "m.x", "m", "missing"}

func (g diffGen) object() obj {
	o := obj{}
	for _, f := range []string{"a", "b", "t"} {
		if g.r.Intn(5) > 0 {
			o[f] = g.value(2)
		}
	}
	if g.r.Intn(2) == 0 {
		// Arrays often, so that contains_ finds something to read.
		o["t"] = g.list(1, 6)
	}
	if g.r.Intn(2) == 0 {
		m := map[string]any{}
		if g.r.Intn(4) > 0 {
			m["x"] = g.value(1)
		}
		o["m"] = m
	}
	return o
}

var diffOps = []Operator{EQ, NEQ, LT, GT, MAX, MIN, IN, EXCLUDE, LIKE, HAS, CONTAINS, CONTAINSANY}

func (g diffGen) filter(o obj) Filter {
	f := Filter{Field: diffFields[g.r.Intn(len(diffFields))], Op: diffOps[g.r.Intn(len(diffOps))]}
	// Often reuse a value of the object, so that matches are not rare.
	own, hasOwn := o.Field(f.Field)
	pick := func() any {
		if hasOwn && g.r.Intn(3) == 0 {
			return own
		}
		return g.value(1)
	}
	switch f.Op {
	case HAS:
		f.Value = g.r.Intn(2) == 0
	case LIKE:
		f.Value = g.pattern()
		if s, ok := own.(string); hasOwn && ok && utf8.ValidString(s) && g.r.Intn(3) == 0 {
			f.Value = s // a string matches itself (with implicit *...*)
		}
	case IN, EXCLUDE:
		l := g.list(1, 6)
		if len(l) > 0 && hasOwn && g.r.Intn(2) == 0 {
			l[g.r.Intn(len(l))] = own
		}
		f.Value = l
	case CONTAINS, CONTAINSANY:
		l := g.list(1, 4)
		if arr, ok := own.([]any); ok && len(arr) > 0 {
			for i := range l {
				if g.r.Intn(2) == 0 {
					l[i] = arr[g.r.Intn(len(arr))]
				}
			}
		}
		f.Value = l
	default:
		f.Value = pick()
	}
	return f
}

// TestMatchAgreesWithOracle compares Match, on compiled and on hand-built
// filters, with the straightforward evaluator on random objects and filters.
func TestMatchAgreesWithOracle(t *testing.T) {
	g := diffGen{rand.New(rand.NewSource(20240601))}
	cases, matched := 20000, 0
	if testing.Short() {
		cases = 2000
	}
	for i := 0; i < cases; i++ {
		o := g.object()
		filters := make([]Filter, 1+g.r.Intn(3))
		for j := range filters {
			filters[j] = g.filter(o)
		}
		want := oracleMatch(o, filters)
		if want {
			matched++
		}
		if got := Match(o, Compile(filters)); got != want {
			t.Fatalf("compiled: Match(%s, %s) = %v, oracle %v", show(o), show(filters), got, want)
		}
		if got := Match(o, filters); got != want {
			t.Fatalf("hand-built: Match(%s, %s) = %v, oracle %v", show(o), show(filters), got, want)
		}
		// One filter at a time too: a conjunction hides most of them.
		for _, f := range filters {
			want := oracleMatchOne(o, f)
			if got := Match(o, Compile([]Filter{f})); got != want {
				t.Fatalf("compiled: Match(%s, %s) = %v, oracle %v", show(o), show(f), got, want)
			}
		}
	}
	// Guard against a generator that only produces mismatches.
	if matched < cases/10 || matched > cases*9/10 {
		t.Errorf("%d of %d cases match: the generator is lopsided", matched, cases)
	}
}

// TestParsedMatchAgreesWithOracle does the same through Parse, with values
// written as they would be in a query string.
func TestParsedMatchAgreesWithOracle(t *testing.T) {
	g := diffGen{rand.New(rand.NewSource(7))}
	prefixes := []string{"", "not_", "lt_", "gt_", "min_", "max_", "in_", "exclude_", "like_", "has_", "contains_", "contains_any_"}
	cases := 10000
	if testing.Short() {
		cases = 1000
	}
	for i := 0; i < cases; i++ {
		o := g.object()
		var params []Param
		for n := 1 + g.r.Intn(3); n > 0; n-- {
			name := prefixes[g.r.Intn(len(prefixes))] + diffFields[g.r.Intn(len(diffFields))]
			params = append(params, Param{Name: name, Value: g.rawValue(o)})
		}
		q, err := Parse(params, Schema{}, 0)
		if err != nil {
			continue
		}
		want := oracleMatch(o, q.Filters)
		if got := Match(o, q.Filters); got != want {
			t.Fatalf("Match(%s, %v → %s) = %v, oracle %v", show(o), params, show(q.Filters), got, want)
		}
	}
}

// rawValue is a query-string value: JSON of a random value, a bare word, a
// comma-separated list, a pattern.
func (g diffGen) rawValue(o obj) string {
	switch g.r.Intn(5) {
	case 0:
		return g.pattern()
	case 1:
		var parts []string
		for n := 1 + g.r.Intn(4); n > 0; n-- {
			parts = append(parts, g.rawValue(o))
		}
		return strings.Join(parts, ",")
	case 2:
		if v, ok := o.Field(diffFields[g.r.Intn(len(diffFields))]); ok {
			if b, err := json.Marshal(v); err == nil {
				return string(b)
			}
		}
	}
	v := g.value(1)
	if n, ok := v.(json.Number); ok {
		return string(n)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v) // Inf
	}
	return string(b)
}

func show(v any) string {
	if fs, ok := v.([]Filter); ok {
		v = exported(fs)
	}
	if f, ok := v.(Filter); ok {
		v = exported([]Filter{f})[0]
	}
	return fmt.Sprintf("%#v", v)
}

// TestKeyAgreesWithCompare checks the sort keys behind the sets and the
// SQL backends directly: keys compare as the values do, on every pair of
// sample values, and are equal exactly when the values are Equal.
func TestKeyAgreesWithCompare(t *testing.T) {
	g := diffGen{rand.New(rand.NewSource(3))}
	values := append([]any{nil, true, false, "", "1", "a", "a\x00", "a\x00b", "ab", int32(1), int64(-3), 2.5, -0.0}, diffNumbers...)
	for i := 0; i < 300; i++ {
		values = append(values, g.value(0))
	}
	for _, a := range values {
		for _, b := range values {
			ka, kb := Key(nil, a), Key(nil, b)
			if got, want := bytes.Compare(ka, kb), Compare(a, b); got != want {
				t.Errorf("%s vs %s: keys compare %d, values %d", show(a), show(b), got, want)
			}
			if same := bytes.Equal(ka, kb); same != Equal(a, b) {
				t.Errorf("%s and %s: same key %v, Equal %v", show(a), show(b), same, Equal(a, b))
			}
		}
	}
}
