package provider_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/apptest"
	"github.com/spillway/spillway/app/provider"
)

func newStripe(t *testing.T, base, key string) *provider.Stripe {
	t.Helper()
	p, err := provider.NewStripe(provider.StripeConfig{APIBase: base, SecretKey: key})
	if err != nil {
		t.Fatalf("NewStripe: %v", err)
	}
	return p
}

func testCharge(key string) app.Charge {
	return app.Charge{IdempotencyKey: key, Amount: 1000, Currency: "usd", Reference: "order-42", Description: "test charge"}
}

// TestStripeAgainstStripeMock checks the request against Stripe's real
// OpenAPI spec: stripe-mock rejects unknown or malformed parameters.
func TestStripeAgainstStripeMock(t *testing.T) {
	t.Parallel()
	base := startStripeMock(t)

	tests := []struct {
		name       string
		key        string
		charge     app.Charge
		wantKind   app.FaultKind // "" → success
		wantStatus int
	}{
		{name: "success", key: "sk_test_123", charge: testCharge("op-1")},
		{name: "upper-case currency", key: "sk_test_123", charge: app.Charge{IdempotencyKey: "op-2", Amount: 50, Currency: "USD"}},
		{name: "bad key rejected", key: "not-a-key", charge: testCharge("op-4"), wantKind: app.FaultRejected, wantStatus: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), guard)
			defer cancel()
			res, err := newStripe(t, base, tt.key).Charge(ctx, tt.charge)
			if tt.wantKind == "" {
				if err != nil {
					t.Fatalf("Charge: %v", err)
				}
				if res.Declined || !strings.HasPrefix(res.ProviderRef, "pi_") {
					t.Errorf("result = %+v, want success with a pi_ ref", res)
				}
				return
			}
			assertFault(t, err, tt.wantKind, tt.wantStatus)
		})
	}
}

// stripeServer answers every PaymentIntent create with status and body,
// after checking the request is the one Charge must send.
func stripeServer(t *testing.T, status int, body string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := checkStripeRequest(r); err != nil {
			t.Errorf("request: %v", err)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func checkStripeRequest(r *http.Request) error {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/payment_intents" {
		return fmt.Errorf("got %s %s", r.Method, r.URL.Path)
	}
	if got := r.Header.Get("Idempotency-Key"); got != "op-1" {
		return fmt.Errorf("Idempotency-Key = %q", got)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer sk_test_123" {
		return fmt.Errorf("Authorization = %q", got)
	}
	if err := r.ParseForm(); err != nil {
		return err
	}
	want := map[string]string{
		"amount":                  "1000",
		"currency":                "usd",
		"confirm":                 "true",
		"payment_method":          "pm_card_visa",
		"payment_method_types[0]": "card",
		"metadata[reference]":     "order-42",
		"metadata[operation_id]":  "op-1",
	}
	for k, v := range want {
		if got := r.PostForm.Get(k); got != v {
			return fmt.Errorf("form %s = %q, want %q (form %v)", k, got, v, r.PostForm)
		}
	}
	// A retry under the same key may carry an edited description; Stripe
	// would refuse it as an idempotency_error, so it is never sent.
	if r.PostForm.Has("description") {
		return fmt.Errorf("form carries description %q, want none", r.PostForm.Get("description"))
	}
	return nil
}

func TestStripeMapping(t *testing.T) {
	t.Parallel()
	pi := func(status, extra string) string {
		return fmt.Sprintf(`{"id":"pi_1","object":"payment_intent","status":%q%s}`, status, extra)
	}
	stripeErr := func(typ, code, decline string) string {
		return fmt.Sprintf(`{"error":{"type":%q,"code":%q,"decline_code":%q,"message":"boom","payment_intent":{"id":"pi_err"}}}`, typ, code, decline)
	}
	tests := []struct {
		name       string
		status     int
		body       string
		want       app.ChargeResult
		wantKind   app.FaultKind
		wantStatus int
	}{
		{name: "succeeded", status: 200, body: pi("succeeded", ""), want: app.ChargeResult{ProviderRef: "pi_1"}},
		{name: "succeeded says what it charged", status: 200, body: pi("succeeded", `,"amount":1000,"currency":"usd"`), want: app.ChargeResult{ProviderRef: "pi_1", Amount: 1000, Currency: "usd"}},
		{name: "decline says what it tried", status: 402, body: `{"error":{"type":"card_error","code":"card_declined","payment_intent":{"id":"pi_err","amount":1000,"currency":"usd"}}}`, want: app.ChargeResult{Declined: true, ProviderRef: "pi_err", DeclineCode: "card_declined", Amount: 1000, Currency: "usd"}},
		{name: "processing counts as success", status: 200, body: pi("processing", ""), want: app.ChargeResult{ProviderRef: "pi_1"}},
		{name: "requires_capture counts as success", status: 200, body: pi("requires_capture", ""), want: app.ChargeResult{ProviderRef: "pi_1"}},
		{name: "requires_payment_method is a decline", status: 200, body: pi("requires_payment_method", `,"last_payment_error":{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds"}`), want: app.ChargeResult{Declined: true, ProviderRef: "pi_1", DeclineCode: "insufficient_funds"}},
		{name: "requires_payment_method without error", status: 200, body: pi("requires_payment_method", ""), want: app.ChargeResult{Declined: true, ProviderRef: "pi_1", DeclineCode: "payment_failed"}},
		{name: "requires_action is a decline", status: 200, body: pi("requires_action", ""), want: app.ChargeResult{Declined: true, ProviderRef: "pi_1", DeclineCode: "authentication_required"}},
		{name: "canceled is a decline", status: 200, body: pi("canceled", ""), want: app.ChargeResult{Declined: true, ProviderRef: "pi_1", DeclineCode: "canceled"}},
		{name: "requires_confirmation is rejected", status: 200, body: pi("requires_confirmation", ""), wantKind: app.FaultRejected, wantStatus: 200},
		{name: "no id is unavailable", status: 200, body: `{"object":"payment_intent","status":"succeeded"}`, wantKind: app.FaultUnavailable, wantStatus: 200},
		{name: "card error decline code", status: 402, body: stripeErr("card_error", "card_declined", "generic_decline"), want: app.ChargeResult{Declined: true, ProviderRef: "pi_err", DeclineCode: "generic_decline"}},
		{name: "card error code only", status: 402, body: stripeErr("card_error", "expired_card", ""), want: app.ChargeResult{Declined: true, ProviderRef: "pi_err", DeclineCode: "expired_card"}},
		{name: "500 api error", status: 500, body: stripeErr("api_error", "", ""), wantKind: app.FaultUnavailable, wantStatus: 500},
		{name: "503 not JSON", status: 503, body: `<html>bad gateway</html>`, wantKind: app.FaultUnavailable},
		{name: "429 rate limit", status: 429, body: stripeErr("invalid_request_error", "rate_limit", ""), wantKind: app.FaultUnavailable, wantStatus: 429},
		{name: "409 key in use", status: 409, body: stripeErr("idempotency_error", "idempotency_key_in_use", ""), wantKind: app.FaultUnavailable, wantStatus: 409},
		{name: "400 key reused with other params", status: 400, body: stripeErr("idempotency_error", "", ""), wantKind: app.FaultConflict, wantStatus: 400},
		{name: "400 invalid request", status: 400, body: stripeErr("invalid_request_error", "parameter_missing", ""), wantKind: app.FaultRejected, wantStatus: 400},
		{name: "401 bad key", status: 401, body: stripeErr("invalid_request_error", "", ""), wantKind: app.FaultRejected, wantStatus: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := stripeServer(t, tt.status, tt.body)
			res, err := newStripe(t, srv.URL, "sk_test_123").Charge(context.Background(), testCharge("op-1"))
			if tt.wantKind != "" {
				assertFault(t, err, tt.wantKind, tt.wantStatus)
				return
			}
			if err != nil {
				t.Fatalf("Charge: %v", err)
			}
			if res != tt.want {
				t.Errorf("result = %+v, want %+v", res, tt.want)
			}
		})
	}
}

