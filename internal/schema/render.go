package schema

import (
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"kintogo/internal/pyfmt"
)

// printer renders the library's own messages, for the kinds Python has no
// wording of (a reference cycle, a value that is not JSON) and any kind a
// later version of the library adds. LocalizedString needs a real printer:
// a nil one panics.
var printer = message.NewPrinter(language.English)

// The library reports a tree of errors, Python's jsonschema a sequence,
// Kinto takes the first. The renderer turns the tree into Python's errors:
// wrappers (the root, groups of errors, allOf, $ref, propertyNames) are
// transparent, as Python yields the errors of subschemas themselves; the
// errors of unevaluatedProperties, unevaluatedItems and `items: false` are
// gathered into the single error Python yields for each. Python yields them
// in the order of the schema's keywords, which Go maps lose for client
// schemas: they are ordered by the usual order of keywords (type before
// properties before required…) and names sorted, or, for the meta-schemas,
// by their documents' own order, exactly as Python.

// A step is one keyword on the way from the root schema to an error.
type step struct {
	kw     string
	tok    string // property name, index, or the part of the instance it applies to
	holder loc    // the schema the keyword is in
	depth  int    // the length of the instance location it applies at
	items  bool   // kw is items in its single-schema form
}

// A pyError is an error as Python's jsonschema yields it.
type pyError struct {
	loc     []string // instance location
	chain   []step
	kw      string // Python's `validator`: the keyword that failed
	msg     string
	missing string // the missing property of required, dependencies…
	inNames bool   // the error is about a property name
	agg     *loc   // holder of unevaluated*/items, for gathered errors
	extras  []string
}

// field is the name Kinto reports an error under: the last element of its
// path; at the root, the missing property for required and dependencies,
// or else the failing keyword (Kinto's schema_path[-1]; it answers 500
// where Python's validator_value is not a list, we do not).
func (e *pyError) field() string {
	if n := len(e.loc); n > 0 {
		return e.loc[n-1]
	}
	if e.missing != "" {
		return e.missing
	}
	if e.inNames {
		return "propertyNames"
	}
	return e.kw
}

// checkMessage is Kinto's check_schema message: str(e.path.pop()) +
// e.message.
func (e *pyError) checkMessage() string {
	if n := len(e.loc); n > 0 {
		return e.loc[n-1] + e.msg
	}
	return e.msg
}

// nameCtx is set under propertyNames: the errors are about a name, found
// at the object's location.
type nameCtx struct {
	loc  []string
	name string
}

type renderer struct {
	instance any
	graph    *graph // the compiled schemas, by location; nil when unknown
	docs     map[string]*doc
	errs     []*pyError
	aggs     map[string]*pyError
}

func newRenderer(instance any, g *graph, docs map[string]*doc) *renderer {
	return &renderer{instance: instance, graph: g, docs: docs, aggs: map[string]*pyError{}}
}

// first returns the error Python would raise.
func (r *renderer) first(ve *jsonschema.ValidationError) *pyError {
	r.node(ve, nil, nil)
	for _, e := range r.errs {
		if e.agg != nil {
			r.gathered(e)
		}
	}
	if len(r.errs) == 0 {
		return &pyError{msg: shortURL(ve.ErrorKind.LocalizedString(printer))}
	}
	return slices.MinFunc(r.errs, r.compare)
}

func (r *renderer) node(n *jsonschema.ValidationError, chain []step, names *nameCtx) {
	switch k := n.ErrorKind.(type) {
	case *kind.Schema, *kind.Group, *kind.AllOf:
		if len(n.Causes) == 0 {
			break
		}
		for _, c := range n.Causes {
			r.edge(c, parseLoc(n.SchemaURL), len(n.InstanceLocation), chain, names)
		}
		return
	case *kind.Reference:
		if len(n.Causes) == 0 {
			break
		}
		ch := append(slices.Clone(chain), step{kw: k.Keyword, holder: parseLoc(n.SchemaURL), depth: len(n.InstanceLocation)})
		for _, c := range n.Causes {
			r.edge(c, parseLoc(k.URL), len(n.InstanceLocation), ch, names)
		}
		return
	case *kind.PropertyNames:
		if len(n.Causes) == 0 {
			break
		}
		ch := slices.Clone(chain)
		if m := len(ch); m > 0 && ch[m-1].kw == "propertyNames" {
			ch[m-1].tok = k.Property
		}
		nc := &nameCtx{loc: n.InstanceLocation, name: k.Property}
		for _, c := range n.Causes {
			r.edge(c, parseLoc(n.SchemaURL), 0, ch, nc)
		}
		return
	}
	r.leaf(n, chain, names)
}

