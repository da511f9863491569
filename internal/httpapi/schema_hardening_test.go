package httpapi_test

import (
	"strconv"
	"testing"
)

// schemaFailures are records (stored as r1) failing a collection's schema,
// one per keyword, with the field and message of the reference Kinto
// (where it answers 500, the field is the keyword or the missing
// property). Schemas with keywords on the whole record declare id, which
// Kinto leaves in the record then.
var schemaFailures = []struct {
	name, schema, record, field, message string
}{
	{"multipleOf", `{"properties": {"n": {"multipleOf": 3}}}`, `{"n": 4}`, "n", "4 is not a multiple of 3"},
	{"minItems", `{"properties": {"l": {"minItems": 2}}}`, `{"l": [1]}`, "l", "l in body: [1] is too short"},
	{"minItems 1", `{"properties": {"l": {"minItems": 1}}}`, `{"l": []}`, "l", "[] should be non-empty"},
	{"maxItems", `{"properties": {"l": {"maxItems": 1}}}`, `{"l": [1, 2]}`, "l", "[1, 2] is too long"},
	{"uniqueItems", `{"properties": {"l": {"uniqueItems": true}}}`, `{"l": [1, 1]}`, "l", "[1, 1] has non-unique elements"},
	{"minProperties", `{"properties": {"o": {"minProperties": 2}}}`, `{"o": {"a": 1}}`, "o", "{'a': 1} does not have enough properties"},
	{"maxProperties", `{"properties": {"o": {"maxProperties": 1}}}`, `{"o": {"a": 1, "b": 2}}`, "o", "{'a': 1, 'b': 2} has too many properties"},
	{"root minProperties", `{"properties": {"id": {}}, "minProperties": 3}`, `{"a": 1}`, "minProperties", "minProperties in body: {'a': 1, 'id': 'r1'} does not have enough properties"},
	{"root maxProperties", `{"properties": {"id": {}}, "maxProperties": 2}`, `{"a": 1, "b": 2}`, "maxProperties", "maxProperties in body: {'a': 1, 'b': 2, 'id': 'r1'} has too many properties"},
	{"not", `{"properties": {"n": {"not": {"type": "integer"}}}}`, `{"n": 4}`, "n", "4 should not be valid under {'type': 'integer'}"},
	{"exclusiveMinimum", `{"properties": {"n": {"exclusiveMinimum": 5}}}`, `{"n": 5}`, "n", "5 is less than or equal to the minimum of 5"},
	{"exclusiveMaximum", `{"properties": {"n": {"exclusiveMaximum": 5}}}`, `{"n": 5}`, "n", "5 is greater than or equal to the maximum of 5"},
	{"dependentRequired", `{"dependentRequired": {"a": ["b"]}}`, `{"a": 1}`, "b", "'b' is a dependency of 'a'"},
	{"dependencies draft-07", `{"$schema": "http://json-schema.org/draft-07/schema#", "dependencies": {"a": ["b"]}}`, `{"a": 1}`, "b", "'b' is a dependency of 'a'"},
	{"additionalItems draft-07", `{"$schema": "http://json-schema.org/draft-07/schema#", "properties": {"l": {"items": [{}], "additionalItems": false}}}`, `{"l": [1, 2]}`, "l", "Additional items are not allowed (2 was unexpected)"},
	{"items false", `{"properties": {"l": {"prefixItems": [{}], "items": false}}}`, `{"l": [1, 2]}`, "l", "l in body: Expected at most 1 item but found 1 extra: 2"},
	{"pattern", `{"properties": {"s": {"pattern": "^a"}}}`, `{"s": "b"}`, "s", "'b' does not match '^a'"},
	{"enum", `{"properties": {"n": {"enum": [1, 2]}}}`, `{"n": 3}`, "n", "3 is not one of [1, 2]"},
	{"const", `{"properties": {"n": {"const": 1}}}`, `{"n": 3}`, "n", "n in body: 1 was expected"},
	{"contains", `{"properties": {"l": {"contains": {"type": "string"}}}}`, `{"l": [1]}`, "l", "l in body: [1] does not contain items matching the given schema"},
	{"minContains", `{"properties": {"l": {"contains": {"type": "string"}, "minContains": 2}}}`, `{"l": ["a"]}`, "l", "Too few items match the given schema (expected at least 2 but only 1 matched)"},
	{"maxContains", `{"properties": {"l": {"contains": {"type": "string"}, "maxContains": 1}}}`, `{"l": ["a", "b"]}`, "l", "l in body: Too many items match the given schema (expected at most 1)"},
	{"propertyNames", `{"propertyNames": {"maxLength": 2}}`, `{"abc": 1}`, "propertyNames", "propertyNames in body: 'abc' is too long"},
	{"patternProperties", `{"properties": {"o": {"patternProperties": {"^x": {}}, "additionalProperties": false}}}`, `{"o": {"y": 1}}`, "o", "'y' does not match any of the regexes: '^x'"},
	{"if/then", `{"if": {"required": ["a"]}, "then": {"required": ["b"]}}`, `{"a": 1}`, "b", "'b' is a required property"},
	{"dependentSchemas", `{"properties": {"o": {"dependentSchemas": {"a": {"required": ["b"]}}}}}`, `{"o": {"a": 1}}`, "o", "'b' is a required property"},
	{"unevaluatedProperties", `{"properties": {"a": {}, "id": {}}, "unevaluatedProperties": false}`, `{"a": 1, "z": 1}`, "unevaluatedProperties", "unevaluatedProperties in body: Unevaluated properties are not allowed ('z' was unexpected)"},
	{"unevaluatedItems", `{"properties": {"l": {"prefixItems": [{}], "unevaluatedItems": false}}}`, `{"l": [1, 2]}`, "l", "Unevaluated items are not allowed (2 was unexpected)"},
	{"type", `{"properties": {"n": {"type": ["integer", "string"]}}}`, `{"n": 1.5}`, "n", "1.5 is not of type 'integer', 'string'"},
	{"required", `{"required": ["x"]}`, `{}`, "x", "'x' is a required property"},
	{"oneOf", `{"properties": {"n": {"oneOf": [{"type": "integer"}, {"minimum": 0}]}}}`, `{"n": 5}`, "n", "5 is valid under each of {'minimum': 0}, {'type': 'integer'}"},
	{"anyOf", `{"properties": {"n": {"anyOf": [{"type": "string"}, {"minimum": 10}]}}}`, `{"n": 5}`, "n", "5 is not valid under any of the given schemas"},
	{"false", `{"properties": {"a": false}}`, `{"a": 1}`, "properties", "properties in body: False schema does not allow 1"},
}

