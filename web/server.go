// Package web is Spillway's inbound HTTP and nothing else: the chi router,
// the JSON API, RFC 9457 problem responses, the server-sent event streams,
// /metrics and the middleware every response passes through; the customer's
// pages are web/shop and the operator UI web/admin. It turns app's
// error codes into HTTP statuses in exactly one place (problem.go). What it
// calls out to (providers, senders, the database) it reaches only through
// the interfaces in its Config.
package web

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/web/shop"
)

// MaxBodyBytes caps request bodies; a payment is a few hundred bytes.
const MaxBodyBytes = 64 << 10

// Config is what the HTTP layer needs. Its dependencies are interfaces,
// so a handler test can pass a fake; cmd/spillway wires the real ones.
type Config struct {
	// Payments takes POST /api/v1/payments: the runner.
	Payments Submitter
	// Orders takes POST /api/v1/orders: the runner; nil serves no orders.
	Orders Submitter
	// Operations reads operations for GET /api/v1/operations/{id}, its
	// event stream and the status page: db.Store.
	Operations app.OperationReader
	// Health answers /healthz: db.Store.
	Health Pinger
	Logger *slog.Logger
	// RetryAfterSeconds is the polling hint sent with 202 and 503.
	RetryAfterSeconds int
	// Metrics is served at /metrics when set.
	Metrics prometheus.Gatherer
	// MetricsToken, when set (METRICS_TOKEN), is the bearer token /metrics
	// requires; without it the answer is 401.
	MetricsToken string
	// Events fans status changes out to live streams; run it, and close it
	// on shutdown (see EventHub.Close).
	Events *EventHub
	// MaxStreams caps this instance's open event streams (SSE_MAX_STREAMS);
	// past it a new stream is answered 503 with Retry-After. Zero means
	// 1000.
	MaxStreams int
	// StreamHeartbeat is how often an idle stream sends a comment; zero
	// means 15 s.
	StreamHeartbeat time.Duration
	// StreamWriteTimeout bounds each write to a stream: a client that reads
	// nothing for this long loses its stream. Zero means 10 s.
	StreamWriteTimeout time.Duration
	// Admin is mounted at /admin when set.
	Admin http.Handler
	// Catalog serves GET /api/v1/products…: app.Catalog; nil serves none.
	Catalog CatalogReader
	// Shop is the customer's pages (/, /products, /checkout, /orders,
	// and /status redirected); nil serves none.
	Shop *shop.Shop
}

// Submitter is the runner as the handlers that create operations see it:
// every kind, payments and orders alike, is submitted the same way.
type Submitter interface {
	Submit(ctx context.Context, kind, key string, req app.StepRequest) (*app.Outcome, error)
}

// NewServer returns the whole HTTP handler.
func NewServer(cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RetryAfterSeconds <= 0 {
		cfg.RetryAfterSeconds = 1
	}
	return routes(cfg)
}
