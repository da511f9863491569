package query

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"kintogo/internal/kerr"
)

// Operator is a filter's comparison.
type Operator string

// Kinto's filter operators; the query-string prefix is the operator's
// name followed by `_` (`min_n=3`), equality has no prefix.
const (
	EQ          Operator = "eq"
	NEQ         Operator = "not"
	LT          Operator = "lt"
	GT          Operator = "gt"
	MAX         Operator = "max" // <=
	MIN         Operator = "min" // >=
	IN          Operator = "in"
	EXCLUDE     Operator = "exclude"
	LIKE        Operator = "like"
	HAS         Operator = "has"
	CONTAINS    Operator = "contains"
	CONTAINSANY Operator = "contains_any"
)

// Reserved field names handled by storage itself.
const (
	IDField           = "id"
	ModifiedField     = "last_modified"
	DeletedField      = "deleted"
	maxFutureDriftMS  = 24 * 3600 * 1000
	paginationPrefix  = "pagination-token-"
	defaultMaxFetched = 10000
)

// Filter is one condition on a (possibly dotted) field.
//
// Value is, by Op: a []any for IN, EXCLUDE, CONTAINS and CONTAINSANY; a
// string pattern for LIKE; a bool for HAS; a JSON value (int64 for
// last_modified) for the others. Filters may be built by hand; those from
// Parse also carry the compiled form of their Value (see Compile), which
// Match ignores once Op or Value is assigned anew. A compiled list Value
// must not be modified in place.
type Filter struct {
	Field string
	Op    Operator
	Value any

	compiled *matcher
}

// Sort is one sort key.
type Sort struct {
	Field string
	Desc  bool
}

// Query is a parsed list query.
type Query struct {
	Filters []Filter
	Sort    []Sort // always ends with last_modified (Kinto's tie-breaker)
	// Limit is the `_limit` asked for, 0 when absent or 0.
	Limit int64
	// After holds the sort values of the last object of the previous page
	// (from `_token`); nil on a first page.
	After map[string]any
	// Offset is the number of objects served by previous pages.
	Offset int64
	// Nonce is the `_token`'s nonce (plural DELETE tokens are single-use).
	Nonce string
	// Fields is the `_fields` projection, nil for all fields.
	Fields []string
	// Tombstones is true when a filter touches last_modified (`_since`,
	// `_before`, `gt_last_modified`, ...): deleted objects are listed then.
	Tombstones bool
	// DeprecatedTo is true when `_to` was used (the response carries an Alert).
	DeprecatedTo bool
}

// Schema describes the fields a plural endpoint knows. Records, buckets,
// collections and groups accept any field; the monitor list is closed.
type Schema struct {
	Closed bool
	Fields []string // known fields of a closed schema (id and last_modified always are)
}

func (s Schema) known(field string) bool {
	if !s.Closed {
		return true
	}
	root, _, _ := strings.Cut(field, ".")
	if root == IDField || root == ModifiedField {
		return true
	}
	for _, f := range s.Fields {
		if f == root {
			return true
		}
	}
	return false
}

var (
	operatorRE = regexp.MustCompile(`^(lt|min|max|not|eq|gt|in|exclude|like|has|contains_any|contains)_([\w.]+)$`)
	sortRE     = regexp.MustCompile(`^[-+]?[\w.]+$`)
	digitsRE   = regexp.MustCompile(`^[0-9]+$`)
)

func invalid(name, description string) *kerr.Error {
	return kerr.InvalidParam("querystring", kerr.Name(name), description)
}

// Parse reads Kinto's list parameters. now is the current time in
// milliseconds, used to refuse timestamps more than a day in the future.
func Parse(params []Param, schema Schema, now int64) (*Query, error) {
	q := &Query{}
	for _, p := range params {
		name := strings.TrimSpace(p.Name)
		if strings.ContainsRune(name, 0) || strings.ContainsRune(p.Value, 0) {
			return nil, invalid(name, "Invalid character 0x00")
		}
		switch name {
		case "_limit":
			n, err := parseCount(name, p.Value)
			if err != nil {
				return nil, err
			}
			q.Limit = n
			continue
		case "_since", "_before", "_to":
			n, err := parseTimestamp(name, p.Value, now)
			if err != nil {
				return nil, err
			}
			op := LT
			if name == "_since" {
				op = GT
			}
			if name == "_to" {
				q.DeprecatedTo = true
			}
			if err := q.addFilter(name, Filter{Field: ModifiedField, Op: op, Value: n}); err != nil {
				return nil, err
			}
			q.Tombstones = true
			continue
		case "_sort":
			sorts, err := parseSort(p.Value, schema)
			if err != nil {
				return nil, err
			}
			q.Sort = sorts
			continue
		case "_fields":
			fields, err := parseFields(p.Value, schema)
			if err != nil {
				return nil, err
			}
			q.Fields = fields
			continue
		case "_token":
			if err := q.parseToken(p.Value); err != nil {
				return nil, err
			}
			continue
		}
		if strings.HasPrefix(name, "_") {
			continue // cache busters such as _=123 or _expected=
		}
		// Checked here as well as in addFilter so that the value of a filter
		// over the limit (up to MaxListValues values) is not even parsed.
		if len(q.Filters) >= MaxFilters {
			return nil, tooManyFilters(name)
		}
		f, err := parseFilter(name, p.Value, schema, now)
		if err != nil {
			return nil, err
		}
		if f.Field == ModifiedField {
			q.Tombstones = true
		}
		if err := q.addFilter(name, f); err != nil {
			return nil, err
		}
	}
	q.Sort = withTieBreaker(q.Sort)
	return q, nil
}

