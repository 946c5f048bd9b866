package provider_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/spillway/spillway/app"
)

// TestStripeLookupListRefundAgainstStripeMock checks the requests against
// Stripe's OpenAPI spec (stripe-mock refuses unknown or malformed
// parameters) and the mapping of its fixture answers
// (testdata/stripe-mock-fixtures.json). stripe-mock is stateless: it does
// not search or list what was charged, it answers the fixture.
func TestStripeLookupListRefundAgainstStripeMock(t *testing.T) {
	t.Parallel()
	p := newStripe(t, startStripeMock(t), "sk_test_123")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	t.Run("lookup", func(t *testing.T) {
		got, err := p.Lookup(ctx, "op-1'quoted\\")
		if err != nil {
			t.Fatalf("Lookup: %v", err)
		}
		if want := (app.ChargeLookup{Status: app.LookupSucceeded, ProviderRef: "pi_spillway_fixture"}); got != want {
			t.Errorf("lookup = %+v, want %+v", got, want)
		}
	})
	t.Run("list", func(t *testing.T) {
		for _, tt := range []struct {
			after        string
			limit        int
			createdAfter time.Time
		}{
			{createdAfter: time.Unix(1600000000, 0)},
			{createdAfter: time.Unix(1600000000, 5e8), after: "pi_previous", limit: 500},
			{limit: 5},
		} {
			page, err := p.ListCharges(ctx, tt.createdAfter, tt.after, tt.limit)
			if err != nil {
				t.Fatalf("ListCharges(%v, %q, %d): %v", tt.createdAfter, tt.after, tt.limit, err)
			}
			want := app.ProviderCharge{ID: "pi_spillway_fixture", Reference: "order-42", Amount: 1000, Currency: "usd", Status: "succeeded", CreatedAt: time.Unix(1700000000, 0).UTC()}
			if len(page.Charges) != 1 || page.Charges[0] != want || page.Next != "" {
				t.Errorf("page = %+v, want just %+v", page, want)
			}
		}
	})
	t.Run("refund", func(t *testing.T) {
		for _, id := range []string{"pi_spillway_fixture", "ch_spillway_fixture"} {
			got, err := p.Refund(ctx, id, "refund-op-1")
			if err != nil {
				t.Fatalf("Refund(%s): %v", id, err)
			}
			if got.Status != "refunded" || got.ID == "" {
				t.Errorf("Refund(%s) = %+v", id, got)
			}
		}
	})
}