// edge follows the keywords from base, the schema of a wrapper, to the
// schema of its cause c.
func (r *renderer) edge(c *jsonschema.ValidationError, base loc, depth int, chain []step, names *nameCtx) {
	ch := slices.Clone(chain)
	if rel, ok := parseLoc(c.SchemaURL).under(base); ok {
		ch = append(ch, decodeSteps(base, rel, depth, c.InstanceLocation)...)
	}
	r.node(c, ch, names)
}

// nameKeywords take a property name (or pattern) after them in a pointer;
// indexKeywords an index; descending keywords apply to a part of the
// instance.
var (
	nameKeywords  = map[string]bool{"properties": true, "patternProperties": true, "definitions": true, "$defs": true, "dependentSchemas": true, "dependencies": true}
	indexKeywords = map[string]bool{"allOf": true, "anyOf": true, "oneOf": true, "prefixItems": true}
	descending    = map[string]bool{"properties": true, "patternProperties": true, "additionalProperties": true, "items": true, "prefixItems": true, "additionalItems": true, "unevaluatedItems": true, "unevaluatedProperties": true, "contains": true}
)

// decodeSteps reads the keywords of a relative pointer, as the library
// builds them: a keyword, then a name or an index for those that take one.
func decodeSteps(holder loc, rel []string, depth int, iloc []string) []step {
	var steps []step
	for i := 0; i < len(rel); {
		st := step{kw: rel[i], holder: holder, depth: depth}
		i++
		next := holder.child(st.kw)
		switch {
		case nameKeywords[st.kw], indexKeywords[st.kw], st.kw == "items" && i < len(rel) && isIndex(rel[i]):
			if i < len(rel) {
				st.tok = rel[i]
				next = next.child(rel[i])
				i++
			}
		case st.kw == "items":
			st.items = true
		}
		if descending[st.kw] {
			if depth < len(iloc) && (st.tok == "" || st.kw == "patternProperties") {
				st.tok += "\x00" + iloc[depth]
			}
			depth++
		}
		steps = append(steps, st)
		holder = next
	}
	return steps
}

func isIndex(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil && s != "" && s[0] != '-' && s[0] != '+'
}

// leaf records an error of its own, or adds it to the error Python
// gathers it in.
func (r *renderer) leaf(n *jsonschema.ValidationError, chain []step, names *nameCtx) {
	iloc := n.InstanceLocation
	if names != nil {
		iloc = names.loc // n's own is relative to the name
	}
	for i, st := range chain {
		if st.kw == "unevaluatedProperties" || st.kw == "unevaluatedItems" {
			r.gather(iloc, chain[:i+1])
			return
		}
	}
	if m := len(chain); m > 0 && chain[m-1].items && names == nil {
		if _, isFalse := n.ErrorKind.(*kind.FalseSchema); isFalse && r.draft(n.SchemaURL) >= 2020 {
			r.gather(iloc, chain)
			return
		}
	}
	r.errs = append(r.errs, r.own(n, chain, names))
}

// gather adds the part of the instance at iloc an error is about to the
// error of the last step of chain (an unevaluated* or items keyword).
func (r *renderer) gather(iloc []string, chain []step) {
	st := chain[len(chain)-1]
	depth := min(st.depth, len(iloc))
	key := st.kw + "\x00" + st.holder.key() + "\x00" + strings.Join(iloc[:depth], "\x00")
	e := r.aggs[key]
	if e == nil {
		ch := slices.Clone(chain)
		ch[len(ch)-1].tok = ""
		holder := st.holder
		e = &pyError{loc: slices.Clone(iloc[:depth]), chain: ch, kw: st.kw, agg: &holder}
		r.aggs[key] = e
		r.errs = append(r.errs, e)
	}
	if depth < len(iloc) {
		if x := iloc[depth]; !slices.Contains(e.extras, x) {
			e.extras = append(e.extras, x)
		}
	}
}

