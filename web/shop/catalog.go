package shop

import (
	"fmt"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/spillway/spillway/app"
)

// page is what the layout of every page needs.
type page struct {
	Title       string
	Degradation app.Degradation
	Distress    int
}

// stockView is one product's stock as a page says it: the words, and when
// the value is not live, when it was read (for a <time datetime>).
type stockView struct {
	Words  string
	Source app.StockSource
	// AsOf and Ago are set for a cached value: "as of 3 minutes ago".
	AsOf string
	Ago  string
	// OutOfStock: the value (live or cached) says none is left.
	OutOfStock bool
}

func newStockView(r app.StockReading) stockView {
	v := stockView{Source: r.Source}
	switch {
	case r.Source == app.StockDefault || r.Available == nil:
		v.Words = "Availability confirmed after you order"
		return v
	case *r.Available <= 0:
		v.Words, v.OutOfStock = "Out of stock", true
	default:
		v.Words = fmt.Sprintf("%d in stock", *r.Available)
	}
	if r.Source == app.StockCache {
		v.AsOf = r.AsOf.UTC().Format(time.RFC3339)
		v.Ago = Ago(r.Age)
	}
	return v
}

// Ago says an age in words, as a customer reads it.
func Ago(d time.Duration) string {
	plural := func(n int64, unit string) string {
		if n == 1 {
			return "1 " + unit + " ago"
		}
		return fmt.Sprintf("%d %ss ago", n, unit)
	}
	switch {
	case d < 5*time.Second:
		return "just now"
	case d < time.Minute:
		return plural(int64(d/time.Second), "second")
	case d < time.Hour:
		return plural(int64(d/time.Minute), "minute")
	case d < 48*time.Hour:
		return plural(int64(d/time.Hour), "hour")
	}
	return plural(int64(d/(24*time.Hour)), "day")
}

// productView is one product as the pages show it.
type productView struct {
	SKU, Name, Price string
	Stock            stockView
	// Swatch is the product's picture (rich content): a colour derived
	// from its SKU, drawn inline, since pages load nothing from elsewhere.
	Swatch string
}

func newProductView(it app.CatalogItem) productView {
	return productView{SKU: it.SKU, Name: it.Name, Price: app.FormatAmount(it.Price, it.Currency),
		Stock: newStockView(it.Stock), Swatch: swatch(it.SKU)}
}

// swatch is a stable colour for sku.
func swatch(sku string) string {
	var h uint32 = 2166136261
	for i := 0; i < len(sku); i++ {
		h = (h ^ uint32(sku[i])) * 16777619
	}
	return fmt.Sprintf("hsl(%d 45%% 55%%)", h%360)
}

// catalogPage is the model of /.
type catalogPage struct {
	page
	Products []productView
	Rich     bool
}

func (s *Shop) handleCatalog(w http.ResponseWriter, r *http.Request) {
	items, err := s.cfg.Catalog.List(r.Context())
	if err != nil {
		s.unavailable(w, r, "show the catalog", err)
		return
	}
	m := catalogPage{page: s.frame("Shop"), Rich: s.enabled(app.FeatureRichContent)}
	var readings []app.StockReading
	for _, it := range items {
		if !it.Active {
			continue
		}
		m.Products = append(m.Products, newProductView(it))
		readings = append(readings, it.Stock)
	}
	setCacheStatus(w, readings)
	s.render(w, r, http.StatusOK, catalogTemplate(m))
}

// productPage is the model of /products/{sku}.
type productPage struct {
	page
	Product    productView
	Active     bool
	Rich       bool
	AlsoBought []productView
}

func (s *Shop) handleProduct(w http.ResponseWriter, r *http.Request) {
	it, err := s.cfg.Catalog.Get(r.Context(), chi.URLParam(r, "sku"))
	if app.ErrorCode(err) == app.ENOTFOUND {
		s.renderMessage(w, r, http.StatusNotFound, s.frame("Not found"), "We have no such product.")
		return
	}
	if err != nil {
		s.unavailable(w, r, "show this product", err)
		return
	}
	m := productPage{page: s.frame(it.Name), Product: newProductView(it), Active: it.Active,
		Rich: s.enabled(app.FeatureRichContent)}
	if s.cfg.Recommendations != nil && s.enabled(app.FeatureRecommendations) {
		m.AlsoBought = s.alsoBought(r, it.SKU)
	}
	setCacheStatus(w, []app.StockReading{it.Stock})
	s.render(w, r, http.StatusOK, productTemplate(m))
}

// alsoBought is the optional "customers also bought": whatever goes wrong
// with it, the page is served without it.
func (s *Shop) alsoBought(r *http.Request, sku string) []productView {
	skus, err := s.cfg.Recommendations.AlsoBought(r.Context(), sku, 3)
	if err != nil {
		s.cfg.Logger.Debug("also bought", "sku", sku, "error", err)
		return nil
	}
	var out []productView
	for _, other := range skus {
		// A name and a price only: no stock read for a recommendation.
		if p, err := s.cfg.Products.GetProduct(r.Context(), other); err == nil && p.Active {
			v := newProductView(app.CatalogItem{Product: p})
			v.Stock = stockView{}
			out = append(out, v)
		}
	}
	return out
}

// setCacheStatus says, in RFC 9211's terms (DESIGN.md, Degraded reads),
// which layer served the page's stock, as the catalog API does.
func setCacheStatus(w http.ResponseWriter, rs []app.StockReading) {
	if len(rs) > 0 {
		w.Header().Set("Cache-Status", app.ResponseCacheStatus(rs))
	}
}