// stripeRecorder answers every request with status and body and hands
// the request (form parsed) to the test.
func stripeRecorder(t *testing.T, status int, body string) (*httptest.Server, <-chan *http.Request) {
	t.Helper()
	reqs := make(chan *http.Request, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		r.Form, _ = url.ParseQuery(r.URL.RawQuery)
		r.PostForm, _ = url.ParseQuery(string(b))
		reqs <- r
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, reqs
}

func TestStripeLookupRequestAndMapping(t *testing.T) {
	t.Parallel()
	pi := func(id, status string, created int64) string {
		return fmt.Sprintf(`{"id":%q,"object":"payment_intent","status":%q,"created":%d}`, id, status, created)
	}
	search := func(items ...string) string {
		list := ""
		for i, it := range items {
			if i > 0 {
				list += ","
			}
			list += it
		}
		return `{"object":"search_result","has_more":false,"data":[` + list + `]}`
	}
	tests := []struct {
		name       string
		status     int
		body       string
		want       app.ChargeLookup
		wantKind   app.FaultKind
		wantStatus int
		unknown    bool
	}{
		{name: "none found: not found, key not closed", status: 200, body: search(), want: app.ChargeLookup{Status: app.LookupNotFound}},
		{name: "succeeded", status: 200, body: search(pi("pi_1", "succeeded", 1)), want: app.ChargeLookup{Status: app.LookupSucceeded, ProviderRef: "pi_1"}},
		{name: "processing is a charge", status: 200, body: search(pi("pi_1", "processing", 1)), want: app.ChargeLookup{Status: app.LookupSucceeded, ProviderRef: "pi_1"}},
		{name: "requires_capture is a charge", status: 200, body: search(pi("pi_1", "requires_capture", 1)), want: app.ChargeLookup{Status: app.LookupSucceeded, ProviderRef: "pi_1"}},
		{name: "canceled is a decline", status: 200, body: search(pi("pi_1", "canceled", 1)), want: app.ChargeLookup{Status: app.LookupDeclined, ProviderRef: "pi_1", DeclineCode: "canceled"}},
		{name: "requires_action is a decline", status: 200, body: search(pi("pi_1", "requires_action", 1)), want: app.ChargeLookup{Status: app.LookupDeclined, ProviderRef: "pi_1", DeclineCode: "authentication_required"}},
		{name: "requires_payment_method carries its code", status: 200,
			body: search(`{"id":"pi_1","object":"payment_intent","status":"requires_payment_method","last_payment_error":{"type":"card_error","decline_code":"insufficient_funds"}}`),
			want: app.ChargeLookup{Status: app.LookupDeclined, ProviderRef: "pi_1", DeclineCode: "insufficient_funds"}},
		{name: "a succeeded one wins over declines", status: 200,
			body: search(pi("pi_d1", "canceled", 3), pi("pi_ok", "succeeded", 1), pi("pi_p", "processing", 2)),
			want: app.ChargeLookup{Status: app.LookupSucceeded, ProviderRef: "pi_ok"}},
		{name: "the newest decline", status: 200,
			body: search(pi("pi_old", "canceled", 1), pi("pi_new", "requires_action", 5)),
			want: app.ChargeLookup{Status: app.LookupDeclined, ProviderRef: "pi_new", DeclineCode: "authentication_required"}},
		{name: "only a strange intent", status: 200, body: search(pi("pi_1", "requires_confirmation", 1)), wantKind: app.FaultRejected},
		{name: "500 is unavailable and unknown", status: 500, body: `{"error":{"type":"api_error","message":"x"}}`, wantKind: app.FaultUnavailable, wantStatus: 500, unknown: true},
		{name: "400", status: 400, body: `{"error":{"type":"invalid_request_error","message":"bad query"}}`, wantKind: app.FaultRejected, wantStatus: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, reqs := stripeRecorder(t, tt.status, tt.body)
			got, err := newStripe(t, srv.URL, "sk_test_123").Lookup(context.Background(), `op-1'x\`)
			r := <-reqs
			if r.Method != http.MethodGet || r.URL.Path != "/v1/payment_intents/search" {
				t.Errorf("request %s %s", r.Method, r.URL.Path)
			}
			if q, want := r.Form.Get("query"), `metadata['operation_id']:'op-1\'x\\'`; q != want {
				t.Errorf("query = %s, want %s", q, want)
			}
			if l := r.Form.Get("limit"); l != "10" {
				t.Errorf("limit = %q, want 10", l)
			}
			if tt.wantKind != "" {
				assertFault(t, err, tt.wantKind, tt.wantStatus)
				assertOutcome(t, err, tt.wantKind, tt.unknown)
				return
			}
			if err != nil {
				t.Fatalf("Lookup: %v", err)
			}
			if got != tt.want {
				t.Errorf("lookup = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestStripeListRequestAndMapping(t *testing.T) {
	t.Parallel()
	body := `{"object":"list","has_more":true,"url":"/v1/payment_intents","data":[
		{"id":"pi_3","object":"payment_intent","status":"succeeded","amount":300,"currency":"eur","created":1700000003,"metadata":{"reference":"op-3"},"latest_charge":{"id":"ch_3","object":"charge","refunded":true}},
		{"id":"pi_2","object":"payment_intent","status":"processing","amount":200,"currency":"usd","created":1700000002,"metadata":{}},
		{"id":"pi_1","object":"payment_intent","status":"canceled","amount":100,"currency":"usd","created":1700000001,"metadata":{"reference":"op-1"}}]}`
	srv, reqs := stripeRecorder(t, 200, body)
	page, err := newStripe(t, srv.URL, "sk_test_123").ListCharges(context.Background(), time.Unix(1700000000, 0), "pi_9", 50)
	if err != nil {
		t.Fatalf("ListCharges: %v", err)
	}
	r := <-reqs
	want := map[string]string{"created[gt]": "1700000000", "limit": "50", "starting_after": "pi_9", "expand[0]": "data.latest_charge"}
	for k, v := range want {
		if got := r.Form.Get(k); got != v {
			t.Errorf("%s = %q, want %q (query %s)", k, got, v, r.URL.RawQuery)
		}
	}
	if r.Method != http.MethodGet || r.URL.Path != "/v1/payment_intents" {
		t.Errorf("request %s %s", r.Method, r.URL.Path)
	}
	wantPage := []app.ProviderCharge{
		{ID: "pi_3", Reference: "op-3", Amount: 300, Currency: "eur", Status: "refunded", CreatedAt: time.Unix(1700000003, 0).UTC()},
		{ID: "pi_2", Amount: 200, Currency: "usd", Status: "processing", CreatedAt: time.Unix(1700000002, 0).UTC()},
		{ID: "pi_1", Reference: "op-1", Amount: 100, Currency: "usd", Status: "declined", CreatedAt: time.Unix(1700000001, 0).UTC()},
	}
	if len(page.Charges) != len(wantPage) || page.Next != "pi_1" {
		t.Fatalf("page = %+v, want 3 charges and next pi_1", page)
	}
	for i := range wantPage {
		if page.Charges[i] != wantPage[i] {
			t.Errorf("charge %d = %+v, want %+v", i, page.Charges[i], wantPage[i])
		}
	}
}

// TestStripeListCreatedBound: whole seconds are compared strictly; a
// moment inside a second lists that whole second rather than miss an
// intent Stripe stamped with it.
func TestStripeListCreatedBound(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		after time.Time
		limit int
		want  map[string]string
	}{
		{name: "whole second", after: time.Unix(1700000000, 0), want: map[string]string{"created[gt]": "1700000000", "limit": "100"}},
		{name: "inside a second", after: time.Unix(1700000000, 999), limit: 1000, want: map[string]string{"created[gte]": "1700000000", "limit": "100"}},
		{name: "zero time: no bound", want: map[string]string{"created[gt]": "", "created[gte]": "", "limit": "100"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, reqs := stripeRecorder(t, 200, `{"object":"list","has_more":false,"data":[]}`)
			page, err := newStripe(t, srv.URL, "sk_test_123").ListCharges(context.Background(), tt.after, "", tt.limit)
			if err != nil || len(page.Charges) != 0 || page.Next != "" {
				t.Fatalf("ListCharges = %+v, %v", page, err)
			}
			r := <-reqs
			for k, v := range tt.want {
				if got := r.Form.Get(k); got != v {
					t.Errorf("%s = %q, want %q (query %s)", k, got, v, r.URL.RawQuery)
				}
			}
		})
	}
}

func TestStripeRefundRequestAndMapping(t *testing.T) {
	t.Parallel()
	refund := func(status string) string {
		return fmt.Sprintf(`{"id":"re_1","object":"refund","status":%q}`, status)
	}
	tests := []struct {
		name       string
		chargeID   string
		status     int
		body       string
		wantField  string
		want       app.RefundResult
		wantKind   app.FaultKind
		wantStatus int
	}{
		{name: "succeeded", chargeID: "pi_1", status: 200, body: refund("succeeded"), wantField: "payment_intent", want: app.RefundResult{ID: "re_1", Status: "refunded"}},
		{name: "pending counts as refunded", chargeID: "pi_1", status: 200, body: refund("pending"), wantField: "payment_intent", want: app.RefundResult{ID: "re_1", Status: "refunded"}},
		{name: "a charge id", chargeID: "ch_1", status: 200, body: refund("succeeded"), wantField: "charge", want: app.RefundResult{ID: "re_1", Status: "refunded"}},
		{name: "failed", chargeID: "pi_1", status: 200, body: refund("failed"), wantField: "payment_intent", wantKind: app.FaultRejected, wantStatus: 200},
		{name: "canceled", chargeID: "pi_1", status: 200, body: refund("canceled"), wantField: "payment_intent", wantKind: app.FaultRejected, wantStatus: 200},
		{name: "no id", chargeID: "pi_1", status: 200, body: `{"object":"refund","status":"succeeded"}`, wantField: "payment_intent", wantKind: app.FaultUnavailable, wantStatus: 200},
		{name: "already refunded", chargeID: "pi_1", status: 400, wantField: "payment_intent",
			body: `{"error":{"type":"invalid_request_error","code":"charge_already_refunded","message":"x"}}`, wantKind: app.FaultRejected, wantStatus: 400},
		{name: "key reused for another refund", chargeID: "pi_1", status: 400, wantField: "payment_intent",
			body: `{"error":{"type":"idempotency_error","message":"x"}}`, wantKind: app.FaultConflict, wantStatus: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, reqs := stripeRecorder(t, tt.status, tt.body)
			got, err := newStripe(t, srv.URL, "sk_test_123").Refund(context.Background(), tt.chargeID, "refund-key")
			r := <-reqs
			if r.Method != http.MethodPost || r.URL.Path != "/v1/refunds" || r.Header.Get("Idempotency-Key") != "refund-key" {
				t.Errorf("request %s %s key %q", r.Method, r.URL.Path, r.Header.Get("Idempotency-Key"))
			}
			if got := r.PostForm.Get(tt.wantField); got != tt.chargeID || len(r.PostForm) != 1 {
				t.Errorf("form = %v, want only %s=%s", r.PostForm, tt.wantField, tt.chargeID)
			}
			if tt.wantKind != "" {
				assertFault(t, err, tt.wantKind, tt.wantStatus)
				return
			}
			if err != nil {
				t.Fatalf("Refund: %v", err)
			}
			if got != tt.want {
				t.Errorf("refund = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestStripeNewActionsRefuseEmptyInput(t *testing.T) {
	t.Parallel()
	p := newStripe(t, "http://127.0.0.1:9", "sk_test_123") // never dialled
	_, err := p.Lookup(context.Background(), "")
	assertOutcome(t, err, app.FaultRejected, false)
	_, err = p.Refund(context.Background(), "", "k")
	assertOutcome(t, err, app.FaultRejected, false)
	_, err = p.Refund(context.Background(), "pi_1", "")
	assertOutcome(t, err, app.FaultRejected, false)
}
