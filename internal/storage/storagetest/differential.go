package storagetest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"kintogo/internal/query"
	"kintogo/internal/storage"
)

// testListDifferential compares every list and count of the backend with
// the Go evaluator (storage.Select over the objects as written, the memory
// backend's semantics), on random collections — mixed types, nesting,
// missing fields, unicode, tombstones — and random queries parsed as Kinto
// parses them (filters × sorts × limits × the id restriction of a caller's
// permissions), each paginated to its end with the tokens the API gives.
func testListDifferential(t *testing.T, s storage.Storage) {
	const datasets, queries = 60, 50
	cases := 0
	for ds := 0; ds < datasets; ds++ {
		rng := rand.New(rand.NewPCG(uint64(ds)+1, 0x5eed))
		scope := storage.Scope{Parent: fmt.Sprintf("/buckets/b/collections/d%d", ds), Resource: "record"}
		model := writeRandomCollection(t, s, rng, scope)
		for qi := 0; qi < queries+len(regressions); qi++ {
			raw := randomQuery(rng)
			if qi >= queries {
				raw = regressions[qi-queries]
			}
			params, err := query.ParseRaw(raw)
			if err != nil {
				t.Fatalf("ParseRaw(%q): %v", raw, err)
			}
			q, err := query.Parse(params, query.Schema{}, 0)
			if err != nil {
				continue // refused by Kinto's parser: no list
			}
			opts := storage.ListOptions{Filters: q.Filters, Sort: q.Sort, IncludeDeleted: q.Tombstones}
			if rng.IntN(4) == 0 {
				opts.IDs = randomIDs(rng, model)
			}
			compareList(t, s, scope, model, raw, opts, int(q.Limit))
			cases++
		}
	}
	if cases < datasets*queries/2 {
		t.Fatalf("only %d queries ran", cases)
	}
}

// regressions are queries that found bugs, run on every dataset.
var regressions = []string{
	// Conditions joined without parentheses: OR escaped the scope.
	"tags=a%2A&_since=1024&_sort=-nested,-last_modified",
	// A keyset on two keys compared the second without the first.
	"_sort=-n,id&_limit=2",
	"_sort=nested.x,-s&_limit=3&min_n=0.1",
}

// compareList pages through a query, page size limit (0: all at once),
// comparing every page and the count with the evaluator.
func compareList(t *testing.T, s storage.Storage, scope storage.Scope, model []*storage.Object, raw string, opts storage.ListOptions, limit int) {
	t.Helper()
	want := storage.Select
	var offset int64
	for page := 0; page < 50; page++ {
		opts.Limit = limit
		exp, err := want(ctx, model, opts)
		if err != nil {
			t.Fatal(err)
		}
		var got []*storage.Object
		var count int
		view(t, s, func(tx storage.Tx) error {
			var err error
			if got, err = tx.List(ctx, scope, opts); err != nil {
				return err
			}
			count, err = tx.Count(ctx, scope, opts.Filters, opts.IDs)
			return err
		})
		if !sameObjects(exp, got) {
			t.Fatalf("%s (ids %v, tombstones %v, page %d):\nwant %s\ngot  %s", raw, opts.IDs, opts.IncludeDeleted, page, describe(exp), describe(got))
		}
		if page == 0 {
			live := opts
			live.IncludeDeleted, live.Limit, live.After = false, 0, nil
			all, _ := want(ctx, model, live)
			if count != len(all) {
				t.Fatalf("%s: count %d, want %d", raw, count, len(all))
			}
		}
		if limit == 0 || len(got) < limit {
			return
		}
		// The next page, through the token the API would give.
		offset += int64(len(got))
		tok := query.Token(got[len(got)-1], opts.Sort, offset)
		var q query.Query
		params, _ := query.ParseRaw("_token=" + url.QueryEscape(tok))
		parsed, err := query.Parse(params, query.Schema{}, 0)
		if err != nil {
			t.Fatalf("token %q: %v", tok, err)
		}
		q = *parsed
		opts.After = q.After
	}
}

