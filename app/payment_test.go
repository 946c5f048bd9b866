package app_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/spillway/spillway/app"
)

func TestParsePaymentRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		body  string
		code  string // "" means valid
		field string
	}{
		{"minimal", `{"amount": 1999, "currency": "usd"}`, "", ""},
		{"full", `{"amount": 1999, "currency": "USD", "customer": {"email": "a@b.example", "phone": "+15551234567"}, "description": "tea", "callback_url": "https://x.example/cb"}`, "", ""},
		{"null customer", `{"amount": 1, "currency": "eur", "customer": null}`, "", ""},
		{"malformed", `{"amount": 1999,`, app.EBADREQUEST, ""},
		{"empty", ``, app.EBADREQUEST, ""},
		{"not an object", `[1,2]`, app.EINVALID, ""},
		{"trailing data", `{"amount": 1, "currency": "usd"} {}`, app.EBADREQUEST, ""},
		{"missing amount", `{"currency": "usd"}`, app.EINVALID, "amount"},
		{"amount string", `{"amount": "1999", "currency": "usd"}`, app.EINVALID, "amount"},
		{"amount fraction", `{"amount": 19.99, "currency": "usd"}`, app.EINVALID, "amount"},
		{"amount exponent", `{"amount": 1e3, "currency": "usd"}`, app.EINVALID, "amount"},
		{"amount zero", `{"amount": 0, "currency": "usd"}`, app.EINVALID, "amount"},
		{"amount negative", `{"amount": -5, "currency": "usd"}`, app.EINVALID, "amount"},
		{"amount huge", `{"amount": 100000000000, "currency": "usd"}`, app.EINVALID, "amount"},
		{"amount overflow", `{"amount": 99999999999999999999999, "currency": "usd"}`, app.EINVALID, "amount"},
		{"amount null", `{"amount": null, "currency": "usd"}`, app.EINVALID, "amount"},
		{"amount bool", `{"amount": true, "currency": "usd"}`, app.EINVALID, "amount"},
		{"missing currency", `{"amount": 1}`, app.EINVALID, "currency"},
		{"unknown currency", `{"amount": 1, "currency": "usx"}`, app.EINVALID, "currency"},
		{"currency number", `{"amount": 1, "currency": 840}`, app.EINVALID, "currency"},
		{"unknown field", `{"amount": 1, "currency": "usd", "ammount": 2}`, app.EINVALID, "ammount"},
		{"bad email", `{"amount": 1, "currency": "usd", "customer": {"email": "nope"}}`, app.EINVALID, "customer.email"},
		{"named email", `{"amount": 1, "currency": "usd", "customer": {"email": "Bob <b@x.example>"}}`, app.EINVALID, "customer.email"},
		{"bad phone", `{"amount": 1, "currency": "usd", "customer": {"phone": "555-1234"}}`, app.EINVALID, "customer.phone"},
		{"customer string", `{"amount": 1, "currency": "usd", "customer": "bob"}`, app.EINVALID, "customer"},
		{"customer unknown field", `{"amount": 1, "currency": "usd", "customer": {"name": "bob"}}`, app.EINVALID, "customer.name"},
		{"description too long", `{"amount": 1, "currency": "usd", "description": "` + strings.Repeat("x", 1001) + `"}`, app.EINVALID, "description"},
		{"description control", `{"amount": 1, "currency": "usd", "description": "a\u0000b"}`, app.EINVALID, "description"},
		{"callback ftp", `{"amount": 1, "currency": "usd", "callback_url": "ftp://x.example"}`, app.EINVALID, "callback_url"},
		{"callback relative", `{"amount": 1, "currency": "usd", "callback_url": "/cb"}`, app.EINVALID, "callback_url"},
		{"callback with password", `{"amount": 1, "currency": "usd", "callback_url": "https://u:p@x.example/"}`, app.EINVALID, "callback_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := app.ParsePaymentRequest([]byte(tt.body))
			if tt.code == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			var e *app.Error
			if !errors.As(err, &e) {
				t.Fatalf("want *app.Error %s, got %v", tt.code, err)
			}
			if e.Code != tt.code || (tt.field != "" && e.Field != tt.field) {
				t.Fatalf("got code %s field %q (%s); want %s field %q", e.Code, e.Field, e.Message, tt.code, tt.field)
			}
		})
	}
}

func TestFingerprintIgnoresFormatting(t *testing.T) {
	t.Parallel()
	a, err := app.ParsePaymentRequest([]byte(`{"amount":1999,"currency":"usd","description":"tea"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := app.ParsePaymentRequest([]byte(`{ "description": "tea",  "currency": "USD", "amount": 1999 }`))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := app.ParsePaymentRequest([]byte(`{"amount":2000,"currency":"usd","description":"tea"}`))
	if !bytes.Equal(a.Fingerprint(), b.Fingerprint()) {
		t.Fatal("same request, different fingerprints")
	}
	if bytes.Equal(a.Fingerprint(), c.Fingerprint()) {
		t.Fatal("different amounts, same fingerprint")
	}
	if app.OperationID("payments", "k") != app.OperationID("payments", "k") {
		t.Fatal("operation id must be deterministic for the same key")
	}
	if app.OperationID("payments", "k") == app.OperationID("payments", "k2") ||
		app.OperationID("payments", "k") == app.OperationID("orders", "k") {
		t.Fatal("different keys or scopes must give different operation ids")
	}
}

func TestCheckIdempotencyKey(t *testing.T) {
	t.Parallel()
	for key, ok := range map[string]bool{
		"":                       false,
		"abc":                    true,
		strings.Repeat("k", 255): true,
		strings.Repeat("k", 256): false,
		"has space":              false,
		"tab\t":                  false,
		"ünïcode":                false,
		"order-42:retry_1":       true,
	} {
		if err := app.CheckIdempotencyKey(key); (err == nil) != ok {
			t.Errorf("CheckIdempotencyKey(%q) = %v, want ok=%v", key, err, ok)
		}
	}
}

// FuzzParsePaymentRequest: any body either parses into a request that
// satisfies every invariant, or fails with a coded error; never a panic.
func FuzzParsePaymentRequest(f *testing.F) {
	for _, s := range []string{
		`{"amount": 1999, "currency": "usd"}`,
		`{"amount": 1999, "currency": "usd", "customer": {"email": "a@b.example", "phone": "+15551234567"}, "description": "x", "callback_url": "https://a.example"}`,
		`{"amount": -1}`, `[]`, `null`, `{"amount": 1e400}`, `{"customer": {"email": 5}}`, "\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := app.ParsePaymentRequest(body)
		if err != nil {
			var e *app.Error
			if !errors.As(err, &e) || (e.Code != app.EINVALID && e.Code != app.EBADREQUEST) {
				t.Fatalf("uncoded error %v", err)
			}
			return
		}
		if p.Amount <= 0 || p.Amount > app.MaxAmount || !app.KnownCurrency(p.Currency) {
			t.Fatalf("invalid request accepted: %+v", p)
		}
		if p.Customer != nil && p.Customer.Email == "" && p.Customer.Phone == "" {
			t.Fatalf("empty customer kept: %+v", p)
		}
	})
}
