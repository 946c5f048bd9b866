package provider

import (
	"testing"

	"github.com/stripe/stripe-go/v83"

	"github.com/spillway/spillway/app"
)

func TestSearchQueryEscapes(t *testing.T) {
	t.Parallel()
	tests := []struct{ value, want string }{
		{"0b9c7e4a-6d1e-4c3f-9a53-2f0e0f5b7a11", `metadata['operation_id']:'0b9c7e4a-6d1e-4c3f-9a53-2f0e0f5b7a11'`},
		{`it's`, `metadata['operation_id']:'it\'s'`},
		{`ends\`, `metadata['operation_id']:'ends\\'`},
		{`\'`, `metadata['operation_id']:'\\\''`},
		{``, `metadata['operation_id']:''`},
	}
	for _, tt := range tests {
		if got := searchQuery(metadataOperationID, tt.value); got != tt.want {
			t.Errorf("searchQuery(%q) = %s, want %s", tt.value, got, tt.want)
		}
	}
}

func TestListedStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pi   stripe.PaymentIntent
		want string
	}{
		{stripe.PaymentIntent{Status: stripe.PaymentIntentStatusSucceeded}, "succeeded"},
		{stripe.PaymentIntent{Status: stripe.PaymentIntentStatusRequiresCapture}, "succeeded"},
		{stripe.PaymentIntent{Status: stripe.PaymentIntentStatusProcessing}, "processing"},
		{stripe.PaymentIntent{Status: stripe.PaymentIntentStatusSucceeded, LatestCharge: &stripe.Charge{Refunded: true}}, "refunded"},
		{stripe.PaymentIntent{Status: stripe.PaymentIntentStatusSucceeded, LatestCharge: &stripe.Charge{}}, "succeeded"},
		{stripe.PaymentIntent{Status: stripe.PaymentIntentStatusCanceled}, "declined"},
		{stripe.PaymentIntent{Status: stripe.PaymentIntentStatusRequiresPaymentMethod}, "declined"},
		{stripe.PaymentIntent{Status: stripe.PaymentIntentStatusRequiresAction}, "declined"},
		{stripe.PaymentIntent{Status: stripe.PaymentIntentStatusRequiresConfirmation}, "processing"},
		{stripe.PaymentIntent{Status: "something_new"}, "processing"},
	}
	for _, tt := range tests {
		if got := listedStatus(&tt.pi); got != tt.want {
			t.Errorf("listedStatus(%s, refunded %v) = %q, want %q", tt.pi.Status, tt.pi.LatestCharge != nil && tt.pi.LatestCharge.Refunded, got, tt.want)
		}
	}
}

func TestLookupOfIntentsIgnoresIntentsWithoutID(t *testing.T) {
	t.Parallel()
	got, err := lookupOfIntents([]*stripe.PaymentIntent{nil, {Status: stripe.PaymentIntentStatusSucceeded}})
	if err != nil || got != (app.ChargeLookup{Status: app.LookupNotFound}) {
		t.Errorf("lookup = %+v, %v; want not found", got, err)
	}
}

func TestPageOfIntentsNext(t *testing.T) {
	t.Parallel()
	pi := func(id string) *stripe.PaymentIntent {
		return &stripe.PaymentIntent{ID: id, Status: stripe.PaymentIntentStatusSucceeded}
	}
	tests := []struct {
		name      string
		list      stripe.PaymentIntentList
		after     string
		want      string
		wantFault bool
	}{
		{name: "more: last id", list: stripe.PaymentIntentList{ListMeta: stripe.ListMeta{HasMore: true}, Data: []*stripe.PaymentIntent{pi("pi_2"), pi("pi_1")}}, want: "pi_1"},
		{name: "no more", list: stripe.PaymentIntentList{Data: []*stripe.PaymentIntent{pi("pi_2")}}, want: ""},
		{name: "more but empty page", list: stripe.PaymentIntentList{ListMeta: stripe.ListMeta{HasMore: true}}, wantFault: true},
		{name: "more but repeats the cursor", after: "pi_1", list: stripe.PaymentIntentList{ListMeta: stripe.ListMeta{HasMore: true}, Data: []*stripe.PaymentIntent{pi("pi_1")}}, wantFault: true},
		{name: "last without id skipped", list: stripe.PaymentIntentList{ListMeta: stripe.ListMeta{HasMore: true}, Data: []*stripe.PaymentIntent{pi("pi_2"), {}}}, want: "pi_2"},
	}
	for _, tt := range tests {
		page, err := pageOfIntents(&tt.list, tt.after)
		if tt.wantFault {
			if pe, ok := err.(*app.ProviderError); !ok || pe.Kind != app.FaultUnavailable {
				t.Errorf("%s: err = %v, want FaultUnavailable", tt.name, err)
			}
			continue
		}
		if err != nil || page.Next != tt.want {
			t.Errorf("%s: next = %q, %v; want %q", tt.name, page.Next, err, tt.want)
		}
	}
}
