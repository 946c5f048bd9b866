package provider_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/spillway/spillway/app"
)

// TestStripeOutcomeUnknown: the same rule as the HTTP provider for
// transport failures, plus Stripe's own: a 5xx answer is indeterminate.
func TestStripeOutcomeUnknown(t *testing.T) {
	t.Parallel()
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	got := make(chan struct{}, 1)
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		got <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); hung.Close() })

	t.Run("connection refused is known", func(t *testing.T) {
		_, err := newStripe(t, gone.URL, "sk_test_123").Charge(context.Background(), testCharge("op-1"))
		assertOutcome(t, err, app.FaultUnavailable, false)
	})
	t.Run("hung past the deadline is an unknown timeout", func(t *testing.T) {
		ctx := newExpiringCtx()
		go func() { <-got; ctx.expire() }()
		_, err := newStripe(t, hung.URL, "sk_test_123").Charge(ctx, testCharge("op-1"))
		assertOutcome(t, err, app.FaultTimeout, true)
	})
	for _, tt := range []struct {
		name    string
		status  int
		body    string
		kind    app.FaultKind
		unknown bool
	}{
		{name: "500 is unknown", status: 500, body: `{"error":{"type":"api_error","message":"x"}}`, kind: app.FaultUnavailable, unknown: true},
		{name: "503 is unknown", status: 503, body: `{"error":{"type":"api_error","message":"x"}}`, kind: app.FaultUnavailable, unknown: true},
		{name: "429 is known", status: 429, body: `{"error":{"type":"invalid_request_error","code":"rate_limit","message":"x"}}`, kind: app.FaultUnavailable},
		{name: "409 key in use is known", status: 409, body: `{"error":{"type":"idempotency_error","code":"idempotency_key_in_use","message":"x"}}`, kind: app.FaultUnavailable},
		{name: "400 idempotency conflict is known", status: 400, body: `{"error":{"type":"idempotency_error","message":"x"}}`, kind: app.FaultConflict},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := stripeRecorder(t, tt.status, tt.body)
			_, err := newStripe(t, srv.URL, "sk_test_123").Charge(context.Background(), testCharge("op-1"))
			assertOutcome(t, err, tt.kind, tt.unknown)
		})
	}
}
