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

// Refund refunds the whole of chargeID — a PaymentIntent id as Charge and
// ListCharges report them (pi_…), or a Charge id (ch_…) — with key as the
// Idempotency-Key, so a retry replays Stripe's first refund.
func (s *Stripe) Refund(ctx context.Context, chargeID, key string) (app.RefundResult, error) {
	switch {
	case chargeID == "":
		return app.RefundResult{}, rejected("refund has no charge id")
	case key == "":
		return app.RefundResult{}, rejected("refund has no idempotency key")
	}
	params := &stripe.RefundCreateParams{}
	if strings.HasPrefix(chargeID, "ch_") {
		params.Charge = stripe.String(chargeID)
	} else {
		params.PaymentIntent = stripe.String(chargeID)
	}
	params.SetIdempotencyKey(key)

	tctx, tr := traceSend(ctx)
	r, err := s.client.V1Refunds.Create(tctx, params)
	if err != nil {
		// Stripe's refusals (charge_already_refunded, a declined intent
		// with nothing to refund) are 400s: FaultRejected by stripeFault.
		return app.RefundResult{}, stripeFault(ctx, err, tr)
	}
	return mapRefund(r)
}

// mapRefund turns a Stripe Refund into a result.
//
//   - succeeded, pending → refunded. pending means Stripe accepted the
//     refund under our key and completes it on its own; a later failure
//     would come as a refund.failed event, which Spillway does not read.
//   - failed, canceled, requires_action → FaultRejected: the same key
//     replays the same refund, so retrying cannot help; an operator must.
func mapRefund(r *stripe.Refund) (app.RefundResult, error) {
	if r == nil || r.ID == "" {
		return app.RefundResult{}, &app.ProviderError{Kind: app.FaultUnavailable, StatusCode: http.StatusOK,
			Err: errors.New("stripe: refund without id")}
	}
	switch r.Status {
	case stripe.RefundStatusSucceeded, stripe.RefundStatusPending:
		return app.RefundResult{ID: r.ID, Status: statusRefunded}, nil
	default:
		return app.RefundResult{}, &app.ProviderError{Kind: app.FaultRejected, StatusCode: http.StatusOK,
			Err: fmt.Errorf("stripe: refund %s is %q", r.ID, r.Status)}
	}
}
