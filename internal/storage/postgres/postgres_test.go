package postgres_test

import (
	"context"
	"os"
	"testing"

	"kintogo/internal/storage"
	"kintogo/internal/storage/postgres"
	"kintogo/internal/storage/storagetest"
)

// dsn is the test database; tests skip without it (CI sets it).
func dsn(t *testing.T) string {
	d := os.Getenv("KINTOGO_TEST_POSTGRES")
	if d == "" {
		t.Skip("KINTOGO_TEST_POSTGRES is not set: no PostgreSQL to test against")
	}
	return d
}

// Open returns a store on an emptied test database.
func Open(t *testing.T) storage.Storage {
	ctx := context.Background()
	s, err := postgres.Open(ctx, dsn(t), postgres.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(tx storage.Tx) error { return tx.Flush(ctx) }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, Open)
}