// gathered writes the message of a gathered error.
func (r *renderer) gathered(e *pyError) {
	holder, _ := r.raw(*e.agg).(map[string]any)
	switch e.kw {
	case "unevaluatedProperties":
		names := slices.Clone(e.extras)
		sort.Strings(names)
		reprs := make([]any, len(names))
		for i, name := range names {
			reprs[i] = name
		}
		if b, ok := holder["unevaluatedProperties"].(bool); ok && !b {
			e.msg = "Unevaluated properties are not allowed (" + extrasMsg(reprs, "unexpected") + ")"
		} else {
			e.msg = "Unevaluated properties are not valid under the given schema (" + extrasMsg(reprs, "unevaluated and invalid") + ")"
		}
	case "unevaluatedItems":
		arr, _ := at(r.instance, e.loc).([]any)
		var items []any
		for _, i := range sortedIndexes(e.extras) {
			if i < len(arr) {
				items = append(items, arr[i])
			}
		}
		e.msg = "Unevaluated items are not allowed (" + extrasMsg(items, "unexpected") + ")"
	case "items":
		arr, _ := at(r.instance, e.loc).([]any)
		prefix := len(arr) - len(e.extras)
		if p, ok := holder["prefixItems"].([]any); ok {
			prefix = len(p)
		}
		prefix = max(0, min(prefix, len(arr)))
		extra := len(arr) - prefix
		var rest any = arr[prefix:]
		if extra == 1 {
			rest = arr[prefix]
		}
		item := "items"
		if prefix == 1 {
			item = "item"
		}
		e.msg = fmt.Sprintf("Expected at most %d %s but found %d extra: %s", prefix, item, extra, pyfmt.Repr(rest))
	}
}

func sortedIndexes(toks []string) []int {
	var out []int
	for _, t := range toks {
		if i, err := strconv.Atoi(t); err == nil && i >= 0 {
			out = append(out, i)
		}
	}
	sort.Ints(out)
	return out
}

// extrasMsg is Python's _utils.extras_msg: the reprs, and was or were.
func extrasMsg(extras []any, what string) string {
	reprs := make([]string, len(extras))
	for i, x := range extras {
		reprs[i] = pyfmt.Repr(x)
	}
	verb := "was"
	if len(extras) != 1 {
		verb = "were"
	}
	return strings.Join(reprs, ", ") + " " + verb + " " + what
}

// raw returns the raw value at a schema location, nil when unknown.
func (r *renderer) raw(l loc) any {
	d := r.docs[l.doc]
	if d == nil {
		d = metaDoc(l.doc)
	}
	if d == nil {
		return nil
	}
	return at(d.value, l.toks)
}

// order returns the key positions of the object at l, when its document
// records them.
func (r *renderer) order(l loc) map[string]int {
	d := r.docs[l.doc]
	if d == nil {
		d = metaDoc(l.doc)
	}
	if d == nil || d.order == nil {
		return nil
	}
	return d.order[l.pointer()]
}

func (r *renderer) compiledAt(location string) *jsonschema.Schema {
	if r.graph == nil {
		return nil
	}
	return r.graph.byLoc[location]
}

func (r *renderer) draft(location string) int {
	if s := r.compiledAt(location); s != nil {
		return s.DraftVersion
	}
	return 2020
}

