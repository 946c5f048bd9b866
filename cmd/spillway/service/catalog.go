package service

import (
	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/web"
)

// catalog builds the catalog API's reads: products from Postgres, stock
// read live from the inventory within READ_DEADLINE, through its breaker,
// else from the stock cache. Without an inventory there is no catalog API.
func (s *Service) catalog(ac app.Config, store *db.Store) (web.CatalogReader, error) {
	if s.inventory == nil {
		return nil, nil
	}
	reads, err := app.NewStockReads(app.StockReadsConfig{
		Inventory: s.inventory, Cache: store, Breakers: s.breakers,
		ReadDeadline: ac.ReadDeadline, RefreshTimeout: ac.Dep(app.DepInventory).Deadline,
		Instance: s.instance, Logger: s.log,
	})
	if err != nil {
		return nil, err
	}
	c, err := app.NewCatalog(store, reads)
	if err != nil {
		return nil, err
	}
	return c, nil
}
