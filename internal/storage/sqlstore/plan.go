package sqlstore

import (
	"encoding/hex"
	"encoding/json"
	"math"
	"strconv"
	"strings"

	"kintogo/internal/query"
	"kintogo/internal/storage"
)

// plan is a list's selection as SQL. When exact is true the statement
// selects exactly the page: filters, order (storage.Order), keyset
// pagination and limit all in SQL, so that rows are decoded only when
// returned; the timestamp orders are read from the index on
// (parent_id, resource_name, last_modified, id), O(page). Otherwise the
// statement only narrows the rows read (by the filters it can evaluate,
// which remove only rows the evaluator would remove too), and
// storage.Select applies the whole selection in Go, as the memory backend
// does: every backend answers identically.
type plan struct {
	where []string
	args  []any
	order string
	limit int
	exact bool
	// composites are the JSON sort fields whose arrays and objects SQL
	// cannot order (PostgreSQL): an exact page holding one at such a
	// field is recomputed in Go (see List).
	composites []string
}

// compileList plans the list of a scope; live restricts it to live
// objects whatever opts says (counts).
func (d *Dialect) compileList(s storage.Scope, opts storage.ListOptions, live bool) plan {
	p := plan{where: []string{"parent_id = ?", "resource_name = ?"}, args: []any{s.Parent, s.Resource}, exact: true}
	if live || !opts.IncludeDeleted {
		p.where = append(p.where, "NOT deleted")
	}
	if opts.IDs != nil {
		cond, args := d.inList("id", opts.IDs, false)
		p.add(cond, args...)
	}
	for _, f := range opts.Filters {
		if !p.filter(d, f) {
			p.exact = false
		}
	}
	if !p.exact {
		return p
	}
	var keys []string
	for _, so := range storage.Order(opts.Sort) {
		fe, ok := d.field(so.Field)
		if !ok {
			p.exact = false
			return p
		}
		keys = append(keys, fe.order(so.Desc)...)
		if fe.composite {
			p.composites = append(p.composites, so.Field)
		}
	}
	p.order = strings.Join(keys, ", ")
	if opts.After != nil && !p.keyset(d, opts.Sort, opts.After) {
		p.exact = false
		return p
	}
	p.limit = opts.Limit
	return p
}

func (p *plan) add(cond string, args ...any) {
	p.where = append(p.where, "("+cond+")")
	p.args = append(p.args, args...)
}

// cond is a piece of SQL and its arguments.
type cond struct {
	sql  string
	args []any
}

// The constant conditions, which not, or and and simplify away: a
// condition SQLite sees as `NOT (1 = 1) OR last_modified > ?` would keep
// it from the index on last_modified.
const (
	sqlTrue  = "1 = 1"
	sqlFalse = "1 = 0"
)

func (c cond) not() cond {
	switch c.sql {
	case sqlTrue:
		return cond{sql: sqlFalse}
	case sqlFalse:
		return cond{sql: sqlTrue}
	}
	return cond{"NOT (" + c.sql + ")", c.args}
}

// or joins conditions; false when there are none.
func or(cs ...cond) cond { return join(" OR ", sqlFalse, sqlTrue, cs) }

// and joins conditions; true when there are none.
func and(cs ...cond) cond { return join(" AND ", sqlTrue, sqlFalse, cs) }

// join joins conditions with op, leaving out those equal to neutral; one
// equal to absorbing is the result.
func join(op, neutral, absorbing string, cs []cond) cond {
	var parts []string
	var args []any
	for _, c := range cs {
		switch c.sql {
		case neutral:
			continue
		case absorbing:
			return cond{sql: absorbing}
		}
		parts = append(parts, "("+c.sql+")")
		args = append(args, c.args...)
	}
	if len(parts) == 0 {
		return cond{sql: neutral}
	}
	return cond{"(" + strings.Join(parts, op) + ")", args}
}