// own renders an error of its own kind in Python's words
// (jsonschema/_keywords.py and _legacy_keywords.py).
func (r *renderer) own(n *jsonschema.ValidationError, chain []step, names *nameCtx) *pyError {
	value := at(r.instance, n.InstanceLocation)
	iloc := n.InstanceLocation
	if names != nil {
		value, iloc = names.name, names.loc
	}
	here := parseLoc(n.SchemaURL)
	sch, _ := r.raw(here).(map[string]any)
	e := &pyError{loc: slices.Clone(iloc), inNames: names != nil}
	v := pyfmt.Repr(value)
	tok := ""
	// rawRepr is the schema's own value of a keyword, as Python quotes it;
	// fallback when the schema is unknown.
	rawRepr := func(kw string, fallback string) string {
		if x, ok := sch[kw]; ok {
			return pyfmt.Repr(x)
		}
		return fallback
	}
	switch k := n.ErrorKind.(type) {
	case *kind.Type:
		e.kw = "type"
		var want []string
		switch t := sch["type"].(type) {
		case string:
			want = []string{t}
		case []any:
			for _, x := range t {
				if s, ok := x.(string); ok {
					want = append(want, s)
				}
			}
		}
		if len(want) == 0 {
			want = k.Want
		}
		reprs := make([]string, len(want))
		for i, w := range want {
			reprs[i] = pyfmt.Repr(w)
		}
		e.msg = fmt.Sprintf("%s is not of type %s", v, strings.Join(reprs, ", "))
	case *kind.Enum:
		e.kw = "enum"
		e.msg = fmt.Sprintf("%s is not one of %s", v, rawRepr("enum", pyfmt.Repr(k.Want)))
	case *kind.Const:
		e.kw = "const"
		e.msg = fmt.Sprintf("%s was expected", rawRepr("const", pyfmt.Repr(k.Want)))
	case *kind.Format:
		e.kw = "format"
		e.msg = fmt.Sprintf("%s is not a %s", v, pyfmt.Repr(k.Want))
	case *kind.Required:
		e.kw = "required"
		if len(k.Missing) > 0 {
			e.missing = k.Missing[0]
		}
		tok = e.missing
		e.msg = pyfmt.Repr(e.missing) + " is a required property"
	case *kind.Dependency:
		e.kw = "dependencies"
		if len(k.Missing) > 0 {
			e.missing = k.Missing[0]
		}
		tok = k.Prop
		e.msg = fmt.Sprintf("%s is a dependency of %s", pyfmt.Repr(e.missing), pyfmt.Repr(k.Prop))
	case *kind.DependentRequired:
		e.kw = "dependentRequired"
		if len(k.Missing) > 0 {
			e.missing = k.Missing[0]
		}
		tok = k.Prop
		e.msg = fmt.Sprintf("%s is a dependency of %s", pyfmt.Repr(e.missing), pyfmt.Repr(k.Prop))
	case *kind.MinProperties:
		e.kw = "minProperties"
		e.msg = v + " " + pick(k.Want == 1, "should be non-empty", "does not have enough properties")
	case *kind.MaxProperties:
		e.kw = "maxProperties"
		e.msg = v + " " + pick(k.Want == 0, "is expected to be empty", "has too many properties")
	case *kind.MinItems:
		e.kw = "minItems"
		e.msg = v + " " + pick(k.Want == 1, "should be non-empty", "is too short")
	case *kind.MaxItems:
		e.kw = "maxItems"
		e.msg = v + " " + pick(k.Want == 0, "is expected to be empty", "is too long")
	case *kind.MinLength:
		e.kw = "minLength"
		e.msg = v + " " + pick(k.Want == 1, "should be non-empty", "is too short")
	case *kind.MaxLength:
		e.kw = "maxLength"
		e.msg = v + " " + pick(k.Want == 0, "is expected to be empty", "is too long")
	case *kind.AdditionalProperties:
		e.kw = "additionalProperties"
		extras := slices.Clone(k.Properties)
		sort.Strings(extras)
		if patterns, ok := sch["patternProperties"].(map[string]any); ok {
			keys := make([]string, 0, len(patterns))
			for p := range patterns {
				keys = append(keys, p)
			}
			sort.Strings(keys)
			e.msg = fmt.Sprintf("%s %s not match any of the regexes: %s", joinReprs(extras), pick(len(extras) == 1, "does", "do"), joinReprs(keys))
		} else {
			items := make([]any, len(extras))
			for i, x := range extras {
				items[i] = x
			}
			e.msg = "Additional properties are not allowed (" + extrasMsg(items, "unexpected") + ")"
		}
	case *kind.AdditionalItems:
		e.kw = "additionalItems"
		arr, _ := value.([]any)
		evaluated := len(arr) - k.Count
		if items, ok := sch["items"].([]any); ok {
			evaluated = len(items)
		}
		evaluated = max(0, min(evaluated, len(arr)))
		e.msg = "Additional items are not allowed (" + extrasMsg(arr[evaluated:], "unexpected") + ")"
	case *kind.UniqueItems:
		e.kw = "uniqueItems"
		e.msg = v + " has non-unique elements"
	case *kind.Contains:
		e.kw = "contains"
		if r.draft(n.SchemaURL) < 2019 {
			e.msg = fmt.Sprintf("None of %s are valid under the given schema", v)
		} else {
			e.msg = v + " does not contain items matching the given schema"
		}
	case *kind.MinContains:
		if len(k.Got) == 0 {
			e.kw = "contains"
			e.msg = v + " does not contain items matching the given schema"
		} else {
			e.kw = "minContains"
			e.msg = fmt.Sprintf("Too few items match the given schema (expected at least %d but only %d matched)", k.Want, len(k.Got))
		}
	case *kind.MaxContains:
		e.kw = "maxContains"
		e.msg = fmt.Sprintf("Too many items match the given schema (expected at most %d)", k.Want)
	case *kind.Pattern:
		e.kw = "pattern"
		e.msg = fmt.Sprintf("%s does not match %s", v, rawRepr("pattern", pyfmt.Repr(k.Want)))
	case *kind.Minimum:
		e.kw = "minimum"
		e.msg = fmt.Sprintf("%s is less than the minimum of %s", v, rawRepr("minimum", ratString(k.Want)))
	case *kind.Maximum:
		e.kw = "maximum"
		e.msg = fmt.Sprintf("%s is greater than the maximum of %s", v, rawRepr("maximum", ratString(k.Want)))
	case *kind.ExclusiveMinimum:
		// Draft 4 spells it minimum with exclusiveMinimum: true.
		e.kw = "exclusiveMinimum"
		if _, isBool := sch["exclusiveMinimum"].(bool); isBool {
			e.kw = "minimum"
		}
		want := rawRepr(e.kw, ratString(k.Want))
		e.msg = fmt.Sprintf("%s is less than or equal to the minimum of %s", v, want)
	case *kind.ExclusiveMaximum:
		e.kw = "exclusiveMaximum"
		if _, isBool := sch["exclusiveMaximum"].(bool); isBool {
			e.kw = "maximum"
		}
		want := rawRepr(e.kw, ratString(k.Want))
		e.msg = fmt.Sprintf("%s is greater than or equal to the maximum of %s", v, want)
	case *kind.MultipleOf:
		e.kw = "multipleOf"
		want := ratString(k.Want)
		if x, ok := sch["multipleOf"]; ok {
			want = pyfmt.Str(x)
		}
		e.msg = fmt.Sprintf("%s is not a multiple of %s", v, want)
	case *kind.Not:
		e.kw = "not"
		e.msg = fmt.Sprintf("%s should not be valid under %s", v, rawRepr("not", "the given schema"))
	case *kind.AnyOf:
		e.kw = "anyOf"
		e.msg = v + " is not valid under any of the given schemas"
	case *kind.OneOf:
		e.kw = "oneOf"
		e.msg = r.oneOf(n, k, sch, value, v)
	case *kind.FalseSchema:
		// Python yields it before adding the path of the part it descended
		// to: a false property is reported under its object (under the
		// keyword, at the root).
		if m := len(chain); m > 0 {
			e.kw = chain[m-1].kw
			if descending[e.kw] && names == nil && len(e.loc) > 0 {
				e.loc = e.loc[:len(e.loc)-1]
			}
		}
		e.msg = "False schema does not allow " + v
	case *kind.ContentEncoding:
		e.kw = "contentEncoding"
		e.msg = fmt.Sprintf("%s is not %s encoded", v, pyfmt.Repr(k.Want))
	case *kind.ContentMediaType:
		e.kw = "contentMediaType"
		e.msg = fmt.Sprintf("%s is not of media type %s", v, pyfmt.Repr(k.Want))
	case *kind.ContentSchema:
		e.kw = "contentSchema"
		e.msg = v + " is not valid under the given contentSchema"
	case *kind.RefCycle:
		// Python recurses without end on such schemas; Check refuses them.
		e.kw = "$ref"
		e.msg = shortURL(k.LocalizedString(printer))
	default:
		// InvalidJsonValue (no JSON value is one), a wrapper without
		// causes, or a kind of a later version of the library.
		if p := n.ErrorKind.KeywordPath(); len(p) > 0 {
			e.kw = p[0]
		}
		e.msg = shortURL(n.ErrorKind.LocalizedString(printer))
	}
	e.chain = append(slices.Clone(chain), step{kw: e.kw, tok: tok, holder: here, depth: len(iloc)})
	return e
}

