package query

import (
	"bytes"
	"encoding/json"
	"math/big"
	"strings"
	"testing"

	"kintogo/internal/kerr"
)

// FuzzParse feeds arbitrary query strings to the parser: it must never
// panic, and every refusal must be a validation error (a 400, never a 500).
// Parsed queries are then evaluated, which must not panic either.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"_since=1&_before=%22200%22&_sort=-n,title&_limit=3&_fields=a.b",
		"in_id=a,b&exclude_n=1,2&like_title=*an*&has_x=true&contains_any_t=[1,2]",
		"min_meta.kg=4&not_n=null&gt_x={\"a\":1}&lt_y=[]",
		"_token=eyJsYXN0X29iamVjdCI6IHt9LCAib2Zmc2V0IjogMSwgIm5vbmNlIjogIngifQ==",
		"a=%00", "_limit=99999999999999999999", "_since=-1", "a=%ff",
	} {
		f.Add(seed)
	}
	o := obj{"n": num("5"), "tags": []any{"x"}, "title": "Banana", "meta": map[string]any{"kg": num("4")}, "last_modified": int64(1_600_000_000_000)}
	f.Fuzz(func(t *testing.T, raw string) {
		// Parse must stand any parameters, not only decoded ones: split raw
		// as is too, so NUL bytes and invalid UTF-8 reach it.
		lists := [][]Param{splitUndecoded(raw)}
		params, err := ParseRaw(raw)
		if err != nil {
			if !kerr.Is(err, kerr.Invalid) {
				t.Fatalf("ParseRaw(%q): %v is not a validation error", raw, err)
			}
		} else {
			lists = append(lists, params)
		}
		for _, params := range lists {
			for _, schema := range []Schema{{}, {Closed: true, Fields: []string{"bucket"}}} {
				q, err := Parse(params, schema, 1_700_000_000_000)
				if err != nil {
					if !kerr.Is(err, kerr.Invalid) {
						t.Fatalf("Parse(%q): %v is not a validation error", raw, err)
					}
					continue
				}
				checkAgainstOracle(t, o, q.Filters)
				q.AfterLast(o)
				objs := []obj{o, {"n": "x"}, {}}
				SortSlice(objs, q.Sort)
				if q.Fields != nil {
					Project(o, q.Fields)
				}
			}
		}
	})
}

// FuzzMatch evaluates parsed queries on arbitrary JSON objects: Match must
// not panic, and must agree with the straightforward evaluator.
func FuzzMatch(f *testing.F) {
	for _, seed := range []struct{ raw, doc string }{
		{"in_n=1,1.0,%221%22&contains_t=[1,%22a%22]", `{"n": 1e0, "t": [1.0, "a", null]}`},
		{"like_s=*K*%C5%BF*&exclude_n=1e99999999999999999999", `{"s": "\u212a\u017f", "n": 2}`},
		{"contains_any_t=[[1],{%22a%22:1}]&not_m.x=null", `{"t": [[1.0], {"a": 1}], "m": {"x": null}}`},
		{"min_n=0.5&lt_n=1e999999999&like_n=5", `{"n": 0.50}`},
		{"like_t=**&in_t=true,false,null", `{"t": true}`},
	} {
		f.Add(seed.raw, []byte(seed.doc))
	}
	f.Fuzz(func(t *testing.T, raw string, doc []byte) {
		params, err := ParseRaw(raw)
		if err != nil {
			return
		}
		q, err := Parse(params, Schema{}, 0)
		if err != nil {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(doc))
		dec.UseNumber()
		var data map[string]any
		if dec.Decode(&data) != nil {
			return
		}
		checkAgainstOracle(t, obj(data), q.Filters)
		checkAgainstOracle(t, obj(data), exported(q.Filters)) // as if built by hand
	})
}

// checkAgainstOracle fails unless Match agrees with oracleMatch. A panic of
// the oracle itself (the old code panicked on an invalid UTF-8 like_
// pattern) is no verdict.
func checkAgainstOracle(t *testing.T, o obj, filters []Filter) {
	t.Helper()
	got := Match(o, filters)
	want, ok := func() (want, ok bool) {
		defer func() { _ = recover() }()
		return oracleMatch(o, filters), true
	}()
	if ok && got != want {
		t.Fatalf("Match(%s, %s) = %v, oracle %v", show(o), show(filters), got, want)
	}
}

// splitUndecoded is ParseRaw without unescaping or validation.
func splitUndecoded(raw string) []Param {
	var params []Param
	for _, part := range strings.Split(raw, "&") {
		k, v, _ := strings.Cut(part, "=")
		params = append(params, Param{Name: k, Value: v})
	}
	return params
}

// FuzzNumberKey checks the number keys against exact rational arithmetic
// on every pair of JSON numbers of moderate exponent.
func FuzzNumberKey(f *testing.F) {
	for _, p := range [][2]string{{"1", "1.0"}, {"0.1", "0.10000000000000000001"}, {"-2.5e3", "-2500"}, {"1e-5", "0.00001"}, {"-0", "0"}, {"9007199254740993", "9007199254740992.5"}, {"-1.5", "-1.25"}} {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if !isJSONNumber(a) || !isJSONNumber(b) || len(a) > 40 || len(b) > 40 {
			return
		}
		ra, oka := new(big.Rat).SetString(a)
		rb, okb := new(big.Rat).SetString(b)
		if !oka || !okb {
			return
		}
		want := ra.Cmp(rb)
		if got := bytes.Compare(Key(nil, json.Number(a)), Key(nil, json.Number(b))); got != want {
			t.Fatalf("%s vs %s: keys %d, exact %d", a, b, got, want)
		}
		if got := Compare(json.Number(a), json.Number(b)); got != want {
			t.Fatalf("Compare(%s, %s) = %d, exact %d", a, b, got, want)
		}
	})
}

// isJSONNumber reports whether s is a number as JSON spells it.
func isJSONNumber(s string) bool {
	var n json.Number
	return json.Unmarshal([]byte(s), &n) == nil && string(n) == s && strings.TrimSpace(s) == s
}
