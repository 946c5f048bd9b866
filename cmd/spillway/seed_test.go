package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/spillway/spillway/app/sim"
	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/db/dbtest"
)

// `spillway seed` adds the demo catalog once: a second run adds nothing,
// and a price changed in between is kept.
func TestSeedAddsTheDemoCatalogOnce(t *testing.T) {
	t.Parallel()
	pool, url := dbtest.NewWithURL(t)
	getenv := func(k string) string { return map[string]string{"DATABASE_URL": url}[k] }
	ctx := context.Background()
	var out, errb bytes.Buffer
	if err := run(ctx, []string{"seed"}, getenv, &out, &errb); err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), "5 products added, 0 already there") {
		t.Fatalf("first seed: %q", out.String())
	}
	if _, err := pool.Exec(ctx, `UPDATE products SET price = 500 WHERE sku = 'sku-tea'`); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run(ctx, []string{"seed"}, getenv, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "0 products added, 5 already there") {
		t.Fatalf("second seed: %q", out.String())
	}
	ps, err := db.GetProducts(ctx, pool, []string{"sku-tea", "sku-teapot", "sku-nothing"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps["sku-tea"].Price != 500 || ps["sku-teapot"].Price < 100000 {
		t.Fatalf("catalog after a second seed: %+v", ps)
	}
	if err := run(ctx, []string{"seed", "now"}, getenv, &out, &errb); err == nil {
		t.Fatal("seed took an argument")
	}
}

// The demo catalog and the simulator's inventory name the same products,
// so every product `make run` offers can be reserved.
func TestDemoCatalogMatchesTheSimulatorsStock(t *testing.T) {
	t.Parallel()
	all, err := demoProducts()
	if err != nil {
		t.Fatal(err)
	}
	stock := sim.DefaultStock()
	for _, p := range all {
		if _, ok := stock[p.SKU]; !ok {
			t.Errorf("%s is in the catalog but not in the simulator's stock", p.SKU)
		}
		if err := p.Validate(); err != nil {
			t.Errorf("%s: %v", p.SKU, err)
		}
	}
	if len(all) != len(stock) {
		t.Errorf("catalog has %d products, the simulator stocks %d", len(all), len(stock))
	}
}
