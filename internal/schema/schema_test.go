package schema

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

func decode(t testing.TB, s string) any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestCheck(t *testing.T) {
	tests := map[string]string{
		`{"type": "object", "properties": {"name": {"type": "string"}}}`: "",
		`{}`:               "",
		`true`:             "",
		`[]`:               "[] is not of type 'object', 'boolean'",
		`{"type": "nope"}`: "type'nope' is not valid under any of the given schemas",
		`{"required": 5}`:  "required5 is not of type 'array'",
	}
	for in, want := range tests {
		if got := Check(decode(t, in)); got != want {
			t.Errorf("Check(%s) = %q, want %q", in, got, want)
		}
	}
}

func TestValidate(t *testing.T) {
	people := `{"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0},
		"kind": {"enum": ["a", "b"]}}, "required": ["name"], "additionalProperties": false}`
	tests := []struct {
		instance, field, message string
	}{
		{`{"name": "Ann", "age": 3}`, "", ""},
		{`{"age": 3}`, "name", "'name' is a required property"},
		{`{"name": 5}`, "name", "5 is not of type 'string'"},
		{`{"name": "x", "age": -1}`, "age", "-1 is less than the minimum of 0"},
		// At the root, an error is reported under its keyword (Kinto's
		// schema_path[-1]).
		{`{"name": "x", "extra": true}`, "additionalProperties", "Additional properties are not allowed ('extra' was unexpected)"},
		{`{"name": "x", "kind": "c"}`, "kind", "'c' is not one of ['a', 'b']"},
	}
	for _, tt := range tests {
		f, ok := Validate(decode(t, people), decode(t, tt.instance))
		if ok != (tt.message == "") || f.Field != tt.field || f.Message != tt.message {
			t.Errorf("%s: %v %+v, want %q %q", tt.instance, ok, f, tt.field, tt.message)
		}
	}
}

const (
	draft4  = `"$schema": "http://json-schema.org/draft-04/schema#", `
	draft6  = `"$schema": "http://json-schema.org/draft-06/schema#", `
	draft7  = `"$schema": "http://json-schema.org/draft-07/schema#", `
	draft19 = `"$schema": "https://json-schema.org/draft/2019-09/schema", `
	draft20 = `"$schema": "https://json-schema.org/draft/2020-12/schema", `
)