// addFilter appends a filter, compiled, within MaxFilters.
func (q *Query) addFilter(name string, f Filter) error {
	if len(q.Filters) >= MaxFilters {
		return tooManyFilters(name)
	}
	f.compile()
	q.Filters = append(q.Filters, f)
	return nil
}

func tooManyFilters(name string) error {
	return invalid(name, fmt.Sprintf("Too many filters: at most %d are allowed in one query", MaxFilters))
}

func parseCount(name, raw string) (int64, error) {
	v := strings.TrimSpace(raw)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		if digitsRE.MatchString(v) {
			return 0, invalid(name, fmt.Sprintf("%s is greater than maximum value %d", v, int64(1<<63-1)))
		}
		return 0, invalid(name, fmt.Sprintf("%q is not a number", raw))
	}
	if n < 0 {
		return 0, invalid(name, fmt.Sprintf("%d is less than minimum value 0", n))
	}
	return n, nil
}

func parseTimestamp(name, raw string, now int64) (int64, error) {
	v := strings.Trim(raw, `"`)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		if v == "null" {
			return 0, nil
		}
		if strings.HasPrefix(v, "-") {
			if _, err := strconv.ParseInt(v, 10, 64); err == nil || digitsRE.MatchString(v[1:]) {
				return 0, invalid(name, fmt.Sprintf("Invalid value for %s", name))
			}
		}
		return 0, invalid(name, fmt.Sprintf("%q is not a number", raw))
	}
	if n < 0 || (now > 0 && n > now+maxFutureDriftMS) {
		return 0, invalid(name, fmt.Sprintf("Invalid value for %s", name))
	}
	return n, nil
}

func parseSort(raw string, schema Schema) ([]Sort, error) {
	var sorts []Sort
	for _, tok := range strings.Split(raw, ",") {
		tok = strings.TrimSpace(tok)
		if !sortRE.MatchString(tok) {
			continue
		}
		s := Sort{Field: tok}
		switch tok[0] {
		case '-':
			s.Desc, s.Field = true, tok[1:]
		case '+':
			s.Field = tok[1:]
		}
		if !schema.known(s.Field) {
			return nil, invalid("_sort", fmt.Sprintf("Unknown sort field '%s'", s.Field))
		}
		if len(sorts) >= MaxSortFields {
			return nil, invalid("_sort", fmt.Sprintf("Too many sort fields: at most %d are allowed", MaxSortFields))
		}
		sorts = append(sorts, s)
	}
	return sorts, nil
}

// withTieBreaker appends -last_modified unless last_modified is sorted on.
func withTieBreaker(sorts []Sort) []Sort {
	for _, s := range sorts {
		if s.Field == ModifiedField {
			return sorts
		}
	}
	return append(sorts, Sort{Field: ModifiedField, Desc: true})
}

func parseFields(raw string, schema Schema) ([]string, error) {
	var fields, unknown []string
	for _, f := range strings.Split(raw, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if len(fields) >= MaxFields {
			return nil, invalid("_fields", fmt.Sprintf("Too many fields: at most %d are allowed", MaxFields))
		}
		if !schema.known(f) {
			unknown = append(unknown, f)
		}
		fields = append(fields, f)
	}
	if len(unknown) > 0 {
		return nil, invalid("Invalid _fields parameter", fmt.Sprintf("Fields %s do not exist", strings.Join(unknown, ",")))
	}
	return fields, nil
}

