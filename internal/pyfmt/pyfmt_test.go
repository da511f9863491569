package pyfmt

import (
	"encoding/json"
	"testing"
)

func TestRepr(t *testing.T) {
	tests := []struct {
		in        any
		repr, str string
	}{
		{nil, "None", "None"},
		{true, "True", "True"},
		{"it's", `'it\'s'`, "it's"},
		{json.Number("1.5"), "1.5", "1.5"},
		{[]any{json.Number("1"), "a", nil}, "[1, 'a', None]", "[1, 'a', None]"},
		{map[string]any{"b": false, "a": []any{}}, "{'a': [], 'b': False}", "{'a': [], 'b': False}"},
	}
	for _, tt := range tests {
		if got := Repr(tt.in); got != tt.repr {
			t.Errorf("Repr(%v) = %s, want %s", tt.in, got, tt.repr)
		}
		if got := Str(tt.in); got != tt.str {
			t.Errorf("Str(%v) = %s, want %s", tt.in, got, tt.str)
		}
	}
}
