package app_test

import (
	"context"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/apptest"
	"github.com/spillway/spillway/app/provider"
	"github.com/spillway/spillway/app/sim"
	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/db/dbtest"
)

func TestCacheStatusPerSource(t *testing.T) {
	t.Parallel()
	tests := []struct {
		source app.StockSource
		age    time.Duration
		want   string
	}{
		{app.StockLive, 0, "spillway; fwd=miss; stored"},
		{app.StockCache, 0, "spillway; hit; ttl=-0; detail=stale-if-error"},
		{app.StockCache, 90 * time.Second, "spillway; hit; ttl=-90; detail=stale-if-error"},
		// Part of a second past fresh is a second: never claim fresher.
		{app.StockCache, 1500 * time.Millisecond, "spillway; hit; ttl=-2; detail=stale-if-error"},
		{app.StockCache, -time.Second, "spillway; hit; ttl=-0; detail=stale-if-error"},
		{app.StockDefault, 0, "spillway; fwd=miss; fwd-status=503; detail=default"},
	}
	for _, tt := range tests {
		if got := app.CacheStatus(tt.source, tt.age); got != tt.want {
			t.Errorf("CacheStatus(%s, %s) = %q; want %q", tt.source, tt.age, got, tt.want)
		}
	}
}

func TestChooseStockServesTheCacheWithItsAgeElseTheDefault(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cached := map[string]app.CachedStock{"sku-tea": {SKU: "sku-tea", Available: 7, AsOf: t0}}
	tests := []struct {
		sku     string
		now     time.Time
		source  app.StockSource
		avail   *int
		asOf    time.Time
		wantAge time.Duration
	}{
		{"sku-tea", t0.Add(3 * time.Minute), app.StockCache, ptr(7), t0, 3 * time.Minute},
		// A clock that stepped back shows no negative age.
		{"sku-tea", t0.Add(-time.Second), app.StockCache, ptr(7), t0, 0},
		{"sku-mug", t0, app.StockDefault, nil, time.Time{}, 0},
	}
	for _, tt := range tests {
		got := app.ChooseStock(tt.sku, cached, tt.now)
		if got.Source != tt.source || !got.AsOf.Equal(tt.asOf) || got.Age != tt.wantAge ||
			(got.Available == nil) != (tt.avail == nil) || (got.Available != nil && *got.Available != *tt.avail) {
			t.Errorf("ChooseStock(%s at %s) = %+v; want %s %v as of %s, age %s", tt.sku, tt.now, got, tt.source, tt.avail, tt.asOf, tt.wantAge)
		}
	}
}