func TestStripeTransportFaults(t *testing.T) {
	t.Parallel()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Consuming the body lets the server notice the client leaving,
		// which ends this handler (and srv.Close). It never answers, so
		// the client's deadline always passes first.
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}))
	t.Cleanup(slow.Close)
	// Held for the test, so no other listener can be given the port.
	gone := "http://" + apptest.RefusingAddr(t)

	tests := []struct {
		name     string
		base     string
		timeout  time.Duration
		charge   app.Charge
		wantKind app.FaultKind
	}{
		{name: "deadline is a timeout", base: slow.URL, timeout: 100 * time.Millisecond, charge: testCharge("op-1"), wantKind: app.FaultTimeout},
		{name: "connection refused is unavailable", base: gone, timeout: guard, charge: testCharge("op-1"), wantKind: app.FaultUnavailable},
		{name: "no idempotency key is rejected", base: slow.URL, timeout: guard, charge: app.Charge{Amount: 1, Currency: "usd"}, wantKind: app.FaultRejected},
		{name: "zero amount is rejected", base: slow.URL, timeout: guard, charge: app.Charge{IdempotencyKey: "k", Currency: "usd"}, wantKind: app.FaultRejected},
		{name: "no currency is rejected", base: slow.URL, timeout: guard, charge: app.Charge{IdempotencyKey: "k", Amount: 1}, wantKind: app.FaultRejected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			_, err := newStripe(t, tt.base, "sk_test_123").Charge(ctx, tt.charge)
			assertFault(t, err, tt.wantKind, 0)
		})
	}
}

func TestNewStripeValidates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     provider.StripeConfig
		wantErr bool
	}{
		{name: "default base", cfg: provider.StripeConfig{SecretKey: "sk_test_123"}},
		{name: "custom base", cfg: provider.StripeConfig{SecretKey: "sk_test_123", APIBase: "http://127.0.0.1:12111/"}},
		{name: "no key", cfg: provider.StripeConfig{}, wantErr: true},
		{name: "relative base", cfg: provider.StripeConfig{SecretKey: "k", APIBase: "localhost:12111"}, wantErr: true},
		{name: "ftp base", cfg: provider.StripeConfig{SecretKey: "k", APIBase: "ftp://127.0.0.1"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := provider.NewStripe(tt.cfg)
			if (err != nil) != tt.wantErr {
				t.Errorf("err = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

// assertFault checks err is an *app.ProviderError of kind, and of HTTP
// status when status is not 0.
func assertFault(t *testing.T, err error, kind app.FaultKind, status int) {
	t.Helper()
	var pe *app.ProviderError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v (%T), want *app.ProviderError", err, err)
	}
	if pe.Kind != kind {
		t.Errorf("kind = %q, want %q (err %v)", pe.Kind, kind, err)
	}
	if status != 0 && pe.StatusCode != status {
		t.Errorf("status = %d, want %d (err %v)", pe.StatusCode, status, err)
	}
	if msg := err.Error(); strings.Contains(msg, "%!") {
		t.Errorf("malformed error message %q", msg)
	}
}
