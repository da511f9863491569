package query

import (
	"fmt"
	"math/rand"
	"strconv"
	"strings"
	"testing"
)

// benchObjects builds n records with a title string and a field k that is
// a number or a string, about half of them matching the benchmarks' lists.
func benchObjects(n int) []obj {
	r := rand.New(rand.NewSource(1))
	objs := make([]obj, n)
	for i := range objs {
		var b strings.Builder
		for b.Len() < 100 {
			b.WriteByte(byte('a' + r.Intn(3)))
		}
		k := r.Intn(2 * MaxListValues)
		var kv any = "s" + strconv.Itoa(k)
		if k%2 == 0 {
			kv = num(strconv.Itoa(k))
		}
		objs[i] = obj{"title": b.String(), "k": kv}
	}
	return objs
}

func benchParse(b *testing.B, name, value string) []Filter {
	q, err := Parse([]Param{{Name: name, Value: value}}, Schema{}, 0)
	if err != nil {
		b.Fatal(err)
	}
	return q.Filters
}

// BenchmarkMatchLike is a 1 KiB like_ pattern (the largest accepted)
// against 10,000 records: one op is one full collection scan.
func BenchmarkMatchLike(b *testing.B) {
	pattern := strings.Repeat("ab*", 341) + "a"
	if len(pattern) != 1024 {
		b.Fatalf("pattern is %d bytes", len(pattern))
	}
	objs := benchObjects(10000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		filters := benchParse(b, "like_title", pattern)
		n := 0
		for _, o := range objs {
			if Match(o, filters) {
				n++
			}
		}
		_ = n
	}
}

// BenchmarkMatchIn is an in_ list of 10,000 values (the largest accepted)
// against 10,000 records: one op is parsing the query and one full scan.
func BenchmarkMatchIn(b *testing.B) {
	values := make([]string, MaxListValues)
	for i := range values {
		if i%2 == 0 {
			values[i] = fmt.Sprint(i)
		} else {
			values[i] = "s" + strconv.Itoa(i)
		}
	}
	raw := strings.Join(values, ",")
	objs := benchObjects(10000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		filters := benchParse(b, "in_k", raw)
		n := 0
		for _, o := range objs {
			if Match(o, filters) {
				n++
			}
		}
		_ = n
	}
}
