package query

import (
	"bytes"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Limits on the size of one list query. Filters are evaluated in memory,
// object by object, so whatever a query asks for is paid again on every
// object of the collection: these bound the work a single request can cause.
// Parse refuses a query over any of them with a 400 naming the parameter.
const (
	// MaxPatternBytes is the longest `like_` pattern accepted, in bytes (of
	// the pattern as decoded, `*` wildcards included).
	MaxPatternBytes = 1024
	// MaxListValues is the most values accepted in one `in_`, `exclude_`,
	// `contains_` or `contains_any_` filter.
	MaxListValues = 10000
	// MaxFilters is the most filters accepted in one query; `_since`,
	// `_before` and `_to` count as filters.
	MaxFilters = 100
	// MaxSortFields is the most fields accepted in one `_sort`.
	MaxSortFields = 100
	// MaxFields is the most entries accepted in one `_fields`.
	MaxFields = 100
)

// matcher is the per-query work of a filter done once, by Parse or Compile,
// instead of once per object: the compiled `like_` pattern, or the set of an
// `in_`/`exclude_`/`contains_`/`contains_any_` list.
//
// It remembers the Value it was built from, so that a caller who assigns a
// new Op or Value to a parsed Filter gets matching on the new one (through
// the uncompiled path) rather than on a stale matcher.
type matcher struct {
	op      Operator
	pattern string // LIKE: the Value compiled
	like    *likeMatcher
	list    []any // list operators: the Value compiled (compared by identity)
	set     *valueSet
}

// fits reports whether m was built from f's current Op and Value.
func (m *matcher) fits(f *Filter) bool {
	if m == nil || m.op != f.Op {
		return false
	}
	if f.Op == LIKE {
		s, ok := f.Value.(string)
		return ok && s == m.pattern
	}
	l, ok := f.Value.([]any)
	if !ok || len(l) != len(m.list) {
		return false
	}
	// Identity, not contents: comparing contents would cost what the set
	// saves. A slice modified in place after Parse is not supported.
	return len(l) == 0 || &l[0] == &m.list[0]
}

// compile prepares f's matcher, if its operator has per-query work.
func (f *Filter) compile() {
	if f.compiled.fits(f) {
		return
	}
	f.compiled = nil
	switch f.Op {
	case LIKE:
		if s, ok := f.Value.(string); ok {
			f.compiled = &matcher{op: f.Op, pattern: s, like: compileLike(s)}
		}
	case IN, EXCLUDE, CONTAINS, CONTAINSANY:
		if l, ok := f.Value.([]any); ok {
			f.compiled = &matcher{op: f.Op, list: l, set: newValueSet(l)}
		}
	}
}

// Compile returns a copy of filters with their per-query work done, so that
// Match on each object of a collection does not redo it. Parse already
// compiles the filters it returns; Compile is for filters built by hand
// (Filter{Field, Op, Value}), which Match otherwise evaluates the
// straightforward way: a linear scan of list values, and a `like_` pattern
// taken from a small process-wide cache. Filters already compiled are kept
// as they are, so calling Compile on parsed filters is cheap.
func Compile(filters []Filter) []Filter {
	if filters == nil {
		return nil
	}
	out := make([]Filter, len(filters))
	copy(out, filters)
	for i := range out {
		out[i].compile()
	}
	return out
}

// likeMatcher is a compiled `like_` pattern. `*` is the only wildcard, so a
// pattern is literal segments: the first anchored at the start, the last at
// the end, and the middle ones found leftmost, in order, in between. That
// greedy search is exact for `*`-only patterns and linear in the text,
// where the regexp it replaces (one `.*` per star) could cost the pattern's
// length times the text's.
//
// Case-insensitivity is the regexp `(?i)` rule: two runes match when they
// are in the same unicode.SimpleFold orbit. Segments and texts are folded to
// the smallest rune of each orbit, then compared byte for byte.
type likeMatcher struct {
	prefix, suffix []byte
	middle         [][]byte
	min            int // shortest folded text that can match
}

func compileLike(pattern string) *likeMatcher {
	// Kinto: a value without `*` matches anywhere, as `*value*`.
	if !strings.Contains(pattern, "*") {
		pattern = "*" + pattern + "*"
	}
	parts := strings.Split(pattern, "*") // at least two: there is a `*`
	m := &likeMatcher{
		prefix: foldCase(nil, parts[0]),
		suffix: foldCase(nil, parts[len(parts)-1]),
	}
	m.min = len(m.prefix) + len(m.suffix)
	for _, p := range parts[1 : len(parts)-1] {
		if p != "" {
			seg := foldCase(nil, p)
			m.middle = append(m.middle, seg)
			m.min += len(seg)
		}
	}
	return m
}

// match reports whether text matches the pattern.
func (m *likeMatcher) match(text string) bool {
	// Most texts are short: fold them on the stack.
	var buf [256]byte
	t := foldCase(buf[:0], text)
	if len(t) < m.min || !bytes.HasPrefix(t, m.prefix) {
		return false
	}
	t = t[len(m.prefix):]
	if !bytes.HasSuffix(t, m.suffix) {
		return false
	}
	t = t[:len(t)-len(m.suffix)]
	for _, seg := range m.middle {
		i := bytes.Index(t, seg)
		if i < 0 {
			return false
		}
		t = t[i+len(seg):]
	}
	return true
}

// foldCase appends s to dst with every rune replaced by the smallest rune of
// its case-folding orbit. Invalid UTF-8 bytes become U+FFFD, one each, as
// the regexp package reads them. The result is valid UTF-8, so a byte match
// between folded strings is always a match of whole runes.
func foldCase(dst []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			// The orbits of ASCII letters are {A, a}, {K, k, U+212A} and
			// {S, s, U+017F}: the smallest is always the upper case.
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		dst = utf8.AppendRune(dst, minFold(r))
		i += size
	}
	return dst
}