// fieldExpr is how SQL reads one field of the objects: a column (id,
// last_modified) or a JSON field of data, in the dialect's way.
type fieldExpr struct {
	// present is the condition "the field exists".
	present string
	// compare is the condition "the field exists and Compare(field, v) op
	// 0" (op one of < <= = > >=); false when SQL cannot decide it exactly.
	compare func(op string, v any) (cond, bool)
	// match is the condition "the filter op=v matches the field", for the
	// operators compare does not cover; nil when SQL has none.
	match func(op query.Operator, v any) (cond, bool)
	// order are the ORDER BY terms of the field in query.Compare's order
	// (a missing field last, ascending).
	order func(desc bool) []string
	// in is the condition "the field is one of values"; nil: one
	// compare per value.
	in func(values []any) cond
	// composite is true when order cannot order arrays and objects.
	composite bool
	// missingLast is true when compare orders a missing field after every
	// value, as query.Compare does, and accepts missingValue{}: its
	// conditions are then Kinto's rules for missing fields already.
	// Otherwise compare is false on a missing field.
	missingLast bool
}

// missingValue stands for a missing field in fieldExpr.compare.
type missingValue struct{}

// missingKey is the key SQLite's kinto_key gives a missing field.
var missingKey = []byte{0xFF}

// field is the SQL of a field.
func (d *Dialect) field(name string) (fieldExpr, bool) {
	switch name {
	case query.IDField:
		return d.column("id"+d.CollateC, func(v any) (any, bool) { s, ok := v.(string); return s, ok }), true
	case query.ModifiedField:
		return d.column("last_modified", func(v any) (any, bool) { n, ok := v.(int64); return n, ok }), true
	case query.DeletedField:
		return fieldExpr{}, false // the tombstones' flag or the data's field
	}
	parts := strings.Split(name, ".")
	for _, part := range parts {
		if !safeName(part) {
			return fieldExpr{}, false
		}
	}
	switch d.JSON {
	case SQLiteJSON:
		return sqliteField(name, parts), true
	case PostgresJSON:
		return postgresField(name, parts), true
	}
	return fieldExpr{}, false
}

// safeName reports whether a field name's part can be spelt inside SQL
// literals as it is: the names clients use, letters, digits, _ and -.
func safeName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// column is a column every row has, compared exactly by SQL with values
// of the Go type native accepts.
func (d *Dialect) column(col string, native func(any) (any, bool)) fieldExpr {
	return fieldExpr{
		present: sqlTrue,
		compare: func(op string, v any) (cond, bool) {
			x, ok := native(v)
			if !ok {
				return cond{}, false
			}
			return cond{col + " " + op + " ?", []any{x}}, true
		},
		order: func(desc bool) []string {
			if desc {
				return []string{col + " DESC"}
			}
			return []string{col}
		},
	}
}

// JSONFlavor is how a dialect reads JSON fields.
type JSONFlavor int

const (
	// NoJSON evaluates filters and sorts on JSON fields in Go only.
	NoJSON JSONFlavor = iota
	// SQLiteJSON reads fields with `data -> path` and compares them by
	// their query.Key (kinto_key) or query.Match (kinto_match), functions
	// the SQLite backend registers: exact for every value and operator.
	SQLiteJSON
	// PostgresJSON reads fields with jsonb operators and compares them by
	// type rank, then as numeric, C-collated text or boolean: exact for
	// every scalar; arrays and objects are left to Go.
	PostgresJSON
)