func parseFilter(name, raw string, schema Schema, now int64) (Filter, error) {
	f := Filter{Field: name, Op: EQ}
	if m := operatorRE.FindStringSubmatch(name); m != nil {
		f.Op, f.Field = Operator(m[1]), m[2]
	}
	if !schema.known(f.Field) {
		return f, invalid(name, fmt.Sprintf("Unknown filter field '%s'", name))
	}
	bad := invalid(name, fmt.Sprintf("Invalid value for %s", name))
	switch f.Op {
	case IN, EXCLUDE:
		// Counted before splitting: an oversized list is not worth parsing.
		if strings.Count(raw, ",") >= MaxListValues {
			return f, tooManyValues(name)
		}
		values := make([]any, 0, strings.Count(raw, ",")+1)
		for _, piece := range strings.Split(raw, ",") {
			values = append(values, Native(piece))
		}
		if f.Field == ModifiedField {
			return f, bad
		}
		if f.Field == IDField {
			for _, v := range values {
				if _, ok := v.(string); !ok {
					return f, bad
				}
			}
		}
		f.Value = values
		return f, nil
	case CONTAINS, CONTAINSANY:
		if f.Field == IDField || f.Field == ModifiedField {
			return f, invalid(name, fmt.Sprintf("Field '%s' is not an array", f.Field))
		}
		v := Native(raw)
		if l, ok := v.([]any); ok {
			if len(l) > MaxListValues {
				return f, tooManyValues(name)
			}
			f.Value = l
		} else {
			f.Value = []any{v}
		}
		return f, nil
	case HAS:
		v := Native(raw)
		b, ok := v.(bool)
		if !ok {
			// Kinto reads has_ values as booleans, anything else as true.
			b = !(raw == "false" || raw == "0")
		}
		f.Value = b
		return f, nil
	}
	v := Native(raw)
	if f.Op == LIKE {
		pattern, ok := v.(string)
		if !ok {
			return f, bad
		}
		if len(pattern) > MaxPatternBytes {
			return f, invalid(name, fmt.Sprintf("Pattern too long: at most %d bytes are allowed", MaxPatternBytes))
		}
	}
	switch f.Field {
	case ModifiedField:
		n, err := parseTimestamp(name, raw, now)
		if err != nil {
			return f, bad
		}
		// A like_ pattern stays a string (it used to become an int64 here,
		// which Match could not read as a pattern); it is still refused
		// unless it reads as a timestamp, as before.
		if f.Op != LIKE {
			v = n
		}
	case IDField:
		if n, ok := v.(json.Number); ok {
			v = string(n)
		}
	}
	f.Value = v
	return f, nil
}

func tooManyValues(name string) error {
	return invalid(name, fmt.Sprintf("Too many values: at most %d are allowed", MaxListValues))
}

// token is the JSON inside a pagination `_token`.
type token struct {
	LastObject map[string]any `json:"last_object"`
	Offset     int64          `json:"offset"`
	Nonce      string         `json:"nonce"`
}

func (q *Query) parseToken(raw string) error {
	bad := kerr.InvalidParam("querystring", nil, "_token has invalid content")
	b, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		b, err = base64.URLEncoding.DecodeString(raw)
		if err != nil {
			return bad
		}
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var t map[string]any
	if err := dec.Decode(&t); err != nil {
		return bad
	}
	last, ok := t["last_object"].(map[string]any)
	if !ok {
		return bad
	}
	off, ok := t["offset"].(json.Number)
	if !ok {
		return bad
	}
	nonce, ok := t["nonce"].(string)
	if !ok {
		return bad
	}
	q.Nonce = nonce
	n, err := off.Int64()
	if err != nil {
		return bad
	}
	if lm, ok := last[ModifiedField].(json.Number); ok {
		if i, err := lm.Int64(); err == nil {
			last[ModifiedField] = i
		}
	}
	q.After, q.Offset = last, n
	return nil
}

// Token builds the `_token` of the page after the one that ended with last:
// its sort-field values, the number of objects served so far, and a nonce.
func Token(last Fielder, sorts []Sort, offset int64) string {
	tok, _ := TokenWithNonce(last, sorts, offset)
	return tok
}

// TokenWithNonce is Token, also returning the token's nonce.
func TokenWithNonce(last Fielder, sorts []Sort, offset int64) (string, string) {
	values := map[string]any{}
	for _, s := range sorts {
		if v, ok := last.Field(s.Field); ok {
			values[s.Field] = v
		}
	}
	nonce := paginationPrefix + uuid.NewString()
	b, _ := json.Marshal(token{LastObject: values, Offset: offset, Nonce: nonce})
	return base64.StdEncoding.EncodeToString(b), nonce
}
