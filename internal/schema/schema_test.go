package schema

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func decode(t *testing.T, s string) any {
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
		{`{"name": "x", "extra": true}`, "", "Additional properties are not allowed ('extra' was unexpected)"},
		{`{"name": "x", "kind": "c"}`, "kind", "'c' is not one of ['a', 'b']"},
	}
	for _, tt := range tests {
		f, ok := Validate(decode(t, people), decode(t, tt.instance))
		if ok != (tt.message == "") || f.Field != tt.field || f.Message != tt.message {
			t.Errorf("%s: %v %+v, want %q %q", tt.instance, ok, f, tt.field, tt.message)
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
		if msg := Check(s); msg == "" {
			t.Errorf("$ref %s accepted by Check", ref)
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