// sqliteField reads a JSON field as its JSON text: the key named as the
// whole dotted name if there is one (query.Lookup), else the nested path.
func sqliteField(name string, parts []string) fieldExpr {
	val := `data -> '$."` + strings.Join(parts, `"."`) + `"'`
	if len(parts) > 1 {
		val = `COALESCE(data -> '$."` + name + `"', ` + val + `)`
	}
	key := "kinto_key(" + val + ")"
	// Strings and integers, nearly every value compared, are compared by
	// SQLite itself when both sides have that type (bytewise, as int64:
	// what query.Compare does), through their keys otherwise. Each JSON
	// lookup costs: the cheapest test goes first.
	path := sqlitePaths(name, parts)
	isText := "json_type(data, " + path + ") IS 'text'"
	return fieldExpr{
		present: val + " IS NOT NULL",
		compare: func(op string, v any) (cond, bool) {
			k := missingKey
			if _, missing := v.(missingValue); !missing {
				k = query.Key(nil, v)
			}
			byKey := cond{key + " " + op + " ?", []any{k}}
			switch x := v.(type) {
			case string:
				if op == "=" {
					// Only a string's text equals a string (an array's
					// JSON text could).
					return cond{"data ->> " + path + " IS ? AND " + isText, []any{x}}, true
				}
				return cond{"CASE WHEN " + isText + " THEN data ->> " + path + " " + op + " ? ELSE " + byKey.sql + " END", []any{x, k}}, true
			case json.Number:
				// A JSON integer reads as itself within int64; beyond, as
				// a float64 on the same side of every int64 but the
				// smallest.
				if n, err := strconv.ParseInt(string(x), 10, 64); err == nil && n != math.MinInt64 {
					return cond{"CASE WHEN json_type(data, " + path + ") IS 'integer' THEN data ->> " + path + " " + op + " ? ELSE " + byKey.sql + " END", []any{n, k}}, true
				}
			}
			return byKey, true
		},
		missingLast: true,
		in: func(values []any) cond {
			strs := make([]any, 0, len(values))
			for _, v := range values {
				if s, ok := v.(string); ok && len(values) <= maxParams {
					strs = append(strs, s)
				}
			}
			if len(strs) == len(values) {
				return cond{"data ->> " + path + " IN (" + strings.TrimSuffix(strings.Repeat("?, ", len(strs)), ", ") + ") AND " + isText, strs}
			}
			keys := make([][]byte, len(values))
			for i, v := range values {
				keys[i] = query.Key(nil, v)
			}
			if len(keys) > maxParams {
				hexes := make([]string, len(keys))
				for i, k := range keys {
					hexes[i] = hex.EncodeToString(k)
				}
				b, _ := json.Marshal(hexes)
				return cond{key + " IN (SELECT unhex(value) FROM json_each(?))", []any{string(b)}}
			}
			args := make([]any, len(keys))
			for i, k := range keys {
				args[i] = k
			}
			return cond{key + " IN (" + strings.TrimSuffix(strings.Repeat("?, ", len(keys)), ", ") + ")", args}
		},
		match: func(op query.Operator, v any) (cond, bool) {
			raw, err := json.Marshal(v)
			if err != nil {
				return cond{}, false
			}
			return cond{"kinto_match(" + val + ", ?, ?)", []any{string(op), string(raw)}}, true
		},
		order: func(desc bool) []string {
			if desc {
				return []string{key + " DESC"}
			}
			return []string{key}
		},
	}
}

// sqlitePaths is the SQL of a field's JSON path: the whole dotted name as
// one key when data has it, else the nested path (query.Lookup).
func sqlitePaths(name string, parts []string) string {
	nested := `'$."` + strings.Join(parts, `"."`) + `"'`
	if len(parts) == 1 {
		return nested
	}
	return `(CASE WHEN data -> '$."` + name + `"' IS NOT NULL THEN '$."` + name + `"' ELSE ` + nested + ` END)`
}

