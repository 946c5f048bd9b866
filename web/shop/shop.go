// Package shop serves the customer's pages: the catalog with stock, a
// product, the checkout form and an order's live status page. They are
// server-rendered and work without JavaScript; a small script follows an
// order's event stream when JavaScript is on. Every page says plainly
// when part of the system is degraded (the banner) and serves what it can:
// stock from the cache with its age, optional features switched off first
// (app.FeatureSwitch). Orders are placed through the same runner and
// idempotency as POST /api/v1/orders: the form carries its own key.
package shop

import (
	"context"
	_ "embed"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/a-h/templ"
	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/spillway/spillway/app"
)

//go:embed live.js
var liveJS []byte

// Catalog is the catalog with degraded stock reads: app.Catalog.
type Catalog interface {
	List(ctx context.Context) ([]app.CatalogItem, error)
	Get(ctx context.Context, sku string) (app.CatalogItem, error)
}

// Submitter places orders: the runner.
type Submitter interface {
	Submit(ctx context.Context, kind, key string, req app.StepRequest) (*app.Outcome, error)
}

// Features says which features are on and what is degraded:
// app.FeatureSwitch.
type Features interface {
	Enabled(name string) bool
	Snapshot() app.FeatureSnapshot
}

// Recommender answers "customers also bought": db.Store.
type Recommender interface {
	AlsoBought(ctx context.Context, sku string, limit int) ([]string, error)
}

// Config is what the pages need.
type Config struct {
	// Catalog and Orders may be nil where no inventory is configured: the
	// shop's pages then say it is closed, and only the status pages of
	// operations are served.
	Catalog    Catalog
	Orders     Submitter
	Operations app.OperationReader
	// Features may be nil: every feature on, nothing degraded.
	Features Features
	// Recommendations may be nil: the product page shows none. Products
	// names and prices what it recommends (db.Store).
	Recommendations Recommender
	Products        app.ProductReader
	// RetryAfterSeconds is what a 503 page tells the browser.
	RetryAfterSeconds int
	Logger            *slog.Logger
	// Now is the wall clock that ages cached stock (nil: time.Now).
	Now func() time.Time
}

// Shop is the customer's pages.
type Shop struct {
	cfg  Config
	csrf *http.CrossOriginProtection
}

// New validates cfg and returns the pages.
func New(cfg Config) (*Shop, error) {
	if cfg.Operations == nil {
		return nil, errors.New("shop: Operations is required")
	}
	if cfg.Recommendations != nil && cfg.Products == nil {
		return nil, errors.New("shop: Recommendations need Products")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RetryAfterSeconds <= 0 {
		cfg.RetryAfterSeconds = 1
	}
	s := &Shop{cfg: cfg, csrf: http.NewCrossOriginProtection()}
	s.csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.renderMessage(w, r, http.StatusForbidden, s.frame("Not sent"),
			"This form was sent from another site, so we did not act on it and nothing was ordered. "+
				"To order, use the checkout on this site.")
	}))
	return s, nil
}

// Register adds the pages to r: /, /products/{sku}, /checkout (GET and
// POST), /orders/{id}, /status/{id} (the address older emails carry,
// redirected) and the script.
func (s *Shop) Register(r chi.Router) {
	r.Group(func(r chi.Router) {
		r.Use(pageHeaders)
		r.Group(func(r chi.Router) {
			r.Use(s.open)
			r.Get("/", s.handleCatalog)
			r.Get("/products/{sku}", s.handleProduct)
			r.Get("/checkout", s.handleCheckoutForm)
			// Go's cross-origin protection refuses a form posted from
			// another site (Sec-Fetch-Site, or Origin against Host), which
			// is what CSRF needs, with no token to carry or expire.
			r.With(s.csrf.Handler).Post("/checkout", s.handleCheckout)
		})
		r.Get("/orders/{id}", s.handleOrder)
	})
	r.With(pageHeaders).Get("/status/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := pathID(chi.URLParam(r, "id"))
		if id == "" {
			s.renderMessage(w, r, http.StatusNotFound, s.frame("Not found"), "We have no order or payment with that reference.")
			return
		}
		http.Redirect(w, r, "/orders/"+id, http.StatusMovedPermanently)
	})
	r.Get("/shop/live.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		_, _ = w.Write(liveJS)
	})
}

// open serves the shop's pages only where it has a catalog and takes
// orders.
func (s *Shop) open(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Catalog == nil || s.cfg.Orders == nil {
			s.renderMessage(w, r, http.StatusNotFound, s.frame("The shop is closed"),
				"This deployment takes payments but runs no shop (no inventory is configured).")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// pageHeaders are every page's: no asset from anywhere but here, and no
// stale copy of a page that shows live state.
func pageHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

// pathID keeps a path segment safe to put back in a Location.
func pathID(segment string) string {
	if id, err := uuid.Parse(segment); err == nil {
		return id.String()
	}
	return ""
}

// enabled reports whether feature name is on.
func (s *Shop) enabled(name string) bool {
	return s.cfg.Features == nil || s.cfg.Features.Enabled(name)
}

// frame is what every page's layout shows: the banner and how often an
// open order's page refreshes itself.
func (s *Shop) frame(title string) page {
	p := page{Title: title}
	if s.cfg.Features != nil {
		snap := s.cfg.Features.Snapshot()
		p.Degradation = app.Degrade(snap.Distress)
		p.Distress = snap.Distress.Level()
	}
	return p
}

// RefreshSeconds is how often an open order's page refreshes itself
// without JavaScript: every 5 s when all is well, doubling with each level
// of distress up to a minute, so a struggling system is polled less.
func RefreshSeconds(distress int) int {
	n := 5
	for range min(max(distress, 0), 4) {
		n *= 2
	}
	return min(n, 60)
}

// render writes a page with status.
func (s *Shop) render(w http.ResponseWriter, r *http.Request, status int, c templ.Component) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := c.Render(r.Context(), w); err != nil {
		s.cfg.Logger.Warn("render page", "path", r.URL.Path, "error", err)
	}
}

// unavailable answers a page that cannot be served now.
func (s *Shop) unavailable(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.cfg.Logger.Warn("page unavailable", "path", r.URL.Path, "error", err)
	w.Header().Set("Retry-After", strconv.Itoa(s.cfg.RetryAfterSeconds))
	s.renderMessage(w, r, http.StatusServiceUnavailable, s.frame("Please try again"),
		"We could not "+what+" just now. Please try again in a moment.")
}

// renderMessage answers a page that only says msg.
func (s *Shop) renderMessage(w http.ResponseWriter, r *http.Request, status int, p page, msg string) {
	s.render(w, r, status, message(p, msg))
}
