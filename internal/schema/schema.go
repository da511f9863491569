// Package schema checks JSON schemas and validates objects against them,
// as Kinto does for collections' `schema` and buckets' `record:schema`,
// `collection:schema` and `group:schema` (kinto-protocol.md §6.6), with
// github.com/santhosh-tekuri/jsonschema/v6.
//
// Kinto checks a stored schema against the Draft 7 meta-schema, and
// validates records with the draft the schema names in `$schema` (the
// latest, 2020-12, without one), asserting no `format`. This package does
// the same, with Python jsonschema's messages, which Kinto clients see.
// Where Kinto fails late (a schema its record-time draft rejects, an
// unresolvable or cyclic `$ref`: errors or a 500 on every record), Check
// refuses the schema when it is stored.
//
// Schemas come from clients, so no reference may leave the schema (the
// loader refuses every URL; the library would otherwise read file:// refs),
// and every cost is bounded: the size of a schema before it is compiled,
// and the work of a validation before it runs (see budget.go).
package schema

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"kintogo/internal/pyfmt"
)

// errExternalRef is what the loader answers for every URL.
var errExternalRef = errors.New("external references are not allowed")

type refuseLoader struct{}

func (refuseLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("%s: %w", url, errExternalRef)
}

// resource is the base URL of a client schema: hierarchical, so that every
// relative reference resolves to a URL the loader refuses.
const resource = "https://kintogo.invalid/schema.json"

// Limits on a client schema, checked before it is compiled. The library
// compiles in time quadratic in the number of subschemas (its queue is
// searched linearly: ~0.2 s for 4000, minutes for the ~100k a 1 MiB body
// can hold), checks a schema against its meta-schema in time cubic in its
// depth (it rebuilds the pointer of every value it meets: 1.4 s at depth
// 1000), and parses numbers into exact rationals. Real schemas are far
// below these limits.
const (
	// maxSchemaNodes bounds the objects and booleans of a schema (every
	// one may be compiled as a subschema, through $ref if not by position).
	maxSchemaNodes = 5000
	// maxSchemaDepth bounds the nesting of its objects and arrays.
	maxSchemaDepth = 100
	// maxNumberLength bounds the characters of a schema's numbers
	// (Python's own limit on integer digits).
	maxNumberLength = 4300
	// maxExponent bounds their exponents, as the API does for bodies: the
	// library expands 1e999999999 into a billion-digit rational.
	maxExponent = 400
)

// Failure is a validation failure: the field at fault and the message.
type Failure struct {
	Field   string
	Message string
}

// compiled is a schema compiled for validation, with the graph of its
// subschemas (Location → subschema) that messages and cost bounds need.
type compiled struct {
	root  *jsonschema.Schema
	graph *graph
	doc   any
}

// compileForValidation compiles a client schema with the draft it names
// in $schema, 2020-12 without one (Kinto: validator_for's default), then
// turns off what Python's validators do not apply: `format` (Kinto passes
// no format checker) and `dependencies` under 2019-09 and later (the
// library applies it in every draft). The library checks the schema
// against its draft's meta-schema while compiling.
func compileForValidation(doc any) (*compiled, error) {
	if err := checkLimits(doc); err != nil {
		return nil, err
	}
	doc, err := withKintoDraft(doc)
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(refuseLoader{})
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(resource, doc); err != nil {
		return nil, err
	}
	root, err := c.Compile(resource)
	if err != nil {
		return nil, err
	}
	for _, s := range newGraph(root).all {
		s.Format = nil
		if s.DraftVersion >= 2019 {
			s.Dependencies = nil
		}
	}
	// Again, without the subschemas of the dropped dependencies: they are
	// never applied, so neither cycles nor costs count them.
	g := newGraph(root)
	if err := g.checkCycles(); err != nil {
		return nil, err
	}
	return &compiled{root: root, graph: g, doc: doc}, nil
}

// pythonDrafts are the meta-schema ids Python's validator_for knows,
// compared exactly (after dropping an empty fragment): it takes
// "https://json-schema.org/draft-07/schema" for an unknown one, where the
// library would take Draft 7.
var pythonDrafts = map[string]bool{
	"http://json-schema.org/draft-04/schema":       true,
	"http://json-schema.org/draft-06/schema":       true,
	"http://json-schema.org/draft-07/schema":       true,
	"https://json-schema.org/draft/2019-09/schema": true,
	"https://json-schema.org/draft/2020-12/schema": true,
}

// withKintoDraft makes the library pick the draft Kinto validates with:
// the one $schema names when Python knows it, else (no $schema, or one it
// does not know) the latest, which the library takes without $schema.
// Draft 3, which Python has and the library has not, is refused.
func withKintoDraft(doc any) (any, error) {
	m, ok := doc.(map[string]any)
	if !ok {
		return doc, nil
	}
	id, ok := m["$schema"].(string)
	if !ok {
		return doc, nil
	}
	id = strings.TrimSuffix(id, "#")
	switch {
	case pythonDrafts[id]:
		return doc, nil
	case id == "http://json-schema.org/draft-03/schema":
		return nil, &limitError{"$schema" + pyfmt.Repr(m["$schema"]) + " is not supported (draft 3)"}
	}
	latest := make(map[string]any, len(m))
	for k, v := range m {
		if k != "$schema" {
			latest[k] = v
		}
	}
	return latest, nil
}

// limitError is a schema refused for its size or draft.
type limitError struct{ msg string }

func (e *limitError) Error() string { return e.msg }

