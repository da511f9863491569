package sqlite

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"testing"

	"kintogo/internal/query"
	"kintogo/internal/storage"
)

// BenchmarkFilteredPage is sidebyside's big-filtered-random at the storage:
// a page of a 10,000-record collection filtered and sorted on data fields,
// a different query each time.
func BenchmarkFilteredPage(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(b.TempDir(), "bench.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	scope := storage.Scope{Parent: "/buckets/main/collections/big", Resource: "record"}
	if err := s.Update(ctx, func(tx storage.Tx) error {
		for k := 0; k < 10000; k++ {
			data := map[string]any{"n": json.Number(strconv.Itoa(k)), "tag": []string{"red", "green", "blue"}[k%3], "title": "record " + strconv.Itoa(k)}
			if _, err := tx.Put(ctx, scope, &storage.Object{ID: strconv.Itoa(k), Data: data}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		opts := storage.ListOptions{
			Filters: query.Compile([]query.Filter{
				{Field: "tag", Op: query.EQ, Value: "green"},
				{Field: "n", Op: query.MIN, Value: json.Number(strconv.Itoa(rng.IntN(9000)))},
			}),
			Sort:  []query.Sort{{Field: "n", Desc: true}},
			Limit: 21,
		}
		if err := s.View(ctx, func(tx storage.Tx) error {
			objs, err := tx.List(ctx, scope, opts)
			if err == nil && len(objs) != 21 {
				b.Fatalf("%d objects", len(objs))
			}
			return err
		}); err != nil {
			b.Fatal(err)
		}
	}
}
