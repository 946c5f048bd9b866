package service

import (
	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/web/shop"
)

// catalog builds the catalog's reads: products from Postgres, stock read
// live from the inventory within READ_DEADLINE, through its breaker, else
// from the stock cache; live reads stop while the live_stock_refresh
// feature is off. Without an inventory there is no catalog (nil).
func (s *Service) catalog(ac app.Config, store *db.Store) (*app.Catalog, error) {
	if s.inventory == nil {
		return nil, nil
	}
	reads, err := app.NewStockReads(app.StockReadsConfig{
		Inventory: s.inventory, Cache: store, Breakers: s.breakers,
		ReadDeadline: ac.ReadDeadline, RefreshTimeout: ac.Dep(app.DepInventory).Deadline,
		Live:     func() bool { return s.features.Enabled(app.FeatureLiveStockRefresh) },
		Instance: s.instance, Logger: s.log,
	})
	if err != nil {
		return nil, err
	}
	return app.NewCatalog(store, reads)
}

// shop builds the customer's pages on the catalog (nil: only the status
// pages of operations are served).
func (s *Service) shop(store *db.Store, catalog *app.Catalog) (*shop.Shop, error) {
	cfg := shop.Config{Operations: store, Features: s.features, Products: store, Recommendations: store, Logger: s.log}
	if catalog != nil {
		cfg.Catalog, cfg.Orders = catalog, s.runner
	}
	return shop.New(cfg)
}
