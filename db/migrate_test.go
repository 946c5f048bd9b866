package db_test

import (
	"context"
	"io"
	"io/fs"
	"strings"
	"sync"
	"testing"

	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/db/dbtest"
	"github.com/spillway/spillway/migrations"
)

// TestMigrateUpTogetherDownAndUpAgain starts from an empty database: two
// instances migrate at once (goose's session lock makes them take turns),
// then the whole history goes down to nothing and back up.
func TestMigrateUpTogetherDownAndUpAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.NewEmpty(t)
	pool, err := db.Open(ctx, db.PoolConfig{URL: url, MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := db.NewMigrator(pool)
			if err != nil {
				errs[i] = err
				return
			}
			defer m.Close()
			errs[i] = m.Up(ctx, io.Discard)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("concurrent up: %v", err)
		}
	}

	m, err := db.NewMigrator(pool)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var status strings.Builder
	if err := m.Status(ctx, &status); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(status.String(), "pending") || !strings.Contains(status.String(), "00009_operations.sql") {
		t.Fatalf("status after up:\n%s", status.String())
	}
	var riverVersion int
	if err := pool.QueryRow(ctx, `SELECT max(version) FROM river_migration`).Scan(&riverVersion); err != nil || riverVersion != 8 {
		t.Fatalf("river version %d (%v), want 8", riverVersion, err)
	}

	sqlFiles, _ := fs.Glob(migrations.SQL, "*.sql")
	for range migrations.RiverVersion + len(sqlFiles) {
		if err := m.Down(ctx, io.Discard); err != nil {
			t.Fatal(err)
		}
	}
	var tables int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'goose_db_version'`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Fatalf("%d tables left after migrating all the way down", tables)
	}
	if err := m.Up(ctx, io.Discard); err != nil {
		t.Fatalf("up again: %v", err)
	}
}