// failureCases are failures of every error kind the library reports, with
// the field and message of the reference Kinto 26.5 (Python jsonschema
// 4.26) where it answers 400; where it answers 500 (a field Kinto cannot
// name, at the root), the field is the keyword or the missing property.
var failureCases = []struct {
	name             string
	schema, instance string
	field, message   string
}{
	{"multipleOf", `{"properties": {"n": {"multipleOf": 3}}}`, `{"n": 4}`, "n", "4 is not a multiple of 3"},
	{"multipleOf/float", `{"properties": {"n": {"multipleOf": 0.5}}}`, `{"n": 1.2}`, "n", "1.2 is not a multiple of 0.5"},
	{"minItems", `{"properties": {"l": {"minItems": 2}}}`, `{"l": [1]}`, "l", "[1] is too short"},
	{"minItems/1", `{"properties": {"l": {"minItems": 1}}}`, `{"l": []}`, "l", "[] should be non-empty"},
	{"maxItems", `{"properties": {"l": {"maxItems": 1}}}`, `{"l": [1, 2]}`, "l", "[1, 2] is too long"},
	{"maxItems/0", `{"properties": {"l": {"maxItems": 0}}}`, `{"l": [1]}`, "l", "[1] is expected to be empty"},
	{"uniqueItems", `{"properties": {"l": {"uniqueItems": true}}}`, `{"l": [1, 1]}`, "l", "[1, 1] has non-unique elements"},
	{"minProperties", `{"properties": {"o": {"minProperties": 2}}}`, `{"o": {"a": 1}}`, "o", "{'a': 1} does not have enough properties"},
	{"minProperties/1", `{"properties": {"o": {"minProperties": 1}}}`, `{"o": {}}`, "o", "{} should be non-empty"},
	{"maxProperties", `{"properties": {"o": {"maxProperties": 1}}}`, `{"o": {"a": 1, "b": 2}}`, "o", "{'a': 1, 'b': 2} has too many properties"},
	{"maxProperties/0", `{"properties": {"o": {"maxProperties": 0}}}`, `{"o": {"a": 1}}`, "o", "{'a': 1} is expected to be empty"},
	{"minProperties/root", `{"minProperties": 2}`, `{"a": 1}`, "minProperties", "{'a': 1} does not have enough properties"},
	{"maxProperties/root", `{"maxProperties": 1}`, `{"a": 1, "b": 2}`, "maxProperties", "{'a': 1, 'b': 2} has too many properties"},
	{"not", `{"properties": {"n": {"not": {"type": "integer"}}}}`, `{"n": 4}`, "n", "4 should not be valid under {'type': 'integer'}"},
	{"not/empty", `{"properties": {"n": {"not": {}}}}`, `{"n": 1}`, "n", "1 should not be valid under {}"},
	{"exclusiveMinimum", `{"properties": {"n": {"exclusiveMinimum": 5}}}`, `{"n": 5}`, "n", "5 is less than or equal to the minimum of 5"},
	{"exclusiveMaximum", `{"properties": {"n": {"exclusiveMaximum": 5}}}`, `{"n": 5}`, "n", "5 is greater than or equal to the maximum of 5"},
	{"exclusiveMinimum/draft4", `{` + draft4 + `"properties": {"n": {"minimum": 5, "exclusiveMinimum": true}}}`, `{"n": 5}`, "n", "5 is less than or equal to the minimum of 5"},
	{"exclusiveMaximum/draft4", `{` + draft4 + `"properties": {"n": {"maximum": 5, "exclusiveMaximum": true}}}`, `{"n": 5}`, "n", "5 is greater than or equal to the maximum of 5"},
	{"minimum", `{"properties": {"n": {"minimum": 2.5}}}`, `{"n": 1}`, "n", "1 is less than the minimum of 2.5"},
	{"maximum", `{"properties": {"n": {"maximum": 2.5}}}`, `{"n": 3.5}`, "n", "3.5 is greater than the maximum of 2.5"},
	{"minLength", `{"properties": {"s": {"minLength": 3}}}`, `{"s": "ab"}`, "s", "'ab' is too short"},
	{"minLength/1", `{"properties": {"s": {"minLength": 1}}}`, `{"s": ""}`, "s", "'' should be non-empty"},
	{"maxLength", `{"properties": {"s": {"maxLength": 1}}}`, `{"s": "ab"}`, "s", "'ab' is too long"},
	{"maxLength/0", `{"properties": {"s": {"maxLength": 0}}}`, `{"s": "a"}`, "s", "'a' is expected to be empty"},
	{"pattern", `{"properties": {"s": {"pattern": "^a"}}}`, `{"s": "b"}`, "s", "'b' does not match '^a'"},
	{"enum", `{"properties": {"n": {"enum": [1, 2]}}}`, `{"n": 3}`, "n", "3 is not one of [1, 2]"},
	{"enum/root", `{"enum": []}`, `{"a": 1}`, "enum", "{'a': 1} is not one of []"},
	{"const", `{"properties": {"n": {"const": 1}}}`, `{"n": 3}`, "n", "1 was expected"},
	{"const/object", `{"properties": {"o": {"const": {"a": [1, "x"]}}}}`, `{"o": 1}`, "o", "{'a': [1, 'x']} was expected"},
	{"type", `{"properties": {"n": {"type": "string"}}}`, `{"n": 1}`, "n", "1 is not of type 'string'"},
	{"type/list", `{"properties": {"n": {"type": ["integer", "string"]}}}`, `{"n": 1.5}`, "n", "1.5 is not of type 'integer', 'string'"},
	{"type/list-order", `{"properties": {"n": {"type": ["string", "integer"]}}}`, `{"n": 1.5}`, "n", "1.5 is not of type 'string', 'integer'"},
	{"type/item", `{"properties": {"l": {"items": {"type": "integer"}}}}`, `{"l": [1, "a"]}`, "1", "'a' is not of type 'integer'"},
	{"required", `{"required": ["x"]}`, `{}`, "x", "'x' is a required property"},
	{"required/nested", `{"properties": {"o": {"required": ["b"]}}}`, `{"o": {}}`, "o", "'b' is a required property"},
	{"required/first-missing", `{"required": ["x", "y"]}`, `{"y": 1}`, "x", "'x' is a required property"},
	{"dependentRequired/root", `{"dependentRequired": {"a": ["b"]}}`, `{"a": 1}`, "b", "'b' is a dependency of 'a'"},
	{"dependentRequired/nested", `{"properties": {"o": {"dependentRequired": {"a": ["b"]}}}}`, `{"o": {"a": 1}}`, "o", "'b' is a dependency of 'a'"},
	{"dependencies/draft7", `{` + draft7 + `"dependencies": {"a": ["b"]}}`, `{"a": 1}`, "b", "'b' is a dependency of 'a'"},
	{"dependencies/draft7-schema", `{` + draft7 + `"properties": {"o": {"dependencies": {"a": {"required": ["b"]}}}}}`, `{"o": {"a": 1}}`, "o", "'b' is a required property"},
	{"dependentSchemas", `{"properties": {"o": {"dependentSchemas": {"a": {"required": ["b"]}}}}}`, `{"o": {"a": 1}}`, "o", "'b' is a required property"},
	{"additionalItems/draft7", `{` + draft7 + `"properties": {"l": {"items": [{}], "additionalItems": false}}}`, `{"l": [1, 2]}`, "l", "Additional items are not allowed (2 was unexpected)"},
	{"additionalItems/draft7-several", `{` + draft7 + `"properties": {"l": {"items": [{}], "additionalItems": false}}}`, `{"l": [1, 2, "x"]}`, "l", "Additional items are not allowed (2, 'x' were unexpected)"},
	{"items-false/prefixItems", `{"properties": {"l": {"prefixItems": [{}], "items": false}}}`, `{"l": [1, 2]}`, "l", "Expected at most 1 item but found 1 extra: 2"},
	{"items-false/several", `{"properties": {"l": {"prefixItems": [{}, {}], "items": false}}}`, `{"l": [1, 2, 3, 4]}`, "l", "Expected at most 2 items but found 2 extra: [3, 4]"},
	{"items-false/no-prefix", `{"properties": {"l": {"items": false}}}`, `{"l": [1]}`, "l", "Expected at most 0 items but found 1 extra: 1"},
	{"items-false/draft7", `{` + draft7 + `"properties": {"l": {"items": false}}}`, `{"l": [1]}`, "l", "False schema does not allow 1"},
	{"false-property", `{"properties": {"a": false}}`, `{"a": 1}`, "properties", "False schema does not allow 1"},
	{"false-property/nested", `{"properties": {"o": {"properties": {"a": false}}}}`, `{"o": {"a": 1}}`, "o", "False schema does not allow 1"},
	{"contains", `{"properties": {"l": {"contains": {"type": "string"}}}}`, `{"l": [1]}`, "l", "[1] does not contain items matching the given schema"},
	{"contains/draft7", `{` + draft7 + `"properties": {"l": {"contains": {"type": "string"}}}}`, `{"l": [1]}`, "l", "None of [1] are valid under the given schema"},
	{"contains/draft6", `{` + draft6 + `"properties": {"l": {"contains": {"type": "string"}}}}`, `{"l": [1]}`, "l", "None of [1] are valid under the given schema"},
	{"minContains", `{"properties": {"l": {"contains": {"type": "string"}, "minContains": 2}}}`, `{"l": ["a"]}`, "l", "Too few items match the given schema (expected at least 2 but only 1 matched)"},
	{"minContains/none", `{"properties": {"l": {"contains": {"type": "string"}, "minContains": 2}}}`, `{"l": [1]}`, "l", "[1] does not contain items matching the given schema"},
	{"maxContains", `{"properties": {"l": {"contains": {"type": "string"}, "maxContains": 1}}}`, `{"l": ["a", "b"]}`, "l", "Too many items match the given schema (expected at most 1)"},
	{"propertyNames/root", `{"propertyNames": {"maxLength": 2}}`, `{"abc": 1}`, "propertyNames", "'abc' is too long"},
	{"propertyNames/nested", `{"properties": {"o": {"propertyNames": {"maxLength": 2}}}}`, `{"o": {"abc": 1}}`, "o", "'abc' is too long"},
	{"propertyNames/false", `{"propertyNames": false}`, `{"abc": 1}`, "propertyNames", "False schema does not allow 'abc'"},
	{"propertyNames/pattern", `{"properties": {"o": {"propertyNames": {"pattern": "^a"}}}}`, `{"o": {"b": 1}}`, "o", "'b' does not match '^a'"},
	{"additionalProperties", `{"properties": {"o": {"additionalProperties": false}}}`, `{"o": {"y": 1, "z": 2}}`, "o", "Additional properties are not allowed ('y', 'z' were unexpected)"},
	{"additionalProperties/root", `{"additionalProperties": false}`, `{"y": 1}`, "additionalProperties", "Additional properties are not allowed ('y' was unexpected)"},
	{"additionalProperties/patterns", `{"properties": {"o": {"patternProperties": {"^x": {}}, "additionalProperties": false}}}`, `{"o": {"y": 1}}`, "o", "'y' does not match any of the regexes: '^x'"},
	{"additionalProperties/patterns-several", `{"properties": {"o": {"patternProperties": {"^x": {}, "^b": {}}, "additionalProperties": false}}}`, `{"o": {"y": 1, "z": 2}}`, "o", "'y', 'z' do not match any of the regexes: '^b', '^x'"},
	{"patternProperties", `{"patternProperties": {"^n": {"type": "integer"}}}`, `{"n1": "x"}`, "n1", "'x' is not of type 'integer'"},
	{"if-then", `{"if": {"required": ["a"]}, "then": {"required": ["b"]}}`, `{"a": 1}`, "b", "'b' is a required property"},
	{"if-else", `{"properties": {"n": {"if": {"minimum": 10}, "then": {"multipleOf": 2}, "else": {"maximum": 3}}}}`, `{"n": 5}`, "n", "5 is greater than the maximum of 3"},
	{"unevaluatedProperties", `{"properties": {"a": {}}, "unevaluatedProperties": false}`, `{"a": 1, "z": 1}`, "unevaluatedProperties", "Unevaluated properties are not allowed ('z' was unexpected)"},
	{"unevaluatedProperties/schema", `{"properties": {"o": {"unevaluatedProperties": {"type": "string"}}}}`, `{"o": {"a": 1, "b": 2}}`, "o", "Unevaluated properties are not valid under the given schema ('a', 'b' were unevaluated and invalid)"},
	{"unevaluatedProperties/draft2019", `{` + draft19 + `"properties": {"a": {}}, "unevaluatedProperties": false}`, `{"a": 1, "z": 1, "y": 2}`, "unevaluatedProperties", "Unevaluated properties are not allowed ('y', 'z' were unexpected)"},
	{"unevaluatedItems", `{"properties": {"l": {"prefixItems": [{}], "unevaluatedItems": false}}}`, `{"l": [1, 2, 3]}`, "l", "Unevaluated items are not allowed (2, 3 were unexpected)"},
	{"unevaluatedItems/draft2019", `{` + draft19 + `"properties": {"l": {"items": [{}], "unevaluatedItems": false}}}`, `{"l": [1, 2, "x"]}`, "l", "Unevaluated items are not allowed (2, 'x' were unexpected)"},
	{"anyOf", `{"properties": {"n": {"anyOf": [{"type": "string"}, {"minimum": 10}]}}}`, `{"n": 5}`, "n", "5 is not valid under any of the given schemas"},
	{"oneOf/none", `{"properties": {"n": {"oneOf": [{"type": "string"}, {"minimum": 10}]}}}`, `{"n": 5}`, "n", "5 is not valid under any of the given schemas"},
	{"oneOf/several", `{"properties": {"n": {"oneOf": [{"type": "integer"}, {"minimum": 0}, {"maximum": 10}]}}}`, `{"n": 5}`, "n", "5 is valid under each of {'minimum': 0}, {'maximum': 10}, {'type': 'integer'}"},
	{"allOf", `{"properties": {"n": {"allOf": [{"type": "string"}]}}}`, `{"n": 1}`, "n", "1 is not of type 'string'"},
	{"$ref", `{"properties": {"n": {"$ref": "#/$defs/s"}}, "$defs": {"s": {"type": "string"}}}`, `{"n": 1}`, "n", "1 is not of type 'string'"},
	{"$ref/draft7", `{` + draft7 + `"properties": {"n": {"$ref": "#/definitions/s"}}, "definitions": {"s": {"type": "string"}}}`, `{"n": 1}`, "n", "1 is not of type 'string'"},
	{"$ref/recursive", `{"properties": {"child": {"$ref": "#"}, "n": {"type": "integer"}}}`, `{"child": {"child": {"n": "x"}}}`, "n", "'x' is not of type 'integer'"},
	{"$ref/meta-schema", `{"properties": {"s": {"$ref": "http://json-schema.org/draft-07/schema#"}}}`, `{"s": {"type": 5}}`, "type", "5 is not valid under any of the given schemas"},
	{"$dynamicRef", `{"$dynamicAnchor": "node", "properties": {"n": {"type": "integer"}, "kids": {"items": {"$dynamicRef": "#node"}}}}`, `{"kids": [{"n": "x"}]}`, "n", "'x' is not of type 'integer'"},
	{"$recursiveRef", `{` + draft19 + `"$recursiveAnchor": true, "properties": {"n": {"type": "integer"}, "kids": {"items": {"$recursiveRef": "#"}}}}`, `{"kids": [{"n": "x"}]}`, "n", "'x' is not of type 'integer'"},
	{"uniqueItems/draft4", `{` + draft4 + `"properties": {"l": {"uniqueItems": true}}}`, `{"l": ["a", "a"]}`, "l", "['a', 'a'] has non-unique elements"},
}