// minFold is the smallest rune of r's unicode.SimpleFold orbit.
func minFold(r rune) rune {
	m := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f < m {
			m = f
		}
	}
	return m
}

// likeCache holds matchers for LIKE filters that were not compiled (built by
// hand and not passed through Compile): Match then finds the pattern here
// instead of compiling it for every object. Small and reset when full: it
// only serves such internal filters, whose patterns are few.
var likeCache struct {
	sync.Mutex
	m map[string]*likeMatcher
}

const likeCacheSize = 64

func cachedLike(pattern string) *likeMatcher {
	likeCache.Lock()
	defer likeCache.Unlock()
	if m, ok := likeCache.m[pattern]; ok {
		return m
	}
	if likeCache.m == nil || len(likeCache.m) >= likeCacheSize {
		likeCache.m = make(map[string]*likeMatcher, likeCacheSize)
	}
	m := compileLike(pattern)
	likeCache.m[pattern] = m
	return m
}

// valueSet holds the values of a list filter under their keys (Key, equal
// exactly when the values are Equal): membership is a map lookup instead
// of an Equal per value. Each distinct value is a class (numbered from 0)
// so that `contains_` can check that every wanted value is found.
type valueSet struct {
	classes int
	keys    map[string]int
}

func newValueSet(values []any) *valueSet {
	s := &valueSet{keys: make(map[string]int, len(values))}
	var buf []byte
	for _, v := range values {
		buf = Key(buf[:0], v)
		if _, ok := s.keys[string(buf)]; !ok {
			s.keys[string(buf)] = s.classes
			s.classes++
		}
	}
	return s
}

// class returns the class of the set's value Equal to v, if any.
func (s *valueSet) class(v any) (int, bool) {
	var small [64]byte
	c, ok := s.keys[string(Key(small[:0], v))]
	return c, ok
}

// has reports whether v is Equal to a value of the set.
func (s *valueSet) has(v any) bool {
	_, ok := s.class(v)
	return ok
}

// containsAll reports whether every value of the set is Equal to an element
// of arr, reading arr once.
func (s *valueSet) containsAll(arr []any) bool {
	if s.classes == 0 {
		return true
	}
	var small [4]uint64
	seen := small[:]
	if words := (s.classes + 63) / 64; words > len(small) {
		seen = make([]uint64, words)
	}
	missing := s.classes
	for _, x := range arr {
		if c, ok := s.class(x); ok && seen[c/64]&(1<<(c%64)) == 0 {
			seen[c/64] |= 1 << (c % 64)
			if missing--; missing == 0 {
				return true
			}
		}
	}
	return false
}

// containsAny reports whether an element of arr is Equal to a value of the
// set.
func (s *valueSet) containsAny(arr []any) bool {
	for _, x := range arr {
		if s.has(x) {
			return true
		}
	}
	return false
}
