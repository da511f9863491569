package schema

import (
	"slices"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"kintogo/internal/pyfmt"
)

// A graph is every subschema of a compiled schema, reached through the
// library's exported fields, indexed by Location.
type graph struct {
	all   []*jsonschema.Schema
	byLoc map[string]*jsonschema.Schema
	// inPlace lists, for each schema, the schemas it applies in place
	// (once per keyword that does).
	inPlace map[*jsonschema.Schema][]*jsonschema.Schema
	// post is the position of each schema in a post-order of the in-place
	// edges (set by checkCycles): when they form no cycle, a schema comes
	// after all it applies in place.
	post map[*jsonschema.Schema]int
}

func newGraph(root *jsonschema.Schema) *graph {
	g := &graph{byLoc: map[string]*jsonschema.Schema{}, inPlace: map[*jsonschema.Schema][]*jsonschema.Schema{}}
	seen := map[*jsonschema.Schema]bool{root: true}
	stack := []*jsonschema.Schema{root}
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		g.all = append(g.all, s)
		g.byLoc[s.Location] = s
		each(s, func(c *jsonschema.Schema, inPlace bool) {
			if inPlace {
				g.inPlace[s] = append(g.inPlace[s], c)
			}
			if !seen[c] {
				seen[c] = true
				stack = append(stack, c)
			}
		})
	}
	return g
}

// each calls f with every subschema s refers to, in a fixed order (map
// keys sorted, so that messages do not depend on map order). inPlace is
// true for those applied to the same instance as s ($ref, allOf, not,
// if…), false for those applied to a part of it (properties, items…) or
// to property names. Dynamic references count with their static target.
func each(s *jsonschema.Schema, f func(c *jsonschema.Schema, inPlace bool)) {
	one := func(c *jsonschema.Schema, inPlace bool) {
		if c != nil {
			f(c, inPlace)
		}
	}
	list := func(cs []*jsonschema.Schema, inPlace bool) {
		for _, c := range cs {
			one(c, inPlace)
		}
	}
	named := func(m map[string]*jsonschema.Schema, inPlace bool) {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			one(m[k], inPlace)
		}
	}
	// In place.
	one(s.Ref, true)
	one(s.RecursiveRef, true)
	if s.DynamicRef != nil {
		one(s.DynamicRef.Ref, true)
	}
	one(s.Not, true)
	list(s.AllOf, true)
	list(s.AnyOf, true)
	list(s.OneOf, true)
	one(s.If, true)
	one(s.Then, true)
	one(s.Else, true)
	named(s.DependentSchemas, true)
	deps := make([]string, 0, len(s.Dependencies))
	for k := range s.Dependencies {
		deps = append(deps, k)
	}
	sort.Strings(deps)
	for _, k := range deps {
		if c, ok := s.Dependencies[k].(*jsonschema.Schema); ok {
			one(c, true)
		}
	}
	// On parts of the instance.
	named(s.Properties, false)
	patterns := make([]jsonschema.Regexp, 0, len(s.PatternProperties))
	for re := range s.PatternProperties {
		patterns = append(patterns, re)
	}
	slices.SortFunc(patterns, func(a, b jsonschema.Regexp) int { return strings.Compare(a.String(), b.String()) })
	for _, re := range patterns {
		one(s.PatternProperties[re], false)
	}
	if c, ok := s.AdditionalProperties.(*jsonschema.Schema); ok {
		one(c, false)
	}
	one(s.PropertyNames, false)
	one(s.UnevaluatedProperties, false)
	switch items := s.Items.(type) {
	case *jsonschema.Schema:
		one(items, false)
	case []*jsonschema.Schema:
		list(items, false)
	}
	if c, ok := s.AdditionalItems.(*jsonschema.Schema); ok {
		one(c, false)
	}
	list(s.PrefixItems, false)
	one(s.Items2020, false)
	one(s.Contains, false)
	one(s.UnevaluatedItems, false)
	one(s.ContentSchema, false)
}

// A cycleError is a schema that applies itself in place, through
// references, to the same instance: Python recurses until it gives up (a
// 500 in Kinto), the library fails every instance it reaches.
type cycleError struct {
	ref string // the reference that closes the cycle, as a fragment
}

func (e *cycleError) Error() string {
	return "$ref" + pyfmt.Repr(e.ref) + " is a reference cycle"
}

// checkCycles looks for a cycle of in-place edges (depth-first, white /
// grey / black), and records the post-order the budget walks in.
func (g *graph) checkCycles() error {
	const (
		white = iota
		grey
		black
	)
	color := map[*jsonschema.Schema]int{}
	g.post = make(map[*jsonschema.Schema]int, len(g.all))
	type frame struct {
		s        *jsonschema.Schema
		children []*jsonschema.Schema
		next     int
	}
	for _, start := range g.all {
		if color[start] != white {
			continue
		}
		color[start] = grey
		stack := []frame{{s: start, children: g.inPlace[start]}}
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			if top.next == len(top.children) {
				color[top.s] = black
				g.post[top.s] = len(g.post)
				stack = stack[:len(stack)-1]
				continue
			}
			c := top.children[top.next]
			top.next++
			switch color[c] {
			case grey:
				// The cycle is the stack from c up; name its first
				// reference (there is one: keywords alone only nest).
				k := 0
				for stack[k].s != c {
					k++
				}
				for i := k; i < len(stack); i++ {
					next := c
					if i+1 < len(stack) {
						next = stack[i+1].s
					}
					if err := refTo(stack[i].s, next); err != nil {
						return err
					}
				}
				return &cycleError{ref: refText(c, c)}
			case white:
				color[c] = grey
				stack = append(stack, frame{s: c, children: g.inPlace[c]})
			}
		}
	}
	return nil
}

// refTo describes the reference of s to target, nil when s does not
// refer to it.
func refTo(s, target *jsonschema.Schema) *cycleError {
	if s.Ref == target || s.RecursiveRef == target || (s.DynamicRef != nil && s.DynamicRef.Ref == target) {
		return &cycleError{ref: refText(s, target)}
	}
	return nil
}

// refText spells a reference to target from s: a fragment in the same
// document, else the target's URL.
func refText(s, target *jsonschema.Schema) string {
	t := parseLoc(target.Location)
	if t.doc == parseLoc(s.Location).doc {
		return "#" + t.pointer()
	}
	return shortURL(target.Location)
}