// unstorable cases are schemas Kinto's Draft 7 check refuses (Draft 4's
// boolean exclusiveMinimum): their messages are for schemas stored before.
var unstorable = map[string]bool{"exclusiveMinimum/draft4": true, "exclusiveMaximum/draft4": true}

func TestFailureMessages(t *testing.T) {
	for _, tt := range failureCases {
		t.Run(tt.name, func(t *testing.T) {
			schema := decode(t, tt.schema)
			if msg := Check(schema); (msg != "") != unstorable[tt.name] {
				t.Fatalf("Check: %q", msg)
			}
			f, ok := validate(schema, decode(t, tt.instance))
			if ok || f.Field != tt.field || f.Message != tt.message {
				t.Errorf("got %v %q %q\nwant  %q %q", ok, f.Field, f.Message, tt.field, tt.message)
			}
		})
	}
}

// Keywords a draft does not have are ignored, as Python does: Kinto
// validates with the draft the schema names, 2020-12 without one.
func TestDrafts(t *testing.T) {
	tests := []struct {
		name, schema, instance string
		valid                  bool
	}{
		{"dependencies ignored by 2020-12", `{"dependencies": {"a": ["b"]}}`, `{"a": 1}`, true},
		{"dependencies ignored by 2019-09", `{` + draft19 + `"dependencies": {"a": ["b"]}}`, `{"a": 1}`, true},
		{"dependencies applied by draft 7", `{` + draft7 + `"dependencies": {"a": ["b"]}}`, `{"a": 1}`, false},
		{"dependencies applied by draft 4", `{` + draft4 + `"dependencies": {"a": ["b"]}}`, `{"a": 1}`, false},
		{"dependentRequired applied by 2020-12", `{"dependentRequired": {"a": ["b"]}}`, `{"a": 1}`, false},
		{"dependentRequired applied by named 2020-12", `{` + draft20 + `"dependentRequired": {"a": ["b"]}}`, `{"a": 1}`, false},
		{"dependentRequired ignored by draft 7", `{` + draft7 + `"dependentRequired": {"a": ["b"]}}`, `{"a": 1}`, true},
		{"unevaluatedProperties ignored by draft 7", `{` + draft7 + `"unevaluatedProperties": false}`, `{"a": 1}`, true},
		{"prefixItems ignored by draft 7", `{` + draft7 + `"properties": {"l": {"prefixItems": [{"type": "string"}]}}}`, `{"l": [1]}`, true},
		{"const ignored by draft 4", `{` + draft4 + `"properties": {"n": {"const": 1}}}`, `{"n": 2}`, true},
		{"$ref siblings ignored by draft 7", `{` + draft7 + `"properties": {"n": {"$ref": "#/definitions/any", "type": "string"}}, "definitions": {"any": {}}}`, `{"n": 1}`, true},
		{"unknown $schema: the latest", `{"$schema": "http://example.com/meta", "dependentRequired": {"a": ["b"]}}`, `{"a": 1}`, false},
		{"https draft-07 is unknown to Python: the latest", `{"$schema": "https://json-schema.org/draft-07/schema#", "dependentRequired": {"a": ["b"]}}`, `{"a": 1}`, false},
		{"http 2019-09 is unknown to Python: the latest", `{"$schema": "http://json-schema.org/draft/2019-09/schema", "prefixItems": [{"type": "string"}]}`, `[1]`, false},
		{"$ref siblings applied by 2020-12", `{"properties": {"n": {"$ref": "#/$defs/any", "type": "string"}}, "$defs": {"any": {}}}`, `{"n": 1}`, false},
	}
	for _, tt := range tests {
		schema := decode(t, tt.schema)
		if msg := Check(schema); msg != "" {
			t.Errorf("%s: Check: %s", tt.name, msg)
			continue
		}
		if f, ok := Validate(schema, decode(t, tt.instance)); ok != tt.valid {
			t.Errorf("%s: valid %v, want %v (%+v)", tt.name, ok, tt.valid, f)
		}
	}
}

