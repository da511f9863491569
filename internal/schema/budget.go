package schema

import (
	"encoding/json"
	"slices"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// evalBudget bounds the work of one validation, in evaluations of a
// subschema on a value, weighted by their cost (see weight). The library
// (as Python's jsonschema) re-evaluates a subschema once per path that
// reaches it, so a few hundred bytes of schema (allOf: [{$ref: a}, {$ref:
// a}], nested forty times) or of schema and instance ({allOf: [{items:
// {$ref: "#"}}, {items: {$ref: "#"}}]} on forty nested arrays) ask for 2^40
// evaluations. Each costs the library about 2 µs: the budget is a few
// seconds, above any real record (a 1 MiB array of 200k numbers against a
// three-keyword item schema is under 10^6).
const evalBudget = 1 << 21

// withinBudget bounds, before validating, the work of validating instance
// with root: it counts, for each part of the instance, the paths of
// subschemas that reach it (in-place keywords apply all their subschemas;
// properties, items… only those that apply to the part), so it costs what
// the distinct (subschema, part) pairs cost, and stops as soon as the
// count exceeds the budget.
func withinBudget(g *graph, root *jsonschema.Schema, instance any) bool {
	e := &estimator{g: g, budget: evalBudget}
	return e.visit(instance, map[*jsonschema.Schema]int64{root: 1})
}

type estimator struct {
	g      *graph
	spent  int64
	budget int64
}

// A weighted schema applies to a value through m paths.
type weighted struct {
	s *jsonschema.Schema
	m int64
}

// add and mul saturate just above the budget, so that nothing overflows.
func (e *estimator) add(a, b int64) int64 {
	if a+b > e.budget {
		return e.budget + 1
	}
	return a + b
}

func (e *estimator) mul(a, b int64) int64 {
	if a != 0 && b > (e.budget+1)/a {
		return e.budget + 1
	}
	return e.add(a*b, 0)
}

func (e *estimator) charge(n int64) bool {
	e.spent = e.add(e.spent, n)
	return e.spent <= e.budget
}

// visit charges the schemas of roots (and those they apply in place) on v,
// then visits the parts of v with the schemas that apply to them.
func (e *estimator) visit(v any, roots map[*jsonschema.Schema]int64) bool {
	closure := e.closure(roots)
	size := int64(-1)
	for _, w := range closure {
		if !e.charge(e.mul(w.m, e.weight(w.s, v, &size))) {
			return false
		}
	}
	switch x := v.(type) {
	case map[string]any:
		if !slices.ContainsFunc(closure, func(w weighted) bool { return hasPropertyKeywords(w.s) }) {
			return true
		}
		for k, child := range x {
			next := map[*jsonschema.Schema]int64{}
			names := map[*jsonschema.Schema]int64{}
			for _, w := range closure {
				s := w.s
				if s.Bool != nil {
					continue
				}
				matched := false
				if c := s.Properties[k]; c != nil {
					next[c] = e.add(next[c], w.m)
					matched = true
				}
				for re, c := range s.PatternProperties {
					if re.MatchString(k) {
						next[c] = e.add(next[c], w.m)
						matched = true
					}
				}
				if c, ok := s.AdditionalProperties.(*jsonschema.Schema); ok && !matched {
					next[c] = e.add(next[c], w.m)
				}
				if c := s.UnevaluatedProperties; c != nil {
					next[c] = e.add(next[c], w.m)
				}
				if c := s.PropertyNames; c != nil {
					names[c] = e.add(names[c], w.m)
				}
			}
			if len(names) > 0 && !e.visit(k, names) {
				return false
			}
			if len(next) > 0 && !e.visit(child, next) {
				return false
			}
		}
	case []any:
		if !slices.ContainsFunc(closure, func(w weighted) bool { return hasItemKeywords(w.s) }) {
			return true
		}
		for i, child := range x {
			next := map[*jsonschema.Schema]int64{}
			apply := func(c *jsonschema.Schema, m int64) {
				if c != nil {
					next[c] = e.add(next[c], m)
				}
			}
			for _, w := range closure {
				s := w.s
				if s.Bool != nil {
					continue
				}
				if s.DraftVersion < 2020 {
					switch items := s.Items.(type) {
					case *jsonschema.Schema:
						apply(items, w.m)
					case []*jsonschema.Schema:
						if i < len(items) {
							apply(items[i], w.m)
						} else if c, ok := s.AdditionalItems.(*jsonschema.Schema); ok {
							apply(c, w.m)
						}
					}
				} else if i < len(s.PrefixItems) {
					apply(s.PrefixItems[i], w.m)
				} else {
					apply(s.Items2020, w.m)
				}
				apply(s.Contains, w.m)
				apply(s.UnevaluatedItems, w.m)
			}
			if len(next) > 0 && !e.visit(child, next) {
				return false
			}
		}
	}
	return true
}

// closure is roots and every schema they apply in place, with the number
// of paths to each: schemas in decreasing post-order come before those
// they apply (the in-place edges form no cycle: checkCycles), so one pass
// adds up the paths.
func (e *estimator) closure(roots map[*jsonschema.Schema]int64) []weighted {
	var nodes []*jsonschema.Schema
	seen := map[*jsonschema.Schema]bool{}
	var stack []*jsonschema.Schema
	for s := range roots {
		stack = append(stack, s)
	}
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[s] {
			continue
		}
		seen[s] = true
		nodes = append(nodes, s)
		stack = append(stack, e.g.inPlace[s]...)
	}
	slices.SortFunc(nodes, func(a, b *jsonschema.Schema) int { return e.g.post[b] - e.g.post[a] })
	paths := map[*jsonschema.Schema]int64{}
	for s, m := range roots {
		paths[s] = m
	}
	out := make([]weighted, len(nodes))
	for i, s := range nodes {
		m := paths[s]
		out[i] = weighted{s, m}
		for _, c := range e.g.inPlace[s] {
			paths[c] = e.add(paths[c], m)
		}
	}
	return out
}