// postgresField reads a JSON field as jsonb.
func postgresField(name string, parts []string) fieldExpr {
	x := "(data #> '{" + strings.Join(parts, ",") + "}')"
	if len(parts) > 1 {
		x = "COALESCE(data -> '" + name + "', " + x[1:len(x)-1] + ")"
	}
	typ := "jsonb_typeof(" + x + ")"
	rank := "(CASE " + typ + " WHEN 'null' THEN 0 WHEN 'string' THEN 1 WHEN 'number' THEN 2 WHEN 'boolean' THEN 3 WHEN 'array' THEN 4 WHEN 'object' THEN 5 END)"
	num := "(CASE WHEN " + typ + " = 'number' THEN (" + x + ")::numeric END)"
	str := "(CASE WHEN " + typ + " = 'string' THEN " + x + ` #>> '{}' END) COLLATE "C"`
	boolean := "(CASE WHEN " + typ + " = 'boolean' THEN (" + x + ")::boolean END)"
	compare := func(op string, v any) (cond, bool) {
		var col string
		var arg any
		r := -1
		switch y := v.(type) {
		case nil:
			r = 0
		case string:
			r, col, arg = 1, str, y
		case json.Number:
			if !query.FitsNumeric(y) {
				return cond{}, false // beyond what numeric reads: Go compares it
			}
			r, col, arg = 2, num, string(y)
		case int64:
			r, col, arg = 2, num, strconv.FormatInt(y, 10)
		case bool:
			r, col, arg = 3, boolean, y
		default:
			return cond{}, false // arrays and objects: Go compares them
		}
		rs := strconv.Itoa(r)
		strict := strings.TrimSuffix(op, "=")
		if op == "=" {
			strict = ""
		}
		// Same type: compare the values (null equals null); other types:
		// by rank.
		same := cond{sql: sqlTrue}
		if col != "" {
			ph := "?"
			if r == 2 {
				ph = "?::numeric"
			}
			same = cond{col + " " + op + " " + ph, []any{arg}}
		} else if strict != "" && op != "<=" && op != ">=" {
			same = cond{sql: sqlFalse} // null < null, null > null
		}
		c := and(cond{sql: rank + " = " + rs}, same)
		if strict != "" {
			c = or(cond{sql: rank + " " + strict + " " + rs}, c)
		}
		return and(cond{sql: x + " IS NOT NULL"}, c), true
	}
	return fieldExpr{
		present: x + " IS NOT NULL",
		compare: compare,
		match: func(op query.Operator, v any) (cond, bool) {
			if op != query.CONTAINS && op != query.CONTAINSANY {
				return cond{}, false // like_ folds case as Go does: left to Go
			}
			wanted, ok := v.([]any)
			if !ok {
				return cond{}, false
			}
			var each []cond
			for _, w := range wanted {
				switch w.(type) {
				case []any, map[string]any:
					return cond{}, false // containment of composites differs
				}
				raw, err := json.Marshal([]any{w})
				if err != nil {
					return cond{}, false
				}
				each = append(each, cond{x + " @> ?::jsonb", []any{string(raw)}})
			}
			isArray := cond{sql: typ + " = 'array'"}
			if op == query.CONTAINS {
				return and(append([]cond{isArray}, each...)...), true
			}
			return and(isArray, or(each...)), true
		},
		order: func(desc bool) []string {
			dir := ""
			if desc {
				dir = " DESC"
			}
			return []string{"(" + x + " IS NULL)" + dir, rank + dir, num + dir, str + dir, boolean + dir}
		},
		composite: true,
	}
}

// comparisons are the SQL operators of the filter operators that compare
// one value.
var comparisons = map[query.Operator]string{
	query.EQ: "=", query.LT: "<", query.GT: ">", query.MAX: "<=", query.MIN: ">=",
}

// filter adds the condition of f when SQL evaluates it exactly as
// query.Match does, and reports whether it did (a filter it cannot
// express is left to Go).
func (p *plan) filter(d *Dialect, f query.Filter) bool {
	c, ok := d.filterCond(f)
	if ok {
		p.add(c.sql, c.args...)
	}
	return ok
}

// filterCond is query.Match's rule for one filter in SQL, with Kinto's
// rules for missing fields: not_, exclude_, gt_ and min_ match them; the
// others don't.
func (d *Dialect) filterCond(f query.Filter) (cond, bool) {
	fe, ok := d.field(f.Field)
	if !ok {
		return cond{}, false
	}
	missing := cond{sql: fe.present}.not()
	if fe.missingLast {
		missing = cond{sql: sqlFalse} // the comparisons say it all
	}
	if op, ok := comparisons[f.Op]; ok {
		c, ok := fe.compare(op, f.Value)
		if !ok {
			return cond{}, false
		}
		if f.Op == query.GT || f.Op == query.MIN {
			return or(missing, c), true
		}
		return c, true
	}
	switch f.Op {
	case query.NEQ:
		c, ok := fe.compare("=", f.Value)
		return or(missing, c.not()), ok
	case query.HAS:
		want, isBool := f.Value.(bool)
		switch {
		case !isBool:
			return cond{sql: sqlFalse}, true
		case want:
			return cond{sql: fe.present}, true
		}
		return cond{sql: fe.present}.not(), true
	case query.IN, query.EXCLUDE:
		values, ok := f.Value.([]any)
		if !ok {
			if f.Op == query.EXCLUDE {
				return cond{sql: sqlTrue}, true // a list filter without a list
			}
			return cond{sql: sqlFalse}, true
		}
		c, ok := d.inValues(f.Field, fe, values)
		if !ok {
			return cond{}, false
		}
		if f.Op == query.EXCLUDE {
			return or(missing, c.not()), true
		}
		return c, true
	}
	if fe.match == nil {
		return cond{}, false
	}
	return fe.match(f.Op, f.Value)
}