// oneOf renders oneOf: valid under none, or under several, which Python
// lists as the valid ones after the first, then the first.
func (r *renderer) oneOf(n *jsonschema.ValidationError, k *kind.OneOf, sch map[string]any, value any, v string) string {
	if len(k.Subschemas) == 0 {
		return v + " is not valid under any of the given schemas"
	}
	first := k.Subschemas[0]
	valid := k.Subschemas[1:]
	if s := r.compiledAt(n.SchemaURL); s != nil && first < len(s.OneOf) {
		// The library stops at the second match; Python lists them all.
		valid = nil
		for i := first + 1; i < len(s.OneOf); i++ {
			if s.OneOf[i].Validate(value) == nil {
				valid = append(valid, i)
			}
		}
	}
	valid = append(slices.Clone(valid), first)
	list, _ := sch["oneOf"].([]any)
	reprs := make([]string, 0, len(valid))
	for _, i := range valid {
		if i >= 0 && i < len(list) {
			reprs = append(reprs, pyfmt.Repr(list[i]))
		}
	}
	if len(reprs) == 0 {
		return v + " is valid under each of the given schemas"
	}
	return v + " is valid under each of " + strings.Join(reprs, ", ")
}

func pick(cond bool, yes, no string) string {
	if cond {
		return yes
	}
	return no
}

