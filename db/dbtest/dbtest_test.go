package dbtest_test

import (
	"context"
	"testing"

	"github.com/spillway/spillway/db/dbtest"
)

func TestNewIsMigratedAndIsolated(t *testing.T) {
	t.Parallel()
	a, b := dbtest.New(t), dbtest.New(t)
	ctx := context.Background()
	for _, q := range []string{"SELECT count(*) FROM operations", "SELECT count(*) FROM river_job"} {
		var n int
		if err := a.QueryRow(ctx, q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var da, db string
	_ = a.QueryRow(ctx, "SELECT current_database()").Scan(&da)
	_ = b.QueryRow(ctx, "SELECT current_database()").Scan(&db)
	if da == db {
		t.Fatalf("two calls share database %s", da)
	}
	var river int
	if err := a.QueryRow(ctx, "SELECT max(version) FROM river_migration").Scan(&river); err != nil || river != 8 {
		t.Fatalf("river migration version = %d, %v; want 8", river, err)
	}
}
