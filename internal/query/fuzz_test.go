package query

import (
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
	o := obj{"n": num("5"), "tags": []any{"x"}, "title": "Banana", "meta": map[string]any{"kg": num("4")}}
	f.Fuzz(func(t *testing.T, raw string) {
		params, err := ParseRaw(raw)
		if err != nil {
			if !kerr.Is(err, kerr.Invalid) {
				t.Fatalf("ParseRaw(%q): %v is not a validation error", raw, err)
			}
			return
		}
		for _, schema := range []Schema{{}, {Closed: true, Fields: []string{"bucket"}}} {
			q, err := Parse(params, schema, 1_700_000_000_000)
			if err != nil {
				if !kerr.Is(err, kerr.Invalid) {
					t.Fatalf("Parse(%q): %v is not a validation error", raw, err)
				}
				continue
			}
			Match(o, q.Filters)
			q.AfterLast(o)
			objs := []obj{o, {"n": "x"}, {}}
			SortSlice(objs, q.Sort)
			if q.Fields != nil {
				Project(o, q.Fields)
			}
		}
	})
}