func TestSchemaFailuresAre400(t *testing.T) {
	eachBackend(t, map[string]string{"experimental_collection_schema_validation": "true"}, func(t *testing.T, c *client) {
		const auth = "alice:alicepw"
		c.put("/v1/buckets/b", auth, nil).must(t, 201)
		for i, tt := range schemaFailures {
			coll := "/v1/buckets/b/collections/c" + strconv.Itoa(i)
			c.do(req{method: "PUT", path: coll, auth: auth, body: `{"data": {"schema": ` + tt.schema + `}}`}).must(t, 201)
			r := c.do(req{method: "PUT", path: coll + "/records/r1", auth: auth, body: `{"data": ` + tt.record + `}`})
			if r.status != 400 || r.str("errno") != "107" || r.str("message") != tt.message || r.str("details.0.name") != tt.field {
				t.Errorf("%s: %d %s\nwant 400 %q (%s)", tt.name, r.status, r.raw, tt.message, tt.field)
			}
		}

		// A batch applies its sub-requests one by one: the refused record
		// is a 400 in its slot, the others are stored.
		c.do(req{method: "PUT", path: "/v1/buckets/b/collections/people", auth: auth, body: `{"data": {"schema": {"properties": {"l": {"minItems": 2}}}}}`}).must(t, 201)
		r := c.do(req{method: "POST", path: "/v1/batch", auth: auth, body: map[string]any{"requests": []any{
			map[string]any{"method": "PUT", "path": "/buckets/b/collections/people/records/ok1", "body": map[string]any{"data": map[string]any{"l": []int{1, 2}}}},
			map[string]any{"method": "PUT", "path": "/buckets/b/collections/people/records/bad", "body": map[string]any{"data": map[string]any{"l": []int{1}}}},
			map[string]any{"method": "PUT", "path": "/buckets/b/collections/people/records/ok2", "body": map[string]any{"data": map[string]any{"x": 1}}},
		}}}).must(t, 200)
		if got := r.str("responses.0.status") + " " + r.str("responses.1.status") + " " + r.str("responses.2.status"); got != "201 400 201" {
			t.Errorf("batch statuses %s: %s", got, r.raw)
		}
		if r.str("responses.1.body.errno") != "107" || r.str("responses.1.body.message") != "l in body: [1] is too short" {
			t.Errorf("batch failure: %s", r.raw)
		}
		c.get("/v1/buckets/b/collections/people/records/ok1", auth).must(t, 200)
		c.get("/v1/buckets/b/collections/people/records/ok2", auth).must(t, 200)
		c.get("/v1/buckets/b/collections/people/records/bad", auth).wantError(t, 404, 110)

		// Schemas records could not be validated with are refused when
		// stored (Kinto stores them, then fails every record with a 500).
		for _, tt := range []struct{ name, schema, message string }{
			{"invalid pattern", `{"properties": {"s": {"pattern": "(unclosed"}}}`, "data.schema in body: pattern'(unclosed' is not a 'regex'"},
			{"$ref cycle", `{"$ref": "#"}`, "data.schema in body: $ref'#' is a reference cycle"},
			{"property $ref cycle", `{"properties": {"c": {"$ref": "#/properties/c"}}}`, "data.schema in body: $ref'#/properties/c' is a reference cycle"},
			{"items array under 2020-12", `{"properties": {"l": {"items": [{}], "additionalItems": false}}}`, "data.schema in body: items[{}] is not of type 'object', 'boolean'"},
			{"unresolvable", `{"$ref": "#/definitions/missing"}`, "data.schema in body: PointerToNowhere: '/definitions/missing' does not exist within {'$ref': '#/definitions/missing'}"},
		} {
			r := c.do(req{method: "PUT", path: "/v1/buckets/b/collections/refused", auth: auth, body: `{"data": {"schema": ` + tt.schema + `}}`})
			r.wantError(t, 400, 107)
			if r.str("message") != tt.message {
				t.Errorf("%s: %s", tt.name, r.raw)
			}
			// The bucket's schemas too.
			c.do(req{method: "PUT", path: "/v1/buckets/refused", auth: auth, body: `{"data": {"record:schema": ` + tt.schema + `}}`}).wantError(t, 400, 107)
		}

		// Drafts: without $schema, 2020-12 (dependentRequired applies);
		// with draft-07, it does not (and dependencies does).
		c.do(req{method: "PUT", path: "/v1/buckets/b/collections/latest", auth: auth, body: `{"data": {"schema": {"dependentRequired": {"a": ["b"]}, "dependencies": {"c": ["d"]}}}}`}).must(t, 201)
		c.do(req{method: "POST", path: "/v1/buckets/b/collections/latest/records", auth: auth, body: `{"data": {"a": 1}}`}).wantError(t, 400, 107)
		c.do(req{method: "POST", path: "/v1/buckets/b/collections/latest/records", auth: auth, body: `{"data": {"c": 1}}`}).must(t, 201)
		c.do(req{method: "PUT", path: "/v1/buckets/b/collections/draft7", auth: auth, body: `{"data": {"schema": {"$schema": "http://json-schema.org/draft-07/schema#", "dependentRequired": {"a": ["b"]}, "dependencies": {"c": ["d"]}}}}`}).must(t, 201)
		c.do(req{method: "POST", path: "/v1/buckets/b/collections/draft7/records", auth: auth, body: `{"data": {"a": 1}}`}).must(t, 201)
		c.do(req{method: "POST", path: "/v1/buckets/b/collections/draft7/records", auth: auth, body: `{"data": {"c": 1}}`}).wantError(t, 400, 107)

		// format is never asserted.
		c.do(req{method: "PUT", path: "/v1/buckets/b/collections/formats", auth: auth, body: `{"data": {"schema": {"properties": {"e": {"format": "email"}, "d": {"format": "date"}}}}}`}).must(t, 201)
		c.do(req{method: "POST", path: "/v1/buckets/b/collections/formats/records", auth: auth, body: `{"data": {"e": "nope", "d": "nope"}}`}).must(t, 201)

		// The bucket's record:schema is applied the same way.
		c.do(req{method: "PUT", path: "/v1/buckets/bs", auth: auth, body: `{"data": {"record:schema": {"properties": {"l": {"uniqueItems": true}}}}}`}).must(t, 201)
		c.put("/v1/buckets/bs/collections/c", auth, nil).must(t, 201)
		r = c.do(req{method: "POST", path: "/v1/buckets/bs/collections/c/records", auth: auth, body: `{"data": {"l": [1, 1]}}`})
		r.wantError(t, 400, 107)
		if r.str("message") != "[1, 1] has non-unique elements" {
			t.Errorf("bucket record:schema: %s", r.raw)
		}
	})
}
