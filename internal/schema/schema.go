// Package schema checks JSON schemas and validates objects against them,
// as Kinto does for collections' `schema` and buckets' `record:schema`,
// `collection:schema` and `group:schema` (kinto-protocol.md §6.6), with
// github.com/santhosh-tekuri/jsonschema/v6.
//
// Schemas come from clients, so no reference may leave the schema: the
// loader refuses every URL (the library would otherwise read file:// refs).
// Messages follow Python's jsonschema wording, which Kinto clients see.
package schema

import (
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"

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

// compile compiles a schema, checking it against its meta-schema (Draft 7
// unless it names another with $schema).
func compile(schema any) (*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.UseLoader(refuseLoader{})
	c.DefaultDraft(jsonschema.Draft7)
	if err := c.AddResource(resource, schema); err != nil {
		return nil, err
	}
	return c.Compile(resource)
}

// Check reports what is wrong with a schema, "" when it is a valid one. The
// text is Kinto's: the offending keyword followed by the validator message
// ("type'nope' is not valid under any of the given schemas").
func Check(schema any) string {
	if _, ok := schema.(map[string]any); !ok {
		if _, isBool := schema.(bool); !isBool {
			return pyfmt.Repr(schema) + " is not of type 'object', 'boolean'"
		}
	}
	_, err := compile(schema)
	if err == nil {
		return ""
	}
	var sve *jsonschema.SchemaValidationError
	if errors.As(err, &sve) {
		var ve *jsonschema.ValidationError
		if errors.As(sve.Err, &ve) {
			leaf := firstLeaf(ve)
			prefix := ""
			if n := len(leaf.InstanceLocation); n > 0 {
				prefix = leaf.InstanceLocation[n-1]
			}
			return prefix + message(leaf, instanceAt(schema, leaf.InstanceLocation))
		}
	}
	if errors.Is(err, errExternalRef) {
		return "Unresolvable JSON reference: " + err.Error()
	}
	return err.Error()
}

// Failure is a validation failure: the field at fault and the message.
type Failure struct {
	Field   string
	Message string
}

// Validate validates instance against schema. ok is false with the failure
// when it does not conform. A schema that cannot be compiled (an
// unresolvable reference) fails with Field "schema".
func Validate(schema any, instance any) (Failure, bool) {
	compiled, err := compile(schema)
	if err != nil {
		return Failure{Field: "schema", Message: err.Error()}, false
	}
	err = compiled.Validate(instance)
	if err == nil {
		return Failure{}, true
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return Failure{Field: "schema", Message: err.Error()}, false
	}
	leaf := firstLeaf(ve)
	f := Failure{Message: message(leaf, instanceAt(instance, leaf.InstanceLocation))}
	if n := len(leaf.InstanceLocation); n > 0 {
		f.Field = leaf.InstanceLocation[n-1]
	}
	if req, ok := leaf.ErrorKind.(*kind.Required); ok && len(req.Missing) > 0 {
		f.Field = req.Missing[len(req.Missing)-1]
	}
	return f, false
}

// firstLeaf descends to the first concrete error, as Python's validate()
// raises the first error it meets; anyOf and oneOf are errors of their own.
func firstLeaf(e *jsonschema.ValidationError) *jsonschema.ValidationError {
	for len(e.Causes) > 0 {
		switch e.ErrorKind.(type) {
		case *kind.AnyOf, *kind.OneOf:
			return e
		}
		e = e.Causes[0]
	}
	return e
}

func instanceAt(v any, path []string) any {
	for _, p := range path {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			var i int
			fmt.Sscan(p, &i)
			if i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func ratString(r *big.Rat) string {
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return fmt.Sprint(f)
}

// message renders an error in Python jsonschema's words.
func message(e *jsonschema.ValidationError, value any) string {
	v := pyfmt.Repr(value)
	switch k := e.ErrorKind.(type) {
	case *kind.AnyOf:
		return v + " is not valid under any of the given schemas"
	case *kind.OneOf:
		if len(k.Subschemas) > 1 {
			return v + " is valid under each of the given schemas"
		}
		return v + " is not valid under any of the given schemas"
	case *kind.Type:
		if len(k.Want) == 1 {
			return fmt.Sprintf("%s is not of type '%s'", v, k.Want[0])
		}
		return fmt.Sprintf("%s is not of type '%s'", v, strings.Join(k.Want, "', '"))
	case *kind.Required:
		return fmt.Sprintf("'%s' is a required property", k.Missing[0])
	case *kind.AdditionalProperties:
		quoted := make([]string, len(k.Properties))
		for i, p := range k.Properties {
			quoted[i] = "'" + p + "'"
		}
		verb := "was"
		if len(quoted) > 1 {
			verb = "were"
		}
		return fmt.Sprintf("Additional properties are not allowed (%s %s unexpected)", strings.Join(quoted, ", "), verb)
	case *kind.Enum:
		return fmt.Sprintf("%s is not one of %s", v, pyfmt.Repr(k.Want))
	case *kind.Const:
		return fmt.Sprintf("%s was expected", pyfmt.Repr(k.Want))
	case *kind.Minimum:
		return fmt.Sprintf("%s is less than the minimum of %s", v, ratString(k.Want))
	case *kind.Maximum:
		return fmt.Sprintf("%s is greater than the maximum of %s", v, ratString(k.Want))
	case *kind.MinLength:
		return v + " is too short"
	case *kind.MaxLength:
		return v + " is too long"
	case *kind.Pattern:
		return fmt.Sprintf("%s does not match '%s'", v, k.Want)
	case *kind.FalseSchema:
		return "False schema does not allow " + v
	}
	return e.ErrorKind.LocalizedString(nil)
}