// format is an annotation only: Kinto passes no format checker, in any
// draft.
func TestFormatNeverAsserted(t *testing.T) {
	formats := []string{"email", "idn-email", "hostname", "idn-hostname", "ipv4", "ipv6", "uri", "uri-reference", "iri",
		"iri-reference", "uri-template", "date", "time", "date-time", "duration", "period", "json-pointer",
		"relative-json-pointer", "regex", "uuid", "semver", "unknown-format"}
	for _, draft := range []string{"", draft4, draft6, draft7, draft19, draft20} {
		for _, format := range formats {
			schema := decode(t, `{`+draft+`"properties": {"s": {"format": "`+format+`"}}}`)
			if msg := Check(schema); msg != "" {
				t.Errorf("%s %s: Check: %s", draft, format, msg)
			}
			if f, ok := Validate(schema, decode(t, `{"s": "(not a valid anything"}`)); !ok {
				t.Errorf("%s %s asserted: %+v", draft, format, f)
			}
		}
	}
	// A format vocabulary made mandatory by a meta-schema is not asserted
	// either.
	schema := decode(t, `{"$schema": "https://json-schema.org/draft/2020-12/meta/format-assertion", "format": "email"}`)
	if f, ok := Validate(schema, "nope"); !ok {
		t.Errorf("format-assertion vocabulary: %+v", f)
	}
}

