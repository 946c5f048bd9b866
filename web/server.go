// Package web is Spillway's HTTP face: the chi router, the JSON API, RFC 9457
// problem responses and the middleware every response passes through. It
// turns app's error codes into HTTP statuses in exactly one place
// (problem.go).
package web

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spillway/spillway/app"
)

// MaxBodyBytes caps request bodies; a payment is a few hundred bytes.
const MaxBodyBytes = 64 << 10

// Config is what the HTTP layer needs.
type Config struct {
	Runner *app.Runner
	Pool   *pgxpool.Pool
	Logger *slog.Logger
	// RetryAfterSeconds is the polling hint sent with 202 and 503.
	RetryAfterSeconds int
	// Metrics is served at /metrics when set.
	Metrics prometheus.Gatherer
	// Events fans status changes out to live streams; run it.
	Events *EventHub
	// Admin is mounted at /admin when set.
	Admin http.Handler
}

// PaymentSubmitter is the runner as the payment handler sees it.
type PaymentSubmitter interface {
	SubmitPayment(ctx context.Context, key string, req app.PaymentRequest) (*app.Outcome, error)
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
