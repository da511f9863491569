package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"kintogo/internal/kerr"
	"kintogo/internal/storage"
)

func TestRebind(t *testing.T) {
	numbered := &Dialect{NumberedParams: true}
	for _, c := range []struct{ in, want string }{
		{`SELECT 1`, `SELECT 1`},
		{`a = ? AND b IN (?, ?)`, `a = $1 AND b IN ($2, $3)`},
		{`x LIKE ? ESCAPE '\' AND y = ?`, `x LIKE $1 ESCAPE '\' AND y = $2`},
		{`data = ?::jsonb`, `data = $1::jsonb`},
		{`t = 'what?' AND u = ?`, `t = 'what?' AND u = $1`},
		{`t = 'it''s?' AND u = ?`, `t = 'it''s?' AND u = $1`},
	} {
		if got := numbered.rebind(c.in); got != c.want {
			t.Errorf("rebind(%q) = %q, want %q", c.in, got, c.want)
		}
		if got := (&Dialect{}).rebind(c.in); got != c.in {
			t.Errorf("? dialect rewrote %q into %q", c.in, got)
		}
	}
}

func TestLikePrefix(t *testing.T) {
	for in, want := range map[string]string{
		"/buckets/b/":  "/buckets/b/%",
		"/a_b/":        `/a\_b/%`,
		"100%/":        `100\%/%`,
		`back\slash/`:  `back\\slash/%`,
		"":             "%",
		`_%\`:          `\_\%\\%`,
		"/x/*suffix/ ": "/x/*suffix/ %",
	} {
		if got := likePrefix(in); got != want {
			t.Errorf("likePrefix(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWrap(t *testing.T) {
	conflict := errors.New("deadlock")
	d := &Dialect{Retryable: func(err error) bool { return errors.Is(err, conflict) }}
	if d.Wrap(nil) != nil {
		t.Error("nil wrapped")
	}
	if err := d.Wrap(conflict); !storage.IsRetryable(err) {
		t.Errorf("retryable error: %v", err)
	}
	notFound := kerr.ObjectNotFound("record", "r")
	if err := d.Wrap(notFound); err != notFound {
		t.Errorf("kerr error changed: %v", err)
	}
	if err := d.Wrap(fmt.Errorf("scan: %w", context.DeadlineExceeded)); !kerr.Is(err, kerr.Unavailable) || !strings.Contains(err.Error(), "canceled") {
		t.Errorf("ended context: %v", err)
	}
	if err := (&Dialect{}).Wrap(errors.New("disk full")); !kerr.Is(err, kerr.Unavailable) || storage.IsRetryable(err) {
		t.Errorf("driver error: %v", err)
	}
}

// testDB is a new SQLite database, with one connection so that every
// statement sees the same transaction state.
func testDB(t *testing.T) (*sql.DB, DB) {
	t.Helper()
	raw, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	raw.SetMaxOpenConns(1)
	t.Cleanup(func() {
		if err := raw.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return raw, StdDB(raw)
}

var sqliteDialect = &Dialect{
	LikeEscape:  ` ESCAPE '\'`,
	Greatest:    "MAX",
	JSONColumn:  "data",
	JSONParam:   "?",
	TableExists: `SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?`,
}

// create is a migration creating one table; run twice it fails.
func create(table string) Migration {
	return Migration{Name: "create " + table, Up: func(ctx context.Context, tx Querier) error {
		return Exec(ctx, tx, `CREATE TABLE `+table+` (x TEXT)`)
	}}
}

func tableExists(t *testing.T, db DB, table string) bool {
	t.Helper()
	var exists bool
	if err := db.QueryRow(context.Background(), sqliteDialect.TableExists, table).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	return exists
}

func TestSchemaUpgrade(t *testing.T) {
	ctx := context.Background()
	_, db := testDB(t)
	steps := []Migration{
		{Name: "metadata", Up: func(ctx context.Context, tx Querier) error {
			return Exec(ctx, tx, `CREATE TABLE metadata (name TEXT PRIMARY KEY, value TEXT NOT NULL)`)
		}},
		create("two"),
	}
	schema := func(n int) *Schema { return &Schema{Dialect: sqliteDialect, VersionKey: "v", Migrations: steps[:n]} }
	version := func() int {
		t.Helper()
		v, err := schema(0).Version(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	// An empty database is outdated, unless empty ones are initialised.
	if err := schema(2).Upgrade(ctx, db, UpgradeOptions{}); !errors.Is(err, ErrOutdated) {
		t.Fatalf("empty database without migrating: %v, want ErrOutdated", err)
	}
	if tableExists(t, db, "metadata") {
		t.Fatal("a refused upgrade created tables")
	}
	if err := schema(1).Upgrade(ctx, db, UpgradeOptions{InitEmpty: true}); err != nil {
		t.Fatalf("initialising: %v", err)
	}
	if v := version(); v != 1 {
		t.Fatalf("version %d after initialising, want 1", v)
	}

	// An outdated database is refused unless migrating, InitEmpty or not;
	// migrating runs only the missing steps (running the first again
	// would fail), under the exclusive lock when there is one.
	if err := schema(2).Upgrade(ctx, db, UpgradeOptions{InitEmpty: true}); !errors.Is(err, ErrOutdated) {
		t.Fatalf("outdated database without migrating: %v, want ErrOutdated", err)
	}
	locked := 0
	exclusive := func(ctx context.Context, fn func(DB) error) error { locked++; return fn(db) }
	if err := schema(2).Upgrade(ctx, db, UpgradeOptions{Migrate: true, Exclusive: exclusive}); err != nil {
		t.Fatalf("migrating: %v", err)
	}
	if v := version(); v != 2 || locked != 1 || !tableExists(t, db, "two") {
		t.Fatalf("after migrating: version %d, locked %d times, table two %v", v, locked, tableExists(t, db, "two"))
	}
	if err := schema(2).Upgrade(ctx, db, UpgradeOptions{Exclusive: exclusive}); err != nil || locked != 1 {
		t.Fatalf("up-to-date database: %v, locked %d times, want once", err, locked)
	}

	// A newer database is refused, migrating or not.
	for _, migrate := range []bool{false, true} {
		if err := schema(1).Upgrade(ctx, db, UpgradeOptions{Migrate: migrate}); err == nil || !strings.Contains(err.Error(), "newer") {
			t.Errorf("newer database, migrate=%v: %v", migrate, err)
		}
	}

	// A failing step is undone whole and leaves the previous version.
	steps = append(steps, Migration{Name: "half done", Up: func(ctx context.Context, tx Querier) error {
		if err := Exec(ctx, tx, `CREATE TABLE three (x TEXT)`); err != nil {
			return err
		}
		return errors.New("boom")
	}})
	err := schema(3).Upgrade(ctx, db, UpgradeOptions{Migrate: true})
	if err == nil || !strings.Contains(err.Error(), "migration 3 (half done)") || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("failing step: %v", err)
	}
	if v := version(); v != 2 || tableExists(t, db, "three") {
		t.Fatalf("after a failing step: version %d, table three %v", v, tableExists(t, db, "three"))
	}
}
