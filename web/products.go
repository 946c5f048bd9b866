package web

import (
	"context"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/spillway/spillway/app"
)

// CatalogReader is the catalog with degraded stock reads: app.Catalog.
type CatalogReader interface {
	List(ctx context.Context) ([]app.CatalogItem, error)
	Get(ctx context.Context, sku string) (app.CatalogItem, error)
}

// productDocument is one product of the catalog API (DESIGN.md, Catalog
// API).
type productDocument struct {
	SKU      string        `json:"sku"`
	Name     string        `json:"name"`
	Price    int64         `json:"price"`
	Currency string        `json:"currency"`
	Stock    stockDocument `json:"stock"`
}

// stockDocument says how much is in stock and which layer said so:
// available and as_of are null with the default, whose message says what
// the customer may rely on instead.
type stockDocument struct {
	Available *int            `json:"available"`
	Source    app.StockSource `json:"source"`
	AsOf      *time.Time      `json:"as_of"`
	Message   string          `json:"message,omitempty"`
}

func newProductDocument(it app.CatalogItem) productDocument {
	s := stockDocument{Available: it.Stock.Available, Source: it.Stock.Source}
	if !it.Stock.AsOf.IsZero() {
		asOf := it.Stock.AsOf
		s.AsOf = &asOf
	}
	if it.Stock.Source == app.StockDefault {
		s.Message = app.StockDefaultText
	}
	return productDocument{SKU: it.SKU, Name: it.Name, Price: it.Price, Currency: it.Currency, Stock: s}
}

// setCacheStatus says, in RFC 9211's terms, which layer served the
// answer: the least live of its readings.
func setCacheStatus(w http.ResponseWriter, rs []app.StockReading) {
	w.Header().Set("Cache-Status", app.ResponseCacheStatus(rs))
}

// handleListProducts serves GET /api/v1/products.
func handleListProducts(catalog CatalogReader, retryAfter int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		items, err := catalog.List(r.Context())
		if err != nil {
			writeProblem(w, r, problemFor(err, retryAfter))
			return
		}
		docs := make([]productDocument, len(items))
		readings := make([]app.StockReading, len(items))
		for i, it := range items {
			docs[i], readings[i] = newProductDocument(it), it.Stock
		}
		setCacheStatus(w, readings)
		writeJSON(w, http.StatusOK, struct {
			Products []productDocument `json:"products"`
		}{docs})
	}
}

// handleGetProduct serves GET /api/v1/products/{sku}.
func handleGetProduct(catalog CatalogReader, retryAfter int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		it, err := catalog.Get(r.Context(), chi.URLParam(r, "sku"))
		if app.ErrorCode(err) == app.ENOTFOUND {
			writeProblem(w, r, problemNotFound("no product has that sku"))
			return
		}
		if err != nil {
			writeProblem(w, r, problemFor(err, retryAfter))
			return
		}
		setCacheStatus(w, []app.StockReading{it.Stock})
		writeJSON(w, http.StatusOK, newProductDocument(it))
	}
}
