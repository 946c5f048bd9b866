package web

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// routes lists every route the service answers.
func routes(cfg Config) http.Handler {
	r := chi.NewRouter()
	r.Use(requestID, nameSpan, logRequests(cfg.Logger), recoverPanics(cfg.Logger))
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, problemNotFound("no such route"))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, problem{Type: "method-not-allowed", Title: "Method not allowed", Status: http.StatusMethodNotAllowed,
			Detail: r.Method + " is not allowed on " + r.URL.Path})
	})

	r.Get("/healthz", handleHealth(cfg.Health))
	if cfg.Metrics != nil {
		metrics := promhttp.HandlerFor(cfg.Metrics, promhttp.HandlerOpts{})
		if cfg.MetricsToken != "" {
			metrics = requireBearer(cfg.MetricsToken)(metrics)
		}
		r.Handle("/metrics", metrics)
	}
	if cfg.Shop != nil {
		cfg.Shop.Register(r)
	}
	if cfg.Admin != nil {
		r.Mount("/admin", cfg.Admin)
	}
	r.Route("/api/v1", func(r chi.Router) {
		r.Post("/payments", handleCreatePayment(cfg.Payments, cfg.Logger, cfg.RetryAfterSeconds))
		if cfg.Orders != nil {
			r.Post("/orders", handleCreateOrder(cfg.Orders, cfg.Logger, cfg.RetryAfterSeconds))
		}
		r.Get("/operations/{id}", handleGetOperation(cfg.Operations))
		if cfg.Catalog != nil {
			r.Get("/products", handleListProducts(cfg.Catalog, cfg.RetryAfterSeconds))
			r.Get("/products/{sku}", handleGetProduct(cfg.Catalog, cfg.RetryAfterSeconds))
		}
		if cfg.Events != nil {
			r.Get("/operations/{id}/events", handleOperationEvents(cfg.Operations, cfg.Events, newStreamLimits(cfg)))
		}
	})
	return r
}
