package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/stripe/stripe-go/v83"

	"github.com/spillway/spillway/app"
)

// Decline codes for PaymentIntents that Stripe answered 200 but did not pay.
const (
	declinePaymentFailed  = "payment_failed"
	declineAuthentication = "authentication_required"
	declineCanceled       = "canceled"
)

// mapPaymentIntent turns a confirmed PaymentIntent into a result.
//
//   - succeeded, processing, requires_capture → success. processing means
//     Stripe accepted the payment and settles it asynchronously;
//     requires_capture means the funds are authorized and held (only with
//     capture_method=manual, which we never send). Either way the charge
//     exists under this PaymentIntent id and a retry would not create
//     another, so reporting a failure would be wrong.
//   - requires_payment_method → declined (the attempt failed; Stripe usually
//     says so with a 402 instead, this covers the 200 form), with the
//     decline code of last_payment_error.
//   - requires_action → declined "authentication_required": the card wants
//     3-D Secure and server-to-server there is no customer to complete it.
//   - canceled → declined "canceled".
//   - anything else → FaultRejected: with the same idempotency key Stripe
//     replays the same answer, so retrying cannot help.
func mapPaymentIntent(pi *stripe.PaymentIntent) (app.ChargeResult, error) {
	if pi == nil || pi.ID == "" {
		return app.ChargeResult{}, &app.ProviderError{Kind: app.FaultUnavailable, StatusCode: http.StatusOK,
			Err: errors.New("stripe: payment intent without id")}
	}
	switch pi.Status {
	case stripe.PaymentIntentStatusSucceeded,
		stripe.PaymentIntentStatusProcessing,
		stripe.PaymentIntentStatusRequiresCapture:
		return app.ChargeResult{ProviderRef: pi.ID}, nil
	case stripe.PaymentIntentStatusRequiresPaymentMethod:
		return app.ChargeResult{Declined: true, ProviderRef: pi.ID, DeclineCode: declineCodeOf(pi.LastPaymentError, declinePaymentFailed)}, nil
	case stripe.PaymentIntentStatusRequiresAction:
		return app.ChargeResult{Declined: true, ProviderRef: pi.ID, DeclineCode: declineAuthentication}, nil
	case stripe.PaymentIntentStatusCanceled:
		return app.ChargeResult{Declined: true, ProviderRef: pi.ID, DeclineCode: declineCanceled}, nil
	default:
		return app.ChargeResult{}, &app.ProviderError{Kind: app.FaultRejected, StatusCode: http.StatusOK,
			Err: fmt.Errorf("stripe: payment intent %s left in status %q", pi.ID, pi.Status)}
	}
}

// mapStripeError turns a stripe-go error into a decline or a fault. Card
// errors are declines whatever their status; other API errors go by HTTP
// status; errors that never got an API answer (network, ctx, a body that
// is not Stripe JSON) are timeouts or unavailability.
func mapStripeError(ctx context.Context, err error) (app.ChargeResult, error) {
	var se *stripe.Error
	if !errors.As(err, &se) {
		return app.ChargeResult{}, transportFault(ctx, 0, fmt.Errorf("stripe: %w", err))
	}
	if se.Type == stripe.ErrorTypeCard {
		ref := se.ChargeID
		if se.PaymentIntent != nil && se.PaymentIntent.ID != "" {
			ref = se.PaymentIntent.ID
		}
		return app.ChargeResult{Declined: true, ProviderRef: ref, DeclineCode: declineCodeOf(se, string(stripe.ErrorCodeCardDeclined))}, nil
	}
	kind := statusKind(se.HTTPStatusCode)
	if se.HTTPStatusCode == 0 {
		kind = app.FaultUnavailable
	}
	return app.ChargeResult{}, &app.ProviderError{Kind: kind, StatusCode: se.HTTPStatusCode, Err: apiError{se}}
}

// apiError gives a *stripe.Error a one-line message (its own Error() is
// the whole JSON object, payment intent included) while keeping it
// reachable with errors.As.
type apiError struct{ se *stripe.Error }

func (e apiError) Error() string {
	return fmt.Sprintf("stripe %s (code %q, request %q): %s", e.se.Type, e.se.Code, e.se.RequestID, e.se.Msg)
}

func (e apiError) Unwrap() error { return e.se }

// declineCodeOf prefers the issuer's decline_code, then Stripe's error
// code, then fallback, so a decline always carries a reason.
func declineCodeOf(se *stripe.Error, fallback string) string {
	switch {
	case se == nil:
		return fallback
	case se.DeclineCode != "":
		return string(se.DeclineCode)
	case se.Code != "":
		return string(se.Code)
	}
	return fallback
}