// inValues is the condition "the field is one of values".
func (d *Dialect) inValues(field string, fe fieldExpr, values []any) (cond, bool) {
	if field == query.IDField {
		ids := make([]string, len(values))
		for i, v := range values {
			s, ok := v.(string)
			if !ok {
				return cond{}, false
			}
			ids[i] = s
		}
		c, args := d.inList("id", ids, false)
		return cond{c, args}, true
	}
	if fe.in != nil {
		return fe.in(values), true
	}
	var each []cond
	for _, v := range values {
		c, ok := fe.compare("=", v)
		if !ok {
			return cond{}, false
		}
		each = append(each, c)
	}
	return or(each...), true
}

// keyset adds the condition "after the last object of the previous page"
// in the order of sorts (Kinto's pagination: by the sort keys only).
func (p *plan) keyset(d *Dialect, sorts []query.Sort, after map[string]any) bool {
	var ors, eqs []cond
	for _, so := range sorts {
		fe, ok := d.field(so.Field)
		if !ok {
			return false
		}
		v, present := after[so.Field]
		var gt, eq cond
		missing := cond{sql: fe.present}.not()
		if fe.missingLast {
			missing = cond{sql: sqlFalse}
			if !present {
				v, present = missingValue{}, true
			}
		}
		switch {
		case !present && !so.Desc:
			gt, eq = cond{sql: sqlFalse}, missing // nothing sorts after a missing value
		case !present:
			gt, eq = cond{sql: fe.present}, missing
		default:
			op := ">"
			if so.Desc {
				op = "<"
			}
			var ok1, ok2 bool
			gt, ok1 = fe.compare(op, v)
			eq, ok2 = fe.compare("=", v)
			if !ok1 || !ok2 {
				return false
			}
			if !so.Desc {
				gt = or(missing, gt) // a missing value sorts after every present one
			}
		}
		ors = append(ors, and(append(append([]cond{}, eqs...), gt)...))
		eqs = append(eqs, eq)
	}
	if len(ors) == 0 {
		return false
	}
	c := or(ors...)
	p.add(c.sql, c.args...)
	return true
}

// maxParams is how many values a list spells out as parameters; longer
// lists go as one JSON array (SQLite limits the parameters of a
// statement).
const maxParams = 500

// inList is the condition "column is (not) one of values".
func (d *Dialect) inList(column string, values []string, not bool) (string, []any) {
	if len(values) == 0 {
		if not {
			return sqlTrue, nil
		}
		return sqlFalse, nil
	}
	neg := ""
	if not {
		neg = "NOT "
	}
	switch {
	case d.Arrays && not:
		return "NOT (" + column + " = ANY(?))", []any{values}
	case d.Arrays:
		return column + " = ANY(?)", []any{values}
	case len(values) > maxParams:
		b, _ := json.Marshal(values)
		return column + " " + neg + "IN (SELECT value FROM json_each(?))", []any{string(b)}
	}
	args := make([]any, len(values))
	for i, v := range values {
		args[i] = v
	}
	return column + " " + neg + "IN (" + strings.TrimSuffix(strings.Repeat("?, ", len(values)), ", ") + ")", args
}

// sql is the plan's statement, selecting cols (in the plan's order, when
// ordered and exact).
func (p plan) sql(cols string, ordered bool) string {
	q := "SELECT " + cols + " FROM objects WHERE " + strings.Join(p.where, " AND ")
	if ordered && p.exact && p.order != "" {
		q += " ORDER BY " + p.order
		if p.limit > 0 {
			q += " LIMIT " + strconv.Itoa(p.limit)
		}
	}
	return q
}