// Schemas records could not be validated with are refused when stored,
// with Kinto's wording where Kinto refuses them too.
func TestCheckRefuses(t *testing.T) {
	wide := `{"properties": {` + strings.TrimSuffix(strings.Repeat(`"p": {}, `, 1), ", ")
	for i := 0; i < maxSchemaNodes; i++ {
		wide += fmt.Sprintf(`, "p%d": {}`, i)
	}
	wide += `}}`
	tests := []struct {
		name, schema, message string
	}{
		// Kinto: Draft7Validator.check_schema.
		{"invalid pattern", `{"properties": {"s": {"pattern": "(unclosed"}}}`, "pattern'(unclosed' is not a 'regex'"},
		{"invalid patternProperties", `{"patternProperties": {"(": {}}}`, "patternProperties'(' is not a 'regex'"},
		{"type", `{"type": ["string", "string"]}`, "type['string', 'string'] is not valid under any of the given schemas"},
		{"minLength", `{"minLength": -1}`, "minLength-1 is less than the minimum of 0"},
		{"items", `{"items": [1]}`, "items[1] is not valid under any of the given schemas"},
		{"property", `{"properties": {"a": 5}}`, "a5 is not of type 'object', 'boolean'"},
		{"dependencies", `{"dependencies": {"a": 5}}`, "a5 is not valid under any of the given schemas"},
		{"first in meta-schema order", `{"type": "object", "required": 5, "properties": 3}`, "required5 is not of type 'array'"},
		{"allOf", `{"allOf": []}`, "allOf[] should be non-empty"},
		{"not", `{"not": 3}`, "not3 is not of type 'object', 'boolean'"},
		{"multipleOf", `{"multipleOf": 0}`, "multipleOf0 is less than or equal to the minimum of 0"},
		{"draft 4 exclusiveMinimum", `{` + draft4 + `"minimum": 5, "exclusiveMinimum": true}`, "exclusiveMinimumTrue is not of type 'number'"},
		// Draft 7 accepts them, the draft records are validated with does
		// not (Kinto: a 500 at every record).
		{"items array under 2020-12", `{"properties": {"l": {"items": [{}], "additionalItems": false}}}`, "items[{}] is not of type 'object', 'boolean'"},
		{"exclusiveMinimum under draft 4", `{` + draft4 + `"exclusiveMinimum": 3}`, "exclusiveMinimum3 is not of type 'boolean'"},
		// References Kinto resolves at record time.
		{"$ref cycle", `{"$ref": "#"}`, "$ref'#' is a reference cycle"},
		{"$ref property cycle", `{"properties": {"c": {"$ref": "#/properties/c"}}}`, "$ref'#/properties/c' is a reference cycle"},
		{"$ref cycle through allOf", `{"$defs": {"a": {"allOf": [{"$ref": "#/$defs/b"}]}, "b": {"anyOf": [{"$ref": "#/$defs/a"}]}}, "properties": {"x": {"$ref": "#/$defs/a"}}}`, "$ref'#/$defs/b' is a reference cycle"},
		{"$ref cycle draft 7", `{` + draft7 + `"definitions": {"a": {"$ref": "#/definitions/a"}}, "properties": {"x": {"$ref": "#/definitions/a"}}}`, "$ref'#/definitions/a' is a reference cycle"},
		{"missing pointer", `{"$ref": "#/definitions/missing"}`, "PointerToNowhere: '/definitions/missing' does not exist within {'$ref': '#/definitions/missing'}"},
		{"external", `{"$ref": "a b"}`, "Unresolvable: a b"},
		{"draft 3", `{"$schema": "http://json-schema.org/draft-03/schema#"}`, "$schema'http://json-schema.org/draft-03/schema#' is not supported (draft 3)"},
		// Costs.
		{"too deep", strings.Repeat(`{"not": `, maxSchemaDepth+1) + `{}` + strings.Repeat(`}`, maxSchemaDepth+1), "schema is too deeply nested (more than 100 levels)"},
		{"too many subschemas", wide, "schema is too large (more than 5000 objects and booleans)"},
		{"long number", `{"minimum": 1` + strings.Repeat("0", maxNumberLength) + `}`, "10000000000000000000... is too long a number (more than 4300 characters)"},
		{"large exponent", `{"minimum": 1e401}`, "1e401 is too large a number (exponent beyond 400)"},
	}
	for _, tt := range tests {
		got := Check(decode(t, tt.schema))
		switch {
		case got == "":
			t.Errorf("%s: accepted", tt.name)
		case tt.message != "" && got != tt.message:
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.message)
		}
		// Stored before (or refused by Kinto's Draft 7 check only: the
		// draft it names accepts it).
		if f, ok := Validate(decode(t, tt.schema), map[string]any{}); tt.name != "draft 4 exclusiveMinimum" && (ok || f.Field != "schema") {
			t.Errorf("%s: Validate %v %+v", tt.name, ok, f)
		}
	}
}

