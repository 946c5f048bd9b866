package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/stripe/stripe-go/v83"

	"github.com/spillway/spillway/app"
)

// DefaultStripePaymentMethod is Stripe's test-mode Visa that always succeeds.
const DefaultStripePaymentMethod = "pm_card_visa"

// StripeConfig configures the Stripe provider.
type StripeConfig struct {
	// APIBase overrides Stripe's API URL (e.g. a stripe-mock address).
	// "" → https://api.stripe.com.
	APIBase string
	// SecretKey is the API key (sk_test_… / sk_live_… / rk_…). Required.
	SecretKey string
	// PaymentMethod is charged on every PaymentIntent. "" → pm_card_visa.
	PaymentMethod string
	// HTTPClient sends the requests. nil → the same pooled, timeout-less
	// client the HTTP provider uses.
	HTTPClient *http.Client
	// WrapTransport, when set, wraps the pooled client's transport (the
	// tracing instruments the calls there); it is not applied to a given
	// HTTPClient.
	WrapTransport func(http.RoundTripper) http.RoundTripper
}

// Stripe is an app.PaymentProvider backed by Stripe PaymentIntents created
// with confirm=true: Lookup searches them by metadata, ListCharges lists
// them, Refund refunds one. It is safe for concurrent use.
type Stripe struct {
	client        *stripe.Client
	paymentMethod string
}

var _ app.PaymentProvider = (*Stripe)(nil)

// NewStripe validates cfg and returns a provider.
func NewStripe(cfg StripeConfig) (*Stripe, error) {
	if cfg.SecretKey == "" {
		return nil, errors.New("stripe provider: secret key is required")
	}
	base := stripe.APIURL
	if cfg.APIBase != "" {
		u, err := parseBaseURL(cfg.APIBase)
		if err != nil {
			return nil, fmt.Errorf("stripe provider: %w", err)
		}
		base = strings.TrimSuffix(u.String(), "/")
	}
	pm := cfg.PaymentMethod
	if pm == "" {
		pm = DefaultStripePaymentMethod
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = newPooledClient(cfg.WrapTransport)
	}
	backends := stripe.NewBackendsWithConfig(&stripe.BackendConfig{
		URL:        stripe.String(base),
		HTTPClient: hc,
		// Retries belong to Spillway's queue, which knows the deadline and
		// the budget; a hidden retry here would blow both.
		MaxNetworkRetries: stripe.Int64(0),
		// Faults come back as errors and are logged by the caller; the
		// library's own logging would duplicate them on stderr.
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull},
	})
	return &Stripe{
		client:        stripe.NewClient(cfg.SecretKey, stripe.WithBackends(backends)),
		paymentMethod: pm,
	}, nil
}

// Charge creates and confirms a PaymentIntent for c, with c.IdempotencyKey
// as Stripe's Idempotency-Key so a retry replays Stripe's first answer.
//
// c.Description is deliberately not sent. The operation id (our key) is
// derived from the client's Idempotency-Key alone, so a client retrying
// after a lost commit may send an edited description under the same key.
// Stripe compares every parameter of a repeated idempotency key and would
// refuse that retry (idempotency_error) while the first charge stands; the
// operation would then look failed although it charged. Everything Stripe
// gets is fixed by the key: amount, currency, reference, operation id.
func (s *Stripe) Charge(ctx context.Context, c app.Charge) (app.ChargeResult, error) {
	if pe := checkCharge(c); pe != nil {
		return app.ChargeResult{}, pe
	}
	params := &stripe.PaymentIntentCreateParams{
		Amount:        stripe.Int64(c.Amount),
		Currency:      stripe.String(strings.ToLower(c.Currency)),
		Confirm:       stripe.Bool(true),
		PaymentMethod: stripe.String(s.paymentMethod),
		// Card only: with automatic payment methods, confirm=true would
		// demand a return_url for redirect-based methods we never offer.
		PaymentMethodTypes: stripe.StringSlice([]string{"card"}),
	}
	if c.Reference != "" {
		params.AddMetadata(metadataReference, c.Reference)
	}
	// The key is Spillway's operation id: having it on the PaymentIntent
	// is what Lookup searches by, and lets an operator reconcile from
	// Stripe's side.
	params.AddMetadata(metadataOperationID, c.IdempotencyKey)
	params.SetIdempotencyKey(c.IdempotencyKey)

	tctx, tr := traceSend(ctx)
	pi, err := s.client.V1PaymentIntents.Create(tctx, params)
	if err != nil {
		return mapStripeError(ctx, err, tr)
	}
	return mapPaymentIntent(pi)
}

// Metadata keys Charge sets on every PaymentIntent.
const (
	metadataOperationID = "operation_id"
	metadataReference   = "reference"
)
