package sqlite

import (
	"bytes"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"strings"
	"sync"

	"modernc.org/sqlite"

	"kintogo/internal/query"
)

// The SQL functions through which SQLite evaluates Kinto's filters and
// sorts on JSON fields with the Go evaluator's semantics, by construction:
//
//	kinto_key(json)               query.Key of the JSON text's value; for NULL
//	                              (a missing field) x'FF', after every key
//	kinto_match(json, op, value)  whether the value matches the filter op=value
//	                              (value as JSON), as query.Match decides
//
// The JSON text is a field's value as `data -> path` gives it, NULL when
// the field is missing.
func init() {
	sqlite.MustRegisterDeterministicScalarFunction("kinto_key", 1, kintoKey)
	sqlite.MustRegisterDeterministicScalarFunction("kinto_match", 3, kintoMatch)
}

func kintoKey(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
	v, ok, err := jsonArg(args[0])
	if err != nil {
		return nil, err
	}
	if !ok {
		return missingKey, nil
	}
	return query.Key(nil, v), nil
}

// missingKey is the key of a missing field: after every value's, as
// query.Compare orders them, so that one comparison of keys is Kinto's
// rule for missing fields too (gt_, min_, not_ and exclude_ match them).
// sqlstore's plans rely on it.
var missingKey = []byte{0xFF}

func kintoMatch(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
	v, present, err := jsonArg(args[0])
	if err != nil {
		return nil, err
	}
	op, _ := args[1].(string)
	raw, _ := args[2].(string)
	f, err := compiledFilter(op, raw)
	if err != nil {
		return nil, err
	}
	if query.Match(single{v, present}, f) {
		return int64(1), nil
	}
	return int64(0), nil
}

// single is one field's value, as a Fielder.
type single struct {
	v       any
	present bool
}

func (s single) Field(string) (any, bool) { return s.v, s.present }

// jsonArg decodes a JSON text argument; ok is false for NULL. Numbers,
// literals and strings without escapes, nearly every value, are read
// without a decoder.
func jsonArg(arg driver.Value) (v any, ok bool, err error) {
	var text string
	switch x := arg.(type) {
	case nil:
		return nil, false, nil
	case string:
		text = x
	case []byte:
		text = string(x)
	default:
		return nil, false, errNotJSON
	}
	switch {
	case text == "":
		return nil, false, errNotJSON
	case text[0] == '-' || (text[0] >= '0' && text[0] <= '9'):
		return json.Number(text), true, nil
	case text[0] == '"' && len(text) >= 2 && text[len(text)-1] == '"' && !strings.ContainsAny(text[1:len(text)-1], "\\\""):
		return text[1 : len(text)-1], true, nil
	case text == "true":
		return true, true, nil
	case text == "false":
		return false, true, nil
	case text == "null":
		return nil, true, nil
	}
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, false, err
	}
	return v, true, nil
}

var errNotJSON = errors.New("kinto_key: argument is not JSON text")

// filters caches the compiled filters of kinto_match, which SQLite calls
// once per row with the same arguments: compiled once per statement
// rather than once per row. Bounded: emptied when full.
var filters struct {
	sync.Mutex
	m map[[2]string][]query.Filter
}

func compiledFilter(op, raw string) ([]query.Filter, error) {
	key := [2]string{op, raw}
	filters.Lock()
	f, ok := filters.m[key]
	filters.Unlock()
	if ok {
		return f, nil
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(raw)))
	dec.UseNumber()
	var value any
	if err := dec.Decode(&value); err != nil {
		return nil, err
	}
	f = query.Compile([]query.Filter{{Field: "v", Op: query.Operator(op), Value: value}})
	filters.Lock()
	if filters.m == nil || len(filters.m) >= 256 {
		filters.m = map[[2]string][]query.Filter{}
	}
	filters.m[key] = f
	filters.Unlock()
	return f, nil
}