func joinReprs(items []string) string {
	reprs := make([]string, len(items))
	for i, x := range items {
		reprs[i] = pyfmt.Repr(x)
	}
	return strings.Join(reprs, ", ")
}

func ratString(r *big.Rat) string {
	if r == nil {
		return "None"
	}
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return fmt.Sprint(f)
}

// compare orders errors as Python would yield them: keyword by keyword
// from the root, then by instance location and message, so that the
// choice never depends on map order.
func (r *renderer) compare(a, b *pyError) int {
	for i := 0; i < len(a.chain) && i < len(b.chain); i++ {
		if c := r.compareStep(a.chain[i], b.chain[i]); c != 0 {
			return c
		}
	}
	if c := len(a.chain) - len(b.chain); c != 0 {
		return c
	}
	if c := slices.Compare(a.loc, b.loc); c != 0 {
		return c
	}
	return strings.Compare(a.msg, b.msg)
}

func (r *renderer) compareStep(x, y step) int {
	if x.kw != y.kw {
		ox, oy := r.order(x.holder), r.order(y.holder)
		if ox != nil && oy != nil {
			px, okx := ox[x.kw]
			py, oky := oy[y.kw]
			if okx && oky && px != py {
				return px - py
			}
		}
		return jsonbCompare(x.kw, y.kw)
	}
	if x.tok == y.tok {
		return 0
	}
	if nameKeywords[x.kw] && x.holder.key() == y.holder.key() {
		if order := r.order(x.holder.child(x.kw)); order != nil {
			px, okx := order[strings.SplitN(x.tok, "\x00", 2)[0]]
			py, oky := order[strings.SplitN(y.tok, "\x00", 2)[0]]
			if okx && oky && px != py {
				return px - py
			}
		}
	}
	ix, errx := strconv.Atoi(strings.TrimPrefix(x.tok, "\x00"))
	iy, erry := strconv.Atoi(strings.TrimPrefix(y.tok, "\x00"))
	if errx == nil && erry == nil {
		return ix - iy
	}
	return jsonbCompare(x.tok, y.tok)
}

// jsonbCompare is the order of keys in PostgreSQL's jsonb, shorter first,
// then bytewise: the order Kinto, on its PostgreSQL storage, reads stored
// schemas in, hence the order its validators meet keywords and names.
func jsonbCompare(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}
