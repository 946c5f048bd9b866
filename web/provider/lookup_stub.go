package provider

// Temporary: replaced by the real lookups, listings and refunds.

import (
	"context"
	"errors"
	"time"

	"github.com/spillway/spillway/app"
)

var errNotYet = &app.ProviderError{Kind: app.FaultUnavailable, Err: errors.New("not implemented yet")}

func (p *HTTP) Lookup(ctx context.Context, key string) (app.ChargeLookup, error) {
	return app.ChargeLookup{}, errNotYet
}

func (p *HTTP) ListCharges(ctx context.Context, createdAfter time.Time, after string, limit int) (app.ChargePage, error) {
	return app.ChargePage{}, errNotYet
}

func (p *HTTP) Refund(ctx context.Context, chargeID, key string) (app.RefundResult, error) {
	return app.RefundResult{}, errNotYet
}

func (s *Stripe) Lookup(ctx context.Context, key string) (app.ChargeLookup, error) {
	return app.ChargeLookup{}, errNotYet
}

func (s *Stripe) ListCharges(ctx context.Context, createdAfter time.Time, after string, limit int) (app.ChargePage, error) {
	return app.ChargePage{}, errNotYet
}

func (s *Stripe) Refund(ctx context.Context, chargeID, key string) (app.RefundResult, error) {
	return app.RefundResult{}, errNotYet
}
