package sqlstore

import (
	"encoding/json"
	"strconv"
	"strings"

	"kintogo/internal/query"
	"kintogo/internal/storage"
)

// plan is a list's selection as SQL. When exact is true the statement
// selects exactly the page (filters, order, keyset pagination and limit
// all in SQL, answered by the index on (parent_id, resource_name,
// last_modified) for the timestamp orders): rows are decoded only when
// returned. Otherwise the statement only narrows the rows read, and
// storage.Select applies the whole selection in Go, as the memory backend
// does: every backend answers identically.
type plan struct {
	where []string
	args  []any
	order string
	limit int
	exact bool
}

// compileList plans the list of a scope.
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
	order := storage.Order(opts.Sort)
	keys := make([]string, 0, len(order))
	for _, so := range order {
		col, ok := d.column(so.Field)
		if !ok {
			p.exact = false
			return p
		}
		if so.Desc {
			col += " DESC"
		}
		keys = append(keys, col)
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
	p.where = append(p.where, cond)
	p.args = append(p.args, args...)
}

// column is the SQL column of the fields SQL orders exactly as Go does:
// id (bytewise) and last_modified.
func (d *Dialect) column(field string) (string, bool) {
	switch field {
	case query.IDField:
		return "id" + d.CollateC, true
	case query.ModifiedField:
		return "last_modified", true
	}
	return "", false
}

// comparisons are the SQL operators of the filter operators that compare
// one value.
var comparisons = map[query.Operator]string{
	query.EQ: "=", query.NEQ: "<>", query.LT: "<", query.GT: ">", query.MAX: "<=", query.MIN: ">=",
}

// filter adds the condition of f when SQL evaluates it exactly as
// query.Match does (on id and last_modified, which every object and
// tombstone has), and reports whether it did. A filter it cannot express
// exactly may still narrow the rows read, when that removes only rows Go
// would remove too.
func (p *plan) filter(d *Dialect, f query.Filter) bool {
	col, ok := d.column(f.Field)
	if !ok {
		return false
	}
	if op, ok := comparisons[f.Op]; ok {
		switch v := f.Value.(type) {
		case int64:
			if f.Field == query.ModifiedField {
				p.add(col+" "+op+" ?", v)
				return true
			}
		case string:
			if f.Field == query.IDField {
				p.add(col+" "+op+" ?", v)
				return true
			}
		}
		return false
	}
	if f.Op == query.IN || f.Op == query.EXCLUDE {
		values, ok := f.Value.([]any)
		if !ok || f.Field != query.IDField || len(values) == 0 {
			return false
		}
		ids := make([]string, len(values))
		for i, v := range values {
			if ids[i], ok = v.(string); !ok {
				return false
			}
		}
		cond, args := d.inList("id", ids, f.Op == query.EXCLUDE)
		p.add(cond, args...)
		return true
	}
	return false
}

// keyset adds the condition "after the last object of the previous page"
// in the order of sorts, when every sort key's value is known with its
// type (as Go's comparison would see it).
func (p *plan) keyset(d *Dialect, sorts []query.Sort, after map[string]any) bool {
	var ors []string
	var args []any
	var eqs []string
	var eqArgs []any
	for _, so := range sorts {
		col, _ := d.column(so.Field)
		v, ok := after[so.Field]
		switch v.(type) {
		case int64:
			ok = ok && so.Field == query.ModifiedField
		case string:
			ok = ok && so.Field == query.IDField
		default:
			ok = false
		}
		if !ok {
			return false
		}
		op := " > ?"
		if so.Desc {
			op = " < ?"
		}
		ors = append(ors, "("+strings.Join(append(append([]string{}, eqs...), col+op), " AND ")+")")
		args = append(append(args, eqArgs...), v)
		eqs = append(eqs, col+" = ?")
		eqArgs = append(eqArgs, v)
	}
	if len(ors) == 0 {
		return false
	}
	p.add("("+strings.Join(ors, " OR ")+")", args...)
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
			return "1 = 1", nil
		}
		return "1 = 0", nil
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
