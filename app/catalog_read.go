package app

import (
	"context"
	"errors"
)

// ProductReader reads the catalog outside any order: db.Store.
type ProductReader interface {
	// ListProducts returns every product, by SKU.
	ListProducts(ctx context.Context) ([]Product, error)
	// GetProduct returns one product, or an ENOTFOUND *Error.
	GetProduct(ctx context.Context, sku string) (Product, error)
}

// CatalogItem is a product with its stock, as the catalog answers it.
type CatalogItem struct {
	Product
	Stock StockReading
}

// Catalog answers the catalog with each product's stock read through the
// degraded read (StockReads): what the JSON API and the shop pages show.
type Catalog struct {
	Products ProductReader
	Stock    *StockReads
}

// NewCatalog returns the catalog on products and stock.
func NewCatalog(products ProductReader, stock *StockReads) (*Catalog, error) {
	if products == nil || stock == nil {
		return nil, errors.New("catalog: products and stock are required")
	}
	return &Catalog{Products: products, Stock: stock}, nil
}

// List returns every product with its stock, read in one call.
func (c *Catalog) List(ctx context.Context) ([]CatalogItem, error) {
	ps, err := c.Products.ListProducts(ctx)
	if err != nil {
		return nil, &Error{Code: EUNAVAILABLE, Message: "the catalog cannot be read right now", Err: err}
	}
	skus := make([]string, len(ps))
	for i, p := range ps {
		skus[i] = p.SKU
	}
	stock, err := c.Stock.Read(ctx, skus)
	if err != nil {
		return nil, err
	}
	items := make([]CatalogItem, len(ps))
	for i, p := range ps {
		items[i] = CatalogItem{Product: p, Stock: stock[i]}
	}
	return items, nil
}

// Get returns one product with its stock, or an ENOTFOUND *Error.
func (c *Catalog) Get(ctx context.Context, sku string) (CatalogItem, error) {
	if !ValidSKU(sku) {
		return CatalogItem{}, Errorf(ENOTFOUND, "no product %q", sku)
	}
	p, err := c.Products.GetProduct(ctx, sku)
	if err != nil {
		if ErrorCode(err) == ENOTFOUND {
			return CatalogItem{}, err
		}
		return CatalogItem{}, &Error{Code: EUNAVAILABLE, Message: "the catalog cannot be read right now", Err: err}
	}
	stock, err := c.Stock.Read(ctx, []string{sku})
	if err != nil {
		return CatalogItem{}, err
	}
	return CatalogItem{Product: p, Stock: stock[0]}, nil
}