// checkLimits refuses schemas beyond maxSchemaNodes, maxSchemaDepth,
// maxNumberLength and maxExponent, in time linear in the document.
func checkLimits(doc any) error {
	type item struct {
		v     any
		depth int
	}
	nodes := 0
	stack := []item{{doc, 0}}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if it.depth > maxSchemaDepth {
			return &limitError{fmt.Sprintf("schema is too deeply nested (more than %d levels)", maxSchemaDepth)}
		}
		switch x := it.v.(type) {
		case map[string]any:
			nodes++
			for _, v := range x {
				stack = append(stack, item{v, it.depth + 1})
			}
		case []any:
			for _, v := range x {
				stack = append(stack, item{v, it.depth + 1})
			}
		case bool:
			nodes++
		case json.Number:
			if len(x) > maxNumberLength {
				return &limitError{fmt.Sprintf("%s... is too long a number (more than %d characters)", x[:20], maxNumberLength)}
			}
			if exponent(x) > maxExponent {
				return &limitError{fmt.Sprintf("%s is too large a number (exponent beyond %d)", x, maxExponent)}
			}
		}
		if nodes > maxSchemaNodes {
			return &limitError{fmt.Sprintf("schema is too large (more than %d objects and booleans)", maxSchemaNodes)}
		}
	}
	return nil
}

// exponent is the magnitude of the exponent of a JSON number, beyond
// maxExponent when it does not even fit an int.
func exponent(n json.Number) int {
	i := strings.IndexAny(string(n), "eE")
	if i < 0 {
		return 0
	}
	e, err := strconv.Atoi(strings.TrimPrefix(string(n[i+1:]), "+"))
	if err != nil {
		return maxExponent + 1
	}
	return max(e, -e)
}

// Check reports what is wrong with a schema, "" when it is a valid one. The
// text is Kinto's: the offending keyword followed by the validator message
// ("type'nope' is not valid under any of the given schemas"). Beyond
// Kinto's Draft 7 check, a schema is refused when records could not be
// validated with it: too large, rejected by the draft it names, with an
// invalid regex, an unresolvable reference or a reference cycle.
func Check(schema any) (msg string) {
	defer func() {
		// Last resort only: every error kind has its own message, and the
		// fuzz target runs check without this guard.
		if r := recover(); r != nil {
			msg = fmt.Sprintf("schema could not be checked: %v", r)
		}
	}()
	return check(schema)
}

func check(schema any) string {
	if _, ok := schema.(map[string]any); !ok {
		if _, isBool := schema.(bool); !isBool {
			return pyfmt.Repr(schema) + " is not of type 'object', 'boolean'"
		}
	}
	if err := checkLimits(schema); err != nil {
		return err.Error()
	}
	if msg := kintoCheck(schema); msg != "" {
		return msg
	}
	if _, err := compileForValidation(schema); err != nil {
		return compileMessage(err, schema)
	}
	return ""
}

// Validate validates instance against schema. ok is false with the failure
// when it does not conform. A schema that cannot be used (one Check
// refuses, stored before it did) fails with Field "schema".
func Validate(schema any, instance any) (f Failure, ok bool) {
	defer func() {
		// Last resort only, as in Check.
		if r := recover(); r != nil {
			f, ok = Failure{Field: "schema", Message: fmt.Sprintf("schema could not be applied: %v", r)}, false
		}
	}()
	return validate(schema, instance)
}

func validate(schema any, instance any) (Failure, bool) {
	c, err := compileForValidation(schema)
	if err != nil {
		return Failure{Field: "schema", Message: compileMessage(err, schema)}, false
	}
	if !withinBudget(c.graph, c.root, instance) {
		return Failure{Field: "schema", Message: fmt.Sprintf("validating this object with the schema would take more than %d steps", evalBudget)}, false
	}
	err = c.root.Validate(instance)
	if err == nil {
		return Failure{}, true
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return Failure{Field: "schema", Message: err.Error()}, false
	}
	r := newRenderer(instance, c.graph, map[string]*doc{resource: {value: c.doc}})
	e := r.first(ve)
	return Failure{Field: e.field(), Message: e.msg}, false
}

// compileMessage renders why a schema cannot be compiled, in the words of
// Kinto's check (the library's meta-schema errors) or of Python's
// `referencing` (unresolvable references, which Kinto reports at record
// time).
func compileMessage(err error, schema any) string {
	var sve *jsonschema.SchemaValidationError
	if errors.As(err, &sve) {
		var ve *jsonschema.ValidationError
		if errors.As(sve.Err, &ve) {
			r := newRenderer(schema, nil, map[string]*doc{resource: {value: schema}})
			return r.first(ve).checkMessage()
		}
	}
	var le *limitError
	var ce *cycleError
	var re *jsonschema.InvalidRegexError
	var pe *jsonschema.JSONPointerNotFoundError
	var ae *jsonschema.AnchorNotFoundError
	var lue *jsonschema.LoadURLError
	switch {
	case errors.As(err, &le):
		return le.msg
	case errors.As(err, &ce):
		return ce.Error()
	case errors.As(err, &re):
		l := parseLoc(re.URL)
		return l.last() + pyfmt.Repr(re.Regex) + " is not a 'regex'"
	case errors.As(err, &pe):
		return fmt.Sprintf("PointerToNowhere: %s does not exist within %s", pyfmt.Repr(parseLoc(pe.URL).pointer()), pyfmt.Repr(schema))
	case errors.As(err, &ae):
		return "Unresolvable: " + shortURL(ae.Reference)
	case errors.As(err, &lue):
		// Python's referencing: "Unresolvable: <the reference>".
		ref := shortURL(lue.URL)
		if un, err := url.PathUnescape(ref); err == nil {
			ref = un
		}
		return "Unresolvable: " + ref
	}
	return shortURL(err.Error())
}

// shortURL strips the made-up base URL of client schemas from a text.
func shortURL(s string) string {
	return strings.ReplaceAll(s, strings.TrimSuffix(resource, "schema.json"), "")
}
