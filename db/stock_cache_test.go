package db_test

import (
	"context"
	"testing"
	"time"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/db/dbtest"
)

// A refresh claim is held by one token until it is released or lapses,
// and a claim row alone is no cached value.
func TestStockRefreshClaimIsOneAtATimeAndLapses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	t0 := app.StorageTime(time.Now())
	steps := []struct {
		name  string
		token string
		now   time.Duration
		want  bool
	}{
		{"first claims", "a", 0, true},
		{"second waits while held", "b", time.Second, false},
		{"second claims once lapsed", "b", time.Minute, true},
	}
	for _, s := range steps {
		got, err := db.ClaimStockRefresh(ctx, pool, "sku-tea", s.token, t0.Add(s.now), t0.Add(s.now+10*time.Second))
		if err != nil || got != s.want {
			t.Fatalf("%s: claim = %v, %v; want %v", s.name, got, err, s.want)
		}
	}
	// a's release is no longer a's to give: b keeps the claim.
	if err := db.ReleaseStockRefresh(ctx, pool, "sku-tea", "a"); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.ClaimStockRefresh(ctx, pool, "sku-tea", "c", t0.Add(time.Minute), t0.Add(2*time.Minute)); got {
		t.Fatal("a released b's claim")
	}
	if err := db.ReleaseStockRefresh(ctx, pool, "sku-tea", "b"); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.ClaimStockRefresh(ctx, pool, "sku-tea", "c", t0.Add(time.Minute), t0.Add(2*time.Minute)); !got {
		t.Fatal("a released claim could not be taken")
	}
	if cached, err := db.GetCachedStock(ctx, pool, []string{"sku-tea"}); err != nil || len(cached) != 0 {
		t.Fatalf("cached = %v, %v; a claim is no value", cached, err)
	}
}

// Two instances' live reads may be stored out of order: the newer stays.
func TestCachedStockKeepsTheNewerValue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	t0 := app.StorageTime(time.Now())
	for _, v := range []app.CachedStock{
		{SKU: "sku-mug", Available: 5, AsOf: t0},
		{SKU: "sku-mug", Available: 9, AsOf: t0.Add(-time.Second)},
	} {
		if err := db.PutCachedStock(ctx, pool, []app.CachedStock{v}); err != nil {
			t.Fatal(err)
		}
	}
	cached, err := db.GetCachedStock(ctx, pool, []string{"sku-mug", "sku-tea"})
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := cached["sku-mug"]; !ok || c.Available != 5 || !c.AsOf.Equal(t0) || len(cached) != 1 {
		t.Fatalf("cached = %v; want only sku-mug 5 as of %s", cached, t0)
	}
}