func TestWorstSourceIsTheLeastLiveReading(t *testing.T) {
	t.Parallel()
	live := app.StockReading{Source: app.StockLive}
	cache := func(age time.Duration) app.StockReading { return app.StockReading{Source: app.StockCache, Age: age} }
	def := app.StockReading{Source: app.StockDefault}
	tests := []struct {
		rs      []app.StockReading
		want    app.StockSource
		wantAge time.Duration
	}{
		{nil, app.StockLive, 0},
		{[]app.StockReading{live, live}, app.StockLive, 0},
		{[]app.StockReading{live, cache(time.Second), cache(time.Minute), live}, app.StockCache, time.Minute},
		{[]app.StockReading{cache(time.Minute), def, live}, app.StockDefault, 0},
	}
	for _, tt := range tests {
		if got, age := app.WorstSource(tt.rs); got != tt.want || age != tt.wantAge {
			t.Errorf("WorstSource(%v) = %s, %s; want %s, %s", tt.rs, got, age, tt.want, tt.wantAge)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// gatedInventory counts stock reads and, when gate is set, holds each read
// until the test lets it go, saying on entered that one has started.
type gatedInventory struct {
	app.InventoryService
	reads   *atomic.Int32
	entered chan struct{}
	gate    chan struct{}
}

func (g *gatedInventory) Stock(ctx context.Context, skus []string) ([]app.StockLevel, error) {
	g.reads.Add(1)
	if g.gate != nil {
		g.entered <- struct{}{}
		select {
		case <-g.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.InventoryService.Stock(ctx, skus)
}

// stockRig is the simulator's inventory and a database's stock cache.
type stockRig struct {
	sim   *sim.Sim
	inv   app.InventoryService
	store *db.Store
	reads atomic.Int32
	clock *clock
}

func newStockRig(t *testing.T) *stockRig {
	t.Helper()
	s := sim.New(sim.Config{})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	t.Cleanup(s.Reset)
	inv, err := provider.NewInventoryHTTP(provider.InventoryHTTPConfig{BaseURL: srv.URL + sim.InventoryPath})
	if err != nil {
		t.Fatal(err)
	}
	return &stockRig{sim: s, inv: inv, store: db.NewStore(dbtest.New(t)), clock: newClock()}
}

// reads builds one instance's stock reads; the budgets are the harness's
// guard, so no read times out because the machine is slow.
func (r *stockRig) instance(t *testing.T, name string, inv app.InventoryService, bs *app.Breakers) *app.StockReads {
	t.Helper()
	sr, err := app.NewStockReads(app.StockReadsConfig{Inventory: inv, Cache: r.store, Breakers: bs,
		ReadDeadline: apptest.Patience, RefreshTimeout: apptest.Patience, Instance: name, Now: r.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sr.Wait)
	return sr
}

func (r *stockRig) counted() *gatedInventory {
	return &gatedInventory{InventoryService: r.inv, reads: &r.reads}
}

func readOne(t *testing.T, sr *app.StockReads, sku string) app.StockReading {
	t.Helper()
	rs, err := sr.Read(context.Background(), []string{sku})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].SKU != sku {
		t.Fatalf("Read(%s) = %+v", sku, rs)
	}
	return rs[0]
}

func TestStockReadIsLiveAndStoresWhatItRead(t *testing.T) {
	t.Parallel()
	r := newStockRig(t)
	sr := r.instance(t, "a", r.counted(), nil)
	got := readOne(t, sr, "sku-teapot")
	if got.Source != app.StockLive || got.Available == nil || *got.Available != 3 || !got.AsOf.Equal(app.StorageTime(r.clock.Now())) {
		t.Fatalf("read = %+v; want live 3 as of now", got)
	}
	cached, err := r.store.GetCachedStock(context.Background(), []string{"sku-teapot"})
	if err != nil {
		t.Fatal(err)
	}
	if c := cached["sku-teapot"]; c.Available != 3 || !c.AsOf.Equal(got.AsOf) {
		t.Fatalf("cache = %+v; want 3 as of %s", c, got.AsOf)
	}
}

func TestStockReadWithInventoryDownServesTheCacheWithItsAge(t *testing.T) {
	t.Parallel()
	r := newStockRig(t)
	sr := r.instance(t, "a", r.counted(), nil)
	first := readOne(t, sr, "sku-mug")
	r.clock.Advance(90 * time.Second)
	r.sim.SetInventoryChaos(sim.Chaos{Down: true})
	got := readOne(t, sr, "sku-mug")
	if got.Source != app.StockCache || got.Available == nil || *got.Available != 200 || !got.AsOf.Equal(first.AsOf) || got.Age != 90*time.Second {
		t.Fatalf("read = %+v; want cache 200 as of %s, 90s old", got, first.AsOf)
	}
	if cs := app.CacheStatus(got.Source, got.Age); cs != "spillway; hit; ttl=-90; detail=stale-if-error" {
		t.Fatalf("Cache-Status = %q", cs)
	}
	// The failed read left a refresh behind, and it failed as well: the
	// stored value is unchanged and its claim is free again.
	sr.Wait()
	if n := r.reads.Load(); n != 3 {
		t.Fatalf("inventory read %d times; want 3 (live, failed, refresh)", n)
	}
	r.sim.SetInventoryChaos(sim.Chaos{})
	if got, err := sr.Refresh(context.Background(), []string{"sku-mug"}); err != nil || len(got) != 1 {
		t.Fatalf("Refresh after recovery = %v, %v; want sku-mug refreshed", got, err)
	}
}

func TestStockReadWithInventoryDownAndNothingStoredIsTheDefault(t *testing.T) {
	t.Parallel()
	r := newStockRig(t)
	r.sim.SetInventoryChaos(sim.Chaos{Down: true})
	sr := r.instance(t, "a", r.counted(), nil)
	got := readOne(t, sr, "sku-tea")
	if got.Source != app.StockDefault || got.Available != nil || !got.AsOf.IsZero() {
		t.Fatalf("read = %+v; want the default", got)
	}
}

func TestStockReadWithTheBreakerOpenServesTheCacheWithoutCalling(t *testing.T) {
	t.Parallel()
	r := newStockRig(t)
	bs, err := app.NewBreakers(app.BreakersConfig{Store: r.store, Instance: "a", Now: r.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := bs.Register(ctx, app.DepInventory, testPolicy(), app.PolicyOverride{}); err != nil {
		t.Fatal(err)
	}
	sr := r.instance(t, "a", r.counted(), bs)
	first := readOne(t, sr, "sku-kettle")
	if first.Source != app.StockLive {
		t.Fatalf("first read = %+v; want live", first)
	}
	if _, err := bs.Force(ctx, app.DepInventory, app.BreakerForcedOpen, "test", "breaker open"); err != nil {
		t.Fatal(err)
	}
	r.clock.Advance(time.Minute)
	got := readOne(t, sr, "sku-kettle")
	sr.Wait()
	if got.Source != app.StockCache || got.Age != time.Minute || *got.Available != 50 {
		t.Fatalf("read = %+v; want cache 50, a minute old", got)
	}
	if n := r.reads.Load(); n != 1 {
		t.Fatalf("inventory read %d times; want 1: an open breaker lets no read, and no refresh, through", n)
	}
}

func TestConcurrentRefreshesOfOneSKUMakeOneLiveCall(t *testing.T) {
	t.Parallel()
	r := newStockRig(t)
	gated := &gatedInventory{InventoryService: r.inv, reads: &r.reads, entered: make(chan struct{}, 1), gate: make(chan struct{})}
	a := r.instance(t, "a", gated, nil)
	b := r.instance(t, "b", r.counted(), nil) // another instance, on the same database
	ctx := context.Background()

	type result struct {
		skus []string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		skus, err := a.Refresh(ctx, []string{"sku-tea"})
		done <- result{skus, err}
	}()
	<-gated.entered // a holds the claim and is calling
	skus, err := b.Refresh(ctx, []string{"sku-tea"})
	if err != nil || len(skus) != 0 {
		t.Fatalf("second refresh = %v, %v; want nothing refreshed while the first holds the claim", skus, err)
	}
	close(gated.gate)
	res := <-done
	if res.err != nil || len(res.skus) != 1 {
		t.Fatalf("first refresh = %v, %v; want sku-tea", res.skus, res.err)
	}
	if n := r.reads.Load(); n != 1 {
		t.Fatalf("inventory read %d times; want 1", n)
	}
	// The claim is given back: the next refresh calls.
	if skus, err := b.Refresh(ctx, []string{"sku-tea"}); err != nil || len(skus) != 1 {
		t.Fatalf("refresh after the first = %v, %v; want sku-tea", skus, err)
	}
	if n := r.reads.Load(); n != 2 {
		t.Fatalf("inventory read %d times; want 2", n)
	}
}
