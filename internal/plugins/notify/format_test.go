package notify

import (
	"encoding/json"
	"testing"
)

// Templates render as Python's str.format with keyword arguments.
func TestFormat(t *testing.T) {
	vars := map[string]any{
		"user_id": "account:alice", "changes_count": int64(3), "comment": "", "none": nil, "yes": true,
		"settings": map[string]any{"project_name": "Remote Settings"}, "list": []any{"a", json.Number("2")},
	}
	lookup := func(n string) (any, bool) { v, ok := vars[n]; return v, ok }
	for tmpl, want := range map[string]string{
		"{user_id} requested {changes_count} changes ({comment})": "account:alice requested 3 changes ()",
		"{settings[project_name]}: {{literal}} {list[1]}":         "Remote Settings: {literal} 2",
		"{none} {yes} {list} {user_id!r} {changes_count:>5}":      "None True ['a', 2] 'account:alice' 3",
		"no fields }} {{": "no fields } {",
	} {
		got, err := Format(tmpl, lookup)
		if err != nil || got != want {
			t.Errorf("%q: %q %v, want %q", tmpl, got, err, want)
		}
	}
	for _, bad := range []string{"{missing}", "{settings[missing]}", "{user_id", "}", "{}", "{list[5]}", "{user_id.upper}", "{user_id!x}"} {
		if got, err := Format(bad, lookup); err == nil {
			t.Errorf("%q: %q, want an error", bad, got)
		}
	}
}

// Hooks select events by equality, or by a regular expression anchored at
// the start when the filter starts with ^; filters the event lacks are
// ignored.
func TestMatches(t *testing.T) {
	vars := map[string]any{"event": ResourceChanged, "action": "create", "resource_name": "record", "collection_id": "experiment-1", "id": "r1"}
	for _, c := range []struct {
		hook map[string]any
		want bool
	}{
		{map[string]any{}, true},
		{map[string]any{"action": "create", "resource_name": "record"}, true},
		{map[string]any{"action": "update"}, false},
		{map[string]any{"collection_id": "^experiment-.*"}, true},
		{map[string]any{"collection_id": "^other"}, false},
		{map[string]any{"collection_id": "^1"}, false},
		{map[string]any{"event": "kinto_remote_settings.signer.events.ReviewRequested"}, false},
		{map[string]any{"record_id": "r2"}, true}, // the event has no record_id variable
	} {
		if got := Matches(c.hook, vars); got != c.want {
			t.Errorf("%v: %v", c.hook, got)
		}
	}
}

// Any template renders or fails, without panicking, in time linear in
// its length.
func FuzzFormat(f *testing.F) {
	for _, seed := range []string{"{user_id}", "{settings[project_name]}", "a[b]]", "{a[b]]}", "{{}}", "{x!r:>3}", "{list[0][1]}", "}{", "{a.b}"} {
		f.Add(seed)
	}
	vars := map[string]any{"a": map[string]any{"b": "c"}, "list": []any{[]any{"x", "y"}}, "settings": map[string]any{"project_name": "p"}}
	f.Fuzz(func(t *testing.T, tmpl string) {
		out, err := Format(tmpl, func(n string) (any, bool) { v, ok := vars[n]; return v, ok })
		if err == nil && len(out) > 64*len(tmpl)+64 {
			t.Fatalf("%q rendered %d bytes", tmpl, len(out))
		}
	})
}
