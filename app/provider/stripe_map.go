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

// intentOutcome is what a PaymentIntent's status says about the money.
type intentOutcome int

const (
	intentUnknown  intentOutcome = iota // a status a confirmed intent should never be in
	intentCharged                       // the money is or will be taken
	intentDeclined                      // no money was or will be taken
)

// outcomeOf classifies a PaymentIntent, the one place Charge, Lookup and
// ListCharges agree on what each status means:
//
//   - succeeded, processing, requires_capture → charged. processing means
//     Stripe accepted the payment and settles it asynchronously;
//     requires_capture means the funds are authorized and held (only with
//     capture_method=manual, which we never send). Either way the charge
//     exists under this PaymentIntent id and a retry would not create
//     another, so reporting a failure (or "nothing charged") would be wrong.
//   - requires_payment_method → declined (the attempt failed; Stripe usually
//     says so with a 402 instead, this covers the 200 form), with the
//     decline code of last_payment_error.
//   - requires_action → declined "authentication_required": the card wants
//     3-D Secure and server-to-server there is no customer to complete it.
//   - canceled → declined "canceled".
//   - anything else (requires_confirmation) → unknown: we always confirm,
//     so it is not a state our requests leave behind.
func outcomeOf(pi *stripe.PaymentIntent) (intentOutcome, string) {
	switch pi.Status {
	case stripe.PaymentIntentStatusSucceeded,
		stripe.PaymentIntentStatusProcessing,
		stripe.PaymentIntentStatusRequiresCapture:
		return intentCharged, ""
	case stripe.PaymentIntentStatusRequiresPaymentMethod:
		return intentDeclined, declineCodeOf(pi.LastPaymentError, declinePaymentFailed)
	case stripe.PaymentIntentStatusRequiresAction:
		return intentDeclined, declineAuthentication
	case stripe.PaymentIntentStatusCanceled:
		return intentDeclined, declineCanceled
	default:
		return intentUnknown, ""
	}
}

// mapPaymentIntent turns a confirmed PaymentIntent into a result, by
// outcomeOf. An intent in a status outcomeOf does not know is
// FaultRejected: with the same idempotency key Stripe replays the same
// answer, so retrying cannot help.
func mapPaymentIntent(pi *stripe.PaymentIntent) (app.ChargeResult, error) {
	if pi == nil || pi.ID == "" {
		return app.ChargeResult{}, &app.ProviderError{Kind: app.FaultUnavailable, StatusCode: http.StatusOK,
			Err: errors.New("stripe: payment intent without id")}
	}
	res := app.ChargeResult{ProviderRef: pi.ID, Amount: max(pi.Amount, 0), Currency: currencyCode(string(pi.Currency))}
	switch outcome, code := outcomeOf(pi); outcome {
	case intentCharged:
		return res, nil
	case intentDeclined:
		res.Declined, res.DeclineCode = true, code
		return res, nil
	default:
		return app.ChargeResult{}, &app.ProviderError{Kind: app.FaultRejected, StatusCode: http.StatusOK,
			Err: fmt.Errorf("stripe: payment intent %s left in status %q", pi.ID, pi.Status)}
	}
}

// mapStripeError turns a stripe-go error from a charge into a decline or a
// fault. Card errors are declines whatever their status; everything else
// is a fault, by stripeFault.
func mapStripeError(ctx context.Context, err error, tr *sendTrace) (app.ChargeResult, error) {
	var se *stripe.Error
	if errors.As(err, &se) && se.Type == stripe.ErrorTypeCard {
		res := app.ChargeResult{Declined: true, ProviderRef: se.ChargeID, DeclineCode: declineCodeOf(se, string(stripe.ErrorCodeCardDeclined))}
		if pi := se.PaymentIntent; pi != nil && pi.ID != "" {
			res.ProviderRef, res.Amount, res.Currency = pi.ID, max(pi.Amount, 0), currencyCode(string(pi.Currency))
		}
		return res, nil
	}
	return app.ChargeResult{}, stripeFault(ctx, err, tr)
}

// stripeFault classifies any stripe-go error that is not a business answer.
//
//   - No API answer (network, ctx, a body that is not Stripe JSON, a body
//     cut short): a transport fault, outcome unknown unless tr shows the
//     request never left.
//   - idempotency_error: with 409 (idempotency_key_in_use) the first
//     request with this key is still running at Stripe: unavailable,
//     retried. Otherwise Stripe holds another request under this key:
//     FaultConflict, and ours was not carried out.
//   - 5xx: unavailable, and OutcomeUnknown — unlike the generic contract,
//     Stripe documents that the result of a 500 is indeterminate (its
//     "Advanced error handling" page): the request may have been carried
//     out, and a lookup must say so before anything is concluded.
//   - other statuses by statusKind.
func stripeFault(ctx context.Context, err error, tr *sendTrace) *app.ProviderError {
	var se *stripe.Error
	if !errors.As(err, &se) {
		return transportFault(ctx, 0, fmt.Errorf("stripe: %w", withoutURL(err)), tr.mayHaveSent(err))
	}
	status := se.HTTPStatusCode
	kind := statusKind(status)
	switch {
	case se.Type == stripe.ErrorTypeIdempotency && status != http.StatusConflict && se.Code != stripe.ErrorCodeIdempotencyKeyInUse:
		kind = app.FaultConflict
	case status == 0:
		kind = app.FaultUnavailable
	}
	return &app.ProviderError{Kind: kind, StatusCode: status, OutcomeUnknown: status >= 500, Err: apiError{se}}
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