// weight is what evaluating s on v costs the library, in units of a bare
// evaluation: it loops over an object's properties (and matches each
// against every pattern), over an array's items when s has an array
// keyword, hashes arrays for uniqueItems, compares with enum and const
// values, reads strings for lengths and patterns, and turns numbers into
// exact rationals (quadratic in their digits). size is the size of v,
// computed once for all the schemas that need it.
func (e *estimator) weight(s *jsonschema.Schema, v any, size *int64) int64 {
	if s.Bool != nil {
		return 1
	}
	w := int64(1 + len(e.g.inPlace[s]))
	sizeOf := func() int64 {
		if *size < 0 {
			*size = countNodes(v, e.budget+1)
		}
		return *size
	}
	if s.Enum != nil {
		w += int64(len(s.Enum.Values))
	}
	switch x := v.(type) {
	case map[string]any:
		w += int64(len(x)) * int64(1+len(s.PatternProperties))
		if s.Enum != nil || s.Const != nil {
			w += sizeOf()
		}
	case []any:
		if hasItemKeywords(s) {
			w += int64(len(x))
		}
		if s.UniqueItems || s.Enum != nil || s.Const != nil {
			w += sizeOf()
		}
	case string:
		if s.Pattern != nil || s.MinLength != nil || s.MaxLength != nil || s.Enum != nil || s.Const != nil {
			w += int64(len(x) / 16)
		}
	case json.Number:
		// The exponent counts as digits: big.Rat expands it.
		if n := len(x) + exponent(x); n > 32 {
			d := int64(n / 500)
			w += e.mul(d, d) + int64(n/64)
		}
	}
	return w
}

// hasPropertyKeywords reports whether s applies subschemas to the
// properties of an object (or their names).
func hasPropertyKeywords(s *jsonschema.Schema) bool {
	return s.Properties != nil || s.PatternProperties != nil || s.AdditionalProperties != nil ||
		s.UnevaluatedProperties != nil || s.PropertyNames != nil
}

// hasItemKeywords reports whether s applies subschemas to the items of an
// array.
func hasItemKeywords(s *jsonschema.Schema) bool {
	return s.Items != nil || s.AdditionalItems != nil || s.PrefixItems != nil || s.Items2020 != nil ||
		s.Contains != nil || s.UnevaluatedItems != nil
}

// countNodes counts the values in v, stopping beyond limit.
func countNodes(v any, limit int64) int64 {
	n := int64(0)
	stack := []any{v}
	for len(stack) > 0 && n <= limit {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		n++
		switch y := x.(type) {
		case map[string]any:
			for _, item := range y {
				stack = append(stack, item)
			}
		case []any:
			stack = append(stack, y...)
		}
	}
	return n
}