// A recursive schema is not a cycle: each application is on a part of the
// instance.
func TestRecursiveSchemasAccepted(t *testing.T) {
	for _, s := range []string{
		`{"properties": {"children": {"items": {"$ref": "#"}}}}`,
		`{"$defs": {"node": {"properties": {"left": {"$ref": "#/$defs/node"}, "right": {"$ref": "#/$defs/node"}}}}, "$ref": "#/$defs/node"}`,
		`{"additionalProperties": {"$ref": "#"}}`,
		`{"propertyNames": {"$ref": "#"}, "maxLength": 3}`,
		`{"$ref": "http://json-schema.org/draft-07/schema#"}`,
		`{"$ref": "https://json-schema.org/draft/2020-12/schema"}`,
		// A cycle through a keyword the draft does not have.
		`{"dependencies": {"a": {"$ref": "#"}}}`,
		// Deep, but applied once.
		strings.Repeat(`{"not": `, maxSchemaDepth) + `{}` + strings.Repeat(`}`, maxSchemaDepth),
	} {
		schema := decode(t, s)
		if msg := Check(schema); msg != "" {
			t.Errorf("%.80s: %s", s, msg)
		}
		if f, ok := Validate(schema, decode(t, `{"children": [{}], "a": {"b": 1}}`)); !ok && f.Field == "schema" {
			t.Errorf("%.80s: %+v", s, f)
		}
	}
}

// No reference may leave the schema: not a file, not a URL.
func TestExternalReferencesRefused(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret.json")
	os.WriteFile(secret, []byte(`{"type": "string"}`), 0o600)
	for _, ref := range []string{"file://" + secret, secret, "secret.json", "http://127.0.0.1:1/x.json"} {
		s := decode(t, `{"properties": {"a": {"$ref": "`+ref+`"}}}`)
		if msg := Check(s); !strings.HasPrefix(msg, "Unresolvable: ") {
			t.Errorf("$ref %s: Check %q", ref, msg)
		}
		if f, ok := Validate(s, decode(t, `{"a": 1}`)); ok || f.Field != "schema" {
			t.Errorf("$ref %s: %v %+v", ref, ok, f)
		}
	}
	// The meta-schemas are built in (nothing is fetched); internal
	// references work.
	if f, ok := Validate(decode(t, `{"$ref": "http://json-schema.org/draft-07/schema#"}`), decode(t, `{"type": 5}`)); ok {
		t.Errorf("meta-schema reference: %+v", f)
	}
	s := decode(t, `{"definitions": {"n": {"type": "string"}}, "properties": {"a": {"$ref": "#/definitions/n"}}}`)
	if f, ok := Validate(s, decode(t, `{"a": 1}`)); ok || f.Field != "a" {
		t.Errorf("internal $ref: %v %+v", ok, f)
	}
}

// Several failures: the one reported does not depend on map order.
func TestFirstFailureIsStable(t *testing.T) {
	schema := decode(t, `{"type": "object", "required": ["m1", "m2"], "minProperties": 30,
		"properties": {"a": {"type": "string"}, "b": {"type": "string"}, "c": {"minimum": 5}, "d": {"enum": [1]}},
		"patternProperties": {"^e": {"type": "string"}, "^e1": {"maxLength": 0}},
		"dependentRequired": {"a": ["x"], "b": ["y"]}, "propertyNames": {"maxLength": 2}}`)
	instance := decode(t, `{"a": 1, "b": 2, "c": 1, "d": 2, "e1": 3, "e12": 4, "long": 5}`)
	want, _ := Validate(schema, instance)
	// Keys in jsonb order, as Kinto reads schemas from PostgreSQL: type,
	// then required (before properties, dependentRequired…).
	if want.Field != "m1" || want.Message != "'m1' is a required property" {
		t.Errorf("first failure %+v", want)
	}
	for i := 0; i < 50; i++ {
		if f, _ := Validate(schema, instance); f != want {
			t.Fatalf("run %d: %+v, then %+v", i, want, f)
		}
	}
}