// sameObjects compares lists of objects: ids, timestamps and tombstones
// exactly, data as JSON values (PostgreSQL's jsonb writes 1e2 as 100).
func sameObjects(a, b []*storage.Object) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.ID != y.ID || x.LastModified != y.LastModified || x.Deleted != y.Deleted || !query.Equal(x.Data, y.Data) {
			return false
		}
	}
	return true
}

// describe renders objects for comparison: ids, timestamps, tombstones and
// data, in order.
func describe(objs []*storage.Object) string {
	parts := make([]string, len(objs))
	for i, o := range objs {
		b, _ := json.Marshal(o.Data)
		parts[i] = fmt.Sprintf("%s@%d%s%s", o.ID, o.LastModified, map[bool]string{true: "(deleted)"}[o.Deleted], b)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// writeRandomCollection writes 0 to 40 random objects, deletes some, and
// returns what was written as the evaluator sees it: every object and
// tombstone, in id order (the memory backend's).
func writeRandomCollection(t *testing.T, s storage.Storage, rng *rand.Rand, scope storage.Scope) []*storage.Object {
	byID := map[string]*storage.Object{}
	n := rng.IntN(41)
	update(t, s, func(tx storage.Tx) error {
		for i := 0; i < n; i++ {
			id := randomID(rng)
			var supplied int64
			if rng.IntN(8) == 0 {
				supplied = int64(1000 + rng.IntN(50)) // replicated, possibly equal to another's
			}
			o, err := tx.Put(ctx, scope, &storage.Object{ID: id, Data: randomData(rng), LastModified: supplied})
			if err != nil {
				return err
			}
			byID[id] = o
		}
		for id := range byID {
			if rng.IntN(5) == 0 {
				tomb, err := tx.Delete(ctx, scope, id, 0)
				if err != nil {
					return err
				}
				byID[id] = tomb
			}
		}
		return nil
	})
	// Later writes bring tombstones back, replace objects and delete some
	// again: every way a scope's live count changes.
	update(t, s, func(tx storage.Tx) error {
		for id, o := range byID {
			var err error
			switch rng.IntN(6) {
			case 0:
				_, err = tx.Put(ctx, scope, &storage.Object{ID: id, Data: randomData(rng)})
			case 1:
				if !o.Deleted {
					_, err = tx.Delete(ctx, scope, id, 0)
				}
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	// The evaluator works on the objects as the backend stores them
	// (PostgreSQL's jsonb writes 1e2 as 100, which like_ then sees): all of
	// them, tombstones included, in id order as the memory backend lists.
	var out []*storage.Object
	view(t, s, func(tx storage.Tx) (err error) {
		out, err = tx.List(ctx, scope, storage.ListOptions{IncludeDeleted: true})
		return err
	})
	if len(out) != len(byID) { // every id written is an object or a tombstone
		t.Fatalf("%d objects written, %d listed", len(byID), len(out))
	}
	for i := 1; i < len(out); i++ {
		if out[i-1].ID >= out[i].ID {
			t.Fatalf("a list without sort is not in id order: %q then %q", out[i-1].ID, out[i].ID)
		}
	}
	return out
}

var idAlphabet = []string{"a", "b", "c", "A", "Z", "0", "9", "_", "-", "é"}

func randomID(rng *rand.Rand) string {
	var b strings.Builder
	b.WriteString([]string{"a", "B", "0", "z"}[rng.IntN(4)])
	for i := rng.IntN(4); i > 0; i-- {
		b.WriteString(idAlphabet[rng.IntN(len(idAlphabet))])
	}
	return b.String()
}

// randomValue is a JSON value of any type, as clients store them.
func randomValue(rng *rand.Rand, depth int) any {
	switch k := rng.IntN(10); {
	case k == 0:
		return nil
	case k <= 2:
		return []string{"", "a", "B", "ab", "éa", "日本", "a*b", "10", "%_", "Z", "a\u0001", "\u212a"}[rng.IntN(12)]
	case k <= 4:
		return json.Number(randomNumbers[rng.IntN(len(randomNumbers))])
	case k == 5:
		return rng.IntN(2) == 0
	case k <= 7 && depth < 2:
		n := rng.IntN(3)
		l := make([]any, n)
		for i := range l {
			l[i] = randomValue(rng, depth+1)
		}
		return l
	case depth < 2:
		return map[string]any{"x": randomValue(rng, depth+1)}
	}
	return "leaf"
}

func randomData(rng *rand.Rand) map[string]any {
	data := map[string]any{}
	for _, f := range []string{"n", "s", "tags", "nested", "flag"} {
		if rng.IntN(4) > 0 {
			data[f] = randomValue(rng, 0)
		}
	}
	if rng.IntN(3) == 0 {
		data["nested"] = map[string]any{"x": randomValue(rng, 1)}
	}
	if rng.IntN(8) == 0 {
		data["nested.x"] = randomValue(rng, 1) // a key with a dot: found before the path
	}
	return data
}

// randomNumbers are spellings of numbers whose order SQL gets wrong
// unless it compares exact values: equal values spelt differently, values
// a float64 cannot tell apart, integers beyond float64's and int64's.
var randomNumbers = []string{"0", "1", "-1", "2.5", "10", "1e2", "100", "-0.5", "3", "9007199254740993",
	"1.0", "-0", "0.1", "0.10000000000000000001", "1e400", "-1e400", "9223372036854775808", "9007199254740992.5",
	"1.152921504606847e18", "1152921504606846990", "2.50"}

var (
	queryFields = []string{"id", "last_modified", "n", "s", "tags", "nested", "nested.x", "flag", "missing"}
	queryOps    = []string{"", "not_", "lt_", "gt_", "min_", "max_", "in_", "exclude_", "like_", "has_", "contains_", "contains_any_"}
	queryValues = []string{"a", "B", "1", "2.5", "10", "true", "false", "null", "1000", "a*", "*b*", "a,B", "1,10,a", "[1,2]", `"10"`, "é", "0", "-1", "1020", "1040", "a_", "B0", "z", "0.1", "1e400", "9007199254740993", "1.0", "2.50"}
)

// columnFields are the fields SQL backends evaluate in SQL: half of the
// queries use only them.
var columnFields = []string{"id", "last_modified"}

// randomQuery is a query string of filters, a sort and a limit.
func randomQuery(rng *rand.Rand) string {
	fields := queryFields
	if rng.IntN(2) == 0 {
		fields = columnFields
	}
	var params []string
	for i := rng.IntN(3); i > 0; i-- {
		f := fields[rng.IntN(len(fields))]
		params = append(params, queryOps[rng.IntN(len(queryOps))]+f+"="+url.QueryEscape(queryValues[rng.IntN(len(queryValues))]))
	}
	if rng.IntN(4) == 0 {
		params = append(params, "_since="+strconv.Itoa(1000+rng.IntN(60)))
	}
	if rng.IntN(3) > 0 {
		var sorts []string
		for i := 1 + rng.IntN(2); i > 0; i-- {
			dir := []string{"", "-"}[rng.IntN(2)]
			sorts = append(sorts, dir+fields[rng.IntN(len(fields))])
		}
		params = append(params, "_sort="+strings.Join(sorts, ","))
	}
	if rng.IntN(3) > 0 {
		params = append(params, "_limit="+strconv.Itoa(1+rng.IntN(7)))
	}
	return strings.Join(params, "&")
}

// randomIDs is a caller's id restriction: some of the ids, and one that
// does not exist.
func randomIDs(rng *rand.Rand, model []*storage.Object) []string {
	ids := []string{"nope"}
	for _, o := range model {
		if rng.IntN(2) == 0 {
			ids = append(ids, o.ID)
		}
	}
	return ids
}
