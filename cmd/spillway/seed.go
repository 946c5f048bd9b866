package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
)

// demoCatalog is the catalog `make run` seeds: the SKUs the simulator's
// inventory stocks (app/sim), one of them at or above HIGH_VALUE_AMOUNT and
// one sold out, so the walk-through can show each path.
//
//go:embed demo_catalog.json
var demoCatalog []byte

// runSeed is `spillway seed`: it migrates and adds the demo catalog's
// products that are missing. Products already there are left as they are,
// so a price changed since is never reset.
func runSeed(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
	products, err := demoProducts()
	if err != nil {
		return err
	}
	cfg, err := app.LoadConfig(getenv)
	if err != nil {
		return err
	}
	pool, err := openDatabase(ctx, cfg, getenv, stderr, db.PoolConfig{MaxConns: 2})
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := db.MigrateUp(ctx, pool, io.Discard); err != nil {
		return err
	}
	added := 0
	for _, p := range products {
		ok, err := db.InsertProductIfAbsent(ctx, pool, p)
		if err != nil {
			return err
		}
		if ok {
			added++
		}
	}
	fmt.Fprintf(stdout, "catalog: %d products added, %d already there\n", added, len(products)-added)
	return nil
}

// demoProducts decodes and checks the demo catalog.
func demoProducts() ([]app.Product, error) {
	var products []app.Product
	if err := json.Unmarshal(demoCatalog, &products); err != nil {
		return nil, fmt.Errorf("seed: demo catalog: %w", err)
	}
	for _, p := range products {
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("seed: demo catalog, %s: %s", p.SKU, app.ErrorMessage(err))
		}
	}
	return products, nil
}