// A validation whose work explodes is refused before it runs: the library
// (as Python) evaluates a subschema once per path that reaches it.
func TestValidationCostBounded(t *testing.T) {
	chain := `{"$defs": {"a0": {"type": "integer"}`
	for i := 1; i <= 40; i++ {
		chain += fmt.Sprintf(`, "a%d": {"allOf": [{"$ref": "#/$defs/a%d"}, {"$ref": "#/$defs/a%d"}]}`, i, i-1, i-1)
	}
	chain += `}, "properties": {"n": {"$ref": "#/$defs/a40"}}}`
	nested := strings.Repeat("[", 40) + strings.Repeat("]", 40)
	big := make([]any, 200000)
	for i := range big {
		big[i] = json.Number("3")
	}
	tests := []struct {
		name     string
		schema   string
		instance any
		refused  bool
	}{
		{"in place", chain, decode(t, `{"n": 1}`), true},
		{"in place, not reached", chain, decode(t, `{"m": 1}`), false},
		{"through items", `{"properties": {"l": {"$ref": "#/$defs/l"}}, "$defs": {"l": {"allOf": [{"items": {"$ref": "#/$defs/l"}}, {"items": {"$ref": "#/$defs/l"}}]}}}`,
			decode(t, `{"l": `+nested+`}`), true},
		{"huge number", `{"properties": {"n": {"multipleOf": 3}}}`, map[string]any{"n": json.Number("7." + strings.Repeat("1", 1<<20))}, true},
		{"huge exponent", `{"properties": {"n": {"minimum": 3}}}`, map[string]any{"n": json.Number("1e999999999")}, true},
		{"large but fine", `{"properties": {"l": {"items": {"type": "integer", "minimum": 0}}}}`, map[string]any{"l": big}, false},
	}
	for _, tt := range tests {
		start := time.Now()
		schema := decode(t, tt.schema)
		if msg := Check(schema); msg != "" {
			t.Errorf("%s: Check: %s", tt.name, msg)
			continue
		}
		f, ok := Validate(schema, tt.instance)
		refused := !ok && f.Field == "schema"
		if refused != tt.refused {
			t.Errorf("%s: refused %v, want %v (%+v)", tt.name, refused, tt.refused, f)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("%s: %v", tt.name, d)
		}
	}
}

// Every error kind of the library (kind/kind.go) renders, even with
// fields the library would not leave empty, and without a known schema.
func TestEveryKindRenders(t *testing.T) {
	r1 := big.NewRat(1, 1)
	kinds := []jsonschema.ErrorKind{
		&kind.InvalidJsonValue{Value: math.NaN()}, &kind.Schema{}, &kind.Group{}, &kind.Not{}, &kind.AllOf{},
		&kind.AnyOf{}, &kind.OneOf{}, &kind.OneOf{Subschemas: []int{0}}, &kind.OneOf{Subschemas: []int{0, 1}},
		&kind.FalseSchema{}, &kind.RefCycle{}, &kind.Type{}, &kind.Type{Want: []string{"string"}}, &kind.Enum{},
		&kind.Const{}, &kind.Format{}, &kind.Reference{}, &kind.MinProperties{}, &kind.MaxProperties{},
		&kind.MinItems{}, &kind.MaxItems{}, &kind.AdditionalItems{}, &kind.AdditionalItems{Count: 3},
		&kind.Required{}, &kind.Dependency{}, &kind.DependentRequired{}, &kind.AdditionalProperties{},
		&kind.PropertyNames{}, &kind.UniqueItems{}, &kind.Contains{}, &kind.MinContains{},
		&kind.MinContains{Got: []int{1}}, &kind.MaxContains{}, &kind.MinLength{}, &kind.MaxLength{},
		&kind.Pattern{}, &kind.ContentEncoding{}, &kind.ContentMediaType{}, &kind.ContentSchema{},
		&kind.Minimum{}, &kind.Maximum{}, &kind.ExclusiveMinimum{}, &kind.ExclusiveMaximum{},
		&kind.MultipleOf{}, &kind.Minimum{Got: r1, Want: r1}, &kind.MultipleOf{Got: r1, Want: big.NewRat(1, 3)},
	}
	// Not a JSON value: only a Go caller can pass one.
	if f, ok := Validate(decode(t, `{"properties": {"n": {"type": "number"}}}`), map[string]any{"n": math.NaN()}); ok || f.Field != "n" || f.Message == "" {
		t.Errorf("NaN: %v %+v", ok, f)
	}
	for _, instance := range []any{nil, map[string]any{"a": []any{json.Number("1")}}, []any{"x"}, "s", json.Number("2")} {
		for _, k := range kinds {
			for _, loc := range [][]string{nil, {"a"}, {"a", "0"}} {
				ve := &jsonschema.ValidationError{SchemaURL: resource + "#/properties/a", InstanceLocation: loc, ErrorKind: k}
				root := &jsonschema.ValidationError{SchemaURL: resource + "#", ErrorKind: &kind.Schema{}, Causes: []*jsonschema.ValidationError{ve}}
				e := newRenderer(instance, nil, map[string]*doc{}).first(root)
				if e.msg == "" {
					t.Errorf("%T on %v at %v: no message", k, instance, loc)
				}
				_ = e.field()
				_ = e.checkMessage()
			}
		}
	}
}

// Check and Validate never panic and always end; seeds are the table's
// cases. Run: go test -fuzz FuzzValidate ./internal/schema
func FuzzValidate(f *testing.F) {
	for _, tt := range failureCases {
		f.Add(tt.schema, tt.instance)
	}
	f.Add(`{"$ref": "#"}`, `{}`)
	f.Add(`{"properties": {"c": {"$ref": "#/properties/c"}}}`, `{"c": 1}`)
	f.Add(`{"properties": {"s": {"pattern": "(unclosed"}}}`, `{"s": "x"}`)
	f.Add(`{"items": [{}], "additionalItems": false}`, `[1, 2]`)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 30; i++ {
		schema, _ := json.Marshal(randomSchema(rng, 3))
		instance, _ := json.Marshal(randomValue(rng, 3))
		f.Add(string(schema), string(instance))
	}
	f.Fuzz(func(t *testing.T, schemaJSON, instanceJSON string) {
		schema, err1 := decodeFuzz(schemaJSON)
		instance, err2 := decodeFuzz(instanceJSON)
		if err1 != nil || err2 != nil {
			return
		}
		start := time.Now()
		// Unguarded (no recover): a panic fails the fuzz run. Validate
		// runs on refused schemas too: stored ones may predate a check.
		check(schema)
		fail, ok := validate(schema, instance)
		if !ok && fail.Message == "" {
			t.Errorf("failure without a message: %+v", fail)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("took %v", d)
		}
	})
}

