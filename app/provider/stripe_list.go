package provider

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/stripe/stripe-go/v83"
	"github.com/stripe/stripe-go/v83/form"

	"github.com/spillway/spillway/app"
)

// maxStripeListLimit is the most PaymentIntents Stripe lists per page.
const maxStripeListLimit = 100

// ListCharges lists PaymentIntents created after createdAfter, one page of
// at most 100, continuing after the intent id after. Reference is the
// intent's metadata[reference]; Next is the page's last id when Stripe has
// more.
//
// Order: Stripe lists newest first and its cursor (starting_after) walks
// towards older intents, so unlike the generic contract these pages run
// newest to oldest. A walk from "" until Next is "" still visits every
// intent created after createdAfter exactly once; intents created during
// the walk land before its cursor and are seen by the next sweep, as they
// are still after createdAfter.
//
// Stripe's created is whole seconds: a createdAfter with a fraction is
// rounded down and compared with gte, so an intent in that same second is
// listed rather than missed (the sweep matches by reference, and listing a
// charge twice costs nothing; missing one loses an orphan).
//
// Status is "succeeded" for succeeded and requires_capture, "processing"
// for processing (Stripe will settle it but it cannot be refunded yet),
// "refunded" once its latest charge is refunded, and "declined" for the
// statuses outcomeOf calls declined; an intent in any other status is
// listed as "processing", so the sweep leaves it for later rather than
// act on it.
func (s *Stripe) ListCharges(ctx context.Context, createdAfter time.Time, after string, limit int) (app.ChargePage, error) {
	if limit <= 0 || limit > maxStripeListLimit {
		limit = maxStripeListLimit
	}
	params := &stripe.PaymentIntentListParams{ListParams: stripe.ListParams{Limit: stripe.Int64(int64(limit))}}
	if secs := createdAfter.Unix(); secs > 0 {
		if createdAfter.Equal(time.Unix(secs, 0)) {
			params.CreatedRange = &stripe.RangeQueryParams{GreaterThan: secs}
		} else {
			params.CreatedRange = &stripe.RangeQueryParams{GreaterThanOrEqual: secs}
		}
	}
	if after != "" {
		params.StartingAfter = stripe.String(after)
	}
	// Whether each intent's money was refunded is on its charge.
	params.AddExpand("data.latest_charge")

	tctx, tr := traceSend(ctx)
	params.Context = tctx
	// One page and its has_more: the typed List iterator hides has_more and
	// fetches the next page on its own, so this makes the one request that
	// iterator makes first, the same way (form-encode the params, CallRaw).
	svc := s.client.V1PaymentIntents
	query := &form.Values{}
	form.AppendTo(query, params)
	var list stripe.PaymentIntentList
	if err := svc.B.CallRaw(http.MethodGet, "/v1/payment_intents", svc.Key, []byte(query.Encode()), params.GetParams(), &list); err != nil {
		return app.ChargePage{}, stripeFault(ctx, err, tr)
	}
	return pageOfIntents(&list, after)
}

// pageOfIntents maps one page of PaymentIntents. Intents without an id
// cannot be acted on and are left out. A page that says there is more but
// gives no new cursor (empty, or ending on the cursor we sent) is
// FaultUnavailable: ending the walk there would hide the rest, and
// repeating the cursor would page for ever.
func pageOfIntents(list *stripe.PaymentIntentList, after string) (app.ChargePage, error) {
	page := app.ChargePage{Charges: make([]app.ProviderCharge, 0, len(list.Data))}
	last := ""
	for _, pi := range list.Data {
		if pi == nil || pi.ID == "" {
			continue
		}
		last = pi.ID
		page.Charges = append(page.Charges, app.ProviderCharge{
			ID:        pi.ID,
			Reference: pi.Metadata[metadataReference],
			Amount:    max(pi.Amount, 0),
			Currency:  currencyCode(string(pi.Currency)),
			Status:    listedStatus(pi),
			CreatedAt: time.Unix(pi.Created, 0).UTC(),
		})
	}
	if list.HasMore {
		if last == "" || last == after {
			return app.ChargePage{}, &app.ProviderError{Kind: app.FaultUnavailable, StatusCode: http.StatusOK,
				Err: fmt.Errorf("stripe: payment intent list has more but no new cursor after %q", clip(after))}
		}
		page.Next = last
	}
	return page, nil
}

// listedStatus is a PaymentIntent's app.ProviderCharge status; see
// ListCharges.
func listedStatus(pi *stripe.PaymentIntent) string {
	if c := pi.LatestCharge; c != nil && c.Refunded {
		return "refunded"
	}
	switch outcome, _ := outcomeOf(pi); {
	case pi.Status == stripe.PaymentIntentStatusProcessing:
		return "processing"
	case outcome == intentCharged:
		return "succeeded"
	case outcome == intentDeclined:
		return "declined"
	default:
		return "processing"
	}
}
