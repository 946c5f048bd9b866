package provider

import (
	"context"
	"strings"

	"github.com/stripe/stripe-go/v83"

	"github.com/spillway/spillway/app"
)

// lookupSearchLimit bounds the PaymentIntents one lookup reads. Several
// intents carry the same operation id only if a retry came after Stripe
// forgot the key (24 hours), so a handful is plenty.
const lookupSearchLimit = 10

// Lookup finds the PaymentIntents Charge created under key by searching
// metadata['operation_id'], and says what they did.
//
// Stripe cannot close a key, so "not found" comes with KeyClosed false:
// a request still on the wire may yet create an intent, and Stripe's
// search index lags writes by up to a minute (longer during incidents).
// Callers believe it only once the last attempt is older than
// app.LookupSettle.
//
// A processing intent is LookupSucceeded, as Charge reports it: Stripe has
// accepted the payment and settles it, so it is a charge, and the two
// paths must not resolve the same intent differently. Of several intents
// a charged one wins (the money was taken under this key), else the
// newest decline.
func (s *Stripe) Lookup(ctx context.Context, key string) (app.ChargeLookup, error) {
	if key == "" {
		return app.ChargeLookup{}, rejected("lookup has no idempotency key")
	}
	params := &stripe.PaymentIntentSearchParams{SearchParams: stripe.SearchParams{
		Query:  searchQuery(metadataOperationID, key),
		Limit:  stripe.Int64(lookupSearchLimit),
		Single: true, // one page: lookupSearchLimit is already more than enough
	}}
	tctx, tr := traceSend(ctx)
	var found []*stripe.PaymentIntent
	for pi, err := range s.client.V1PaymentIntents.Search(tctx, params) {
		if err != nil {
			return app.ChargeLookup{}, stripeFault(ctx, err, tr)
		}
		found = append(found, pi)
	}
	return lookupOfIntents(found)
}

// searchQuery is Stripe's search clause metadata['field']:'value'. Inside
// a quoted string Stripe's query language escapes a quote with a
// backslash; the backslash itself is escaped first so a value ending in
// one cannot escape the closing quote.
func searchQuery(field, value string) string {
	esc := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "metadata['" + esc.Replace(field) + "']:'" + esc.Replace(value) + "'"
}

// lookupOfIntents turns the intents found under one key into an answer.
// An intent in a status outcomeOf does not know decides nothing; if only
// such intents were found the answer is FaultRejected, for an operator:
// concluding "nothing charged" from an intent we do not understand could
// fail an operation that did charge.
func lookupOfIntents(found []*stripe.PaymentIntent) (app.ChargeLookup, error) {
	var charged, declined *stripe.PaymentIntent
	var declineCode string
	var strange *stripe.PaymentIntent
	for _, pi := range found {
		if pi == nil || pi.ID == "" {
			continue
		}
		switch outcome, code := outcomeOf(pi); outcome {
		case intentCharged:
			if charged == nil || (pi.Status == stripe.PaymentIntentStatusSucceeded && charged.Status != stripe.PaymentIntentStatusSucceeded) {
				charged = pi
			}
		case intentDeclined:
			if declined == nil || pi.Created > declined.Created {
				declined, declineCode = pi, code
			}
		default:
			strange = pi
		}
	}
	switch {
	case charged != nil:
		return app.ChargeLookup{Status: app.LookupSucceeded, ProviderRef: charged.ID}, nil
	case declined != nil:
		return app.ChargeLookup{Status: app.LookupDeclined, ProviderRef: declined.ID, DeclineCode: declineCode}, nil
	case strange != nil:
		return app.ChargeLookup{}, rejected("stripe: payment intent %s found in status %q", strange.ID, strange.Status)
	default:
		return app.ChargeLookup{Status: app.LookupNotFound}, nil
	}
}