func decodeFuzz(s string) (any, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data")
	}
	return v, nil
}

// Random schemas built from every keyword (well and badly typed), on
// random instances: Check and Validate never panic. The fuzz target finds
// what the grammar misses; this reaches keyword combinations quickly.
func TestRandomSchemasNeverPanic(t *testing.T) {
	n := 3000
	if testing.Short() {
		n = 300
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < n; i++ {
		schema := randomSchema(rng, 3)
		if m, ok := schema.(map[string]any); ok && rng.IntN(3) == 0 {
			m["$schema"] = []string{"http://json-schema.org/draft-04/schema#", "http://json-schema.org/draft-06/schema#",
				"http://json-schema.org/draft-07/schema#", "https://json-schema.org/draft/2019-09/schema",
				"https://json-schema.org/draft/2020-12/schema"}[rng.IntN(5)]
		}
		for j := 0; j < 3; j++ {
			instance := randomValue(rng, 3)
			check(schema)
			if fail, ok := validate(schema, instance); !ok && fail.Message == "" {
				t.Fatalf("no message: %v on %v", schema, instance)
			}
		}
	}
}

func randomValue(rng *rand.Rand, depth int) any {
	switch k := rng.IntN(8); {
	case k == 0:
		return nil
	case k == 1:
		return rng.IntN(2) == 0
	case k == 2:
		return json.Number([]string{"0", "1", "2", "-1", "1.5", "3", "1e2", "0.1"}[rng.IntN(8)])
	case k == 3:
		return []string{"", "a", "ab", "abc", "x1", "2020-01-01", "(", "^a"}[rng.IntN(8)]
	case k < 6 && depth > 0:
		l := make([]any, rng.IntN(4))
		for i := range l {
			l[i] = randomValue(rng, depth-1)
		}
		return l
	case depth > 0:
		m := map[string]any{}
		for i := rng.IntN(4); i > 0; i-- {
			m[[]string{"a", "b", "c", "x1", "id"}[rng.IntN(5)]] = randomValue(rng, depth-1)
		}
		return m
	}
	return "s"
}

var randomKeywords = []string{"type", "enum", "const", "format", "multipleOf", "maximum", "exclusiveMaximum", "minimum",
	"exclusiveMinimum", "maxLength", "minLength", "pattern", "items", "prefixItems", "additionalItems", "maxItems",
	"minItems", "uniqueItems", "contains", "minContains", "maxContains", "properties", "patternProperties",
	"additionalProperties", "required", "dependencies", "dependentRequired", "dependentSchemas", "propertyNames",
	"maxProperties", "minProperties", "allOf", "anyOf", "oneOf", "not", "if", "then", "else", "unevaluatedItems",
	"unevaluatedProperties", "$ref", "$defs", "definitions", "$dynamicRef", "$dynamicAnchor", "$anchor", "$id"}

func randomSchema(rng *rand.Rand, depth int) any {
	if depth == 0 || rng.IntN(6) == 0 {
		return []any{true, false, map[string]any{}}[rng.IntN(3)]
	}
	m := map[string]any{}
	for i := 1 + rng.IntN(3); i > 0; i-- {
		kw := randomKeywords[rng.IntN(len(randomKeywords))]
		sub := func() any { return randomSchema(rng, depth-1) }
		var v any
		switch kw {
		case "type":
			v = []any{"string", "integer", "object", "array", "null", "number", "boolean", []any{"integer", "string"}}[rng.IntN(8)]
		case "enum":
			v = []any{randomValue(rng, 1), randomValue(rng, 1)}
		case "const":
			v = randomValue(rng, 1)
		case "format":
			v = []string{"email", "regex", "date", "uri"}[rng.IntN(4)]
		case "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum":
			v = json.Number([]string{"0", "1", "2", "1.5", "-1", "0.5"}[rng.IntN(6)])
		case "maxLength", "minLength", "maxItems", "minItems", "minContains", "maxContains", "maxProperties", "minProperties":
			v = json.Number(fmt.Sprint(rng.IntN(4) - rng.IntN(2)))
		case "pattern":
			v = []string{"^a", "b$", "(", "x"}[rng.IntN(4)]
		case "uniqueItems":
			v = rng.IntN(2) == 0
		case "items", "prefixItems", "allOf", "anyOf", "oneOf":
			if kw == "items" && rng.IntN(2) == 0 {
				v = sub()
			} else {
				v = []any{sub(), sub()}[:1+rng.IntN(2)]
			}
		case "properties", "patternProperties", "dependentSchemas", "$defs", "definitions":
			names := []string{"a", "b", "^x", "id"}
			v = map[string]any{names[rng.IntN(4)]: sub(), names[rng.IntN(4)]: sub()}
		case "dependencies":
			v = map[string]any{"a": []any{"b"}, "b": sub()}
		case "required":
			v = []any{"a", "b", "c"}[:rng.IntN(3)]
		case "dependentRequired":
			v = map[string]any{"a": []any{"b"}}
		case "$ref", "$dynamicRef":
			v = []string{"#", "#/properties/a", "#/$defs/a", "#/definitions/b", "#x", "#/items/0", "#node"}[rng.IntN(7)]
		case "$dynamicAnchor", "$anchor":
			v = []string{"node", "x"}[rng.IntN(2)]
		case "$id":
			v = []string{"sub.json", "#frag", "https://kintogo.invalid/other.json"}[rng.IntN(3)]
		default:
			v = sub()
		}
		if rng.IntN(20) == 0 {
			v = randomValue(rng, 1) // a wrong type, now and then
		}
		m[kw] = v
	}
	return m
}
