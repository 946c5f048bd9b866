package shop

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/spillway/spillway/app"
)

func TestParseCheckout(t *testing.T) {
	t.Parallel()
	const key = "0b5c7a3e-3f5e-4b0e-9a55-2f3c2b1c9d10"
	tests := []struct {
		name       string
		form       string
		wantErrors []string // the fields with an error
		wantLines  int
	}{
		{"one line", "form_key=" + key + "&email=a%40b.co&sku=sku-tea&quantity=2", nil, 1},
		{"empty lines left out", "form_key=" + key + "&email=a%40b.co&sku=sku-tea&quantity=2&sku=&quantity=&sku=&quantity=0", nil, 1},
		{"phone", "form_key=" + key + "&email=a%40b.co&phone=%2B15551234567&sku=sku-tea&quantity=1", nil, 1},
		{"no lines", "form_key=" + key + "&email=a%40b.co&sku=&quantity=", []string{"lines"}, 0},
		{"no email", "form_key=" + key + "&sku=sku-tea&quantity=1", []string{"email"}, 1},
		{"bad email", "form_key=" + key + "&email=Ann+%3Ca%40b.co%3E&sku=sku-tea&quantity=1", []string{"email"}, 1},
		{"bad phone", "form_key=" + key + "&email=a%40b.co&phone=555&sku=sku-tea&quantity=1", []string{"phone"}, 1},
		{"zero quantity with a product", "form_key=" + key + "&email=a%40b.co&sku=sku-tea&quantity=0", []string{"line-0"}, 1},
		{"huge quantity", "form_key=" + key + "&email=a%40b.co&sku=sku-tea&quantity=1001", []string{"line-0"}, 1},
		{"quantity without product", "form_key=" + key + "&email=a%40b.co&sku=&quantity=3", []string{"line-0"}, 1},
		{"duplicate line", "form_key=" + key + "&email=a%40b.co&sku=sku-tea&quantity=1&sku=sku-tea&quantity=2", []string{"line-1"}, 2},
		{"mismatched pairs", "form_key=" + key + "&email=a%40b.co&sku=sku-tea&quantity=1&sku=sku-mug", []string{"lines"}, 1},
		{"no key", "email=a%40b.co&sku=sku-tea&quantity=1", []string{"form"}, 1},
		{"a key that is no key", "form_key=%3Cscript%3E&email=a%40b.co&sku=sku-tea&quantity=1", []string{"form"}, 1},
		{"a price sent", "form_key=" + key + "&email=a%40b.co&sku=sku-tea&quantity=1&price=1", nil, 1},
	}
	for _, tt := range tests {
		v, err := url.ParseQuery(tt.form)
		if err != nil {
			t.Fatal(err)
		}
		f, req := ParseCheckout(v, "usd")
		var got []string
		for k := range f.Errors {
			got = append(got, k)
		}
		if len(got) != len(tt.wantErrors) || len(f.Lines) != tt.wantLines {
			t.Errorf("%s: errors %v (want on %v), %d lines (want %d)", tt.name, f.Errors, tt.wantErrors, len(f.Lines), tt.wantLines)
			continue
		}
		for _, k := range tt.wantErrors {
			if f.Errors[k] == "" {
				t.Errorf("%s: no error on %s: %v", tt.name, k, f.Errors)
			}
		}
		if len(tt.wantErrors) == 0 && (req.Customer == nil || len(req.Lines) != tt.wantLines) {
			t.Errorf("%s: request %+v", tt.name, req)
		}
	}
}

// The form decoder takes anything a browser, or anyone, sends. Whatever
// it is, it answers without panicking, and a form it accepts is an order
// the API would accept too: the same rules, however the order arrives.
func FuzzParseCheckout(f *testing.F) {
	for _, s := range []string{
		"form_key=0b5c7a3e-3f5e-4b0e-9a55-2f3c2b1c9d10&email=a%40b.co&sku=sku-tea&quantity=2",
		"form_key=0b5c7a3e-3f5e-4b0e-9a55-2f3c2b1c9d10&email=a%40b.co&sku=sku-tea&quantity=1&sku=sku-mug&quantity=3&phone=%2B15551234567",
		"sku=sku-tea&sku=sku-tea&quantity=1&quantity=-1&email=%00",
		"quantity=99999999999999999999&sku=" + strings.Repeat("a", 400),
		"form_key=&email=&phone=&sku=&quantity=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		form, req := ParseCheckout(v, "usd")
		for _, l := range form.Lines {
			if len(l.SKU) > maxFieldLen || len(l.Quantity) > maxFieldLen {
				t.Fatalf("a field kept longer than %d", maxFieldLen)
			}
		}
		if len(form.Errors) > 0 {
			return
		}
		body, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := app.ParseOrderRequest(body); err != nil {
			t.Fatalf("the form accepted %q, which the API refuses: %v", raw, err)
		}
	})
}

func TestAgeInWords(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		0: "just now", 4 * time.Second: "just now", 5 * time.Second: "5 seconds ago", time.Minute: "1 minute ago",
		3*time.Minute + 59*time.Second: "3 minutes ago", 2 * time.Hour: "2 hours ago", 47 * time.Hour: "47 hours ago",
		72 * time.Hour: "3 days ago",
	} {
		if got := Ago(d); got != want {
			t.Errorf("Ago(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestRefreshGrowsWithDistress(t *testing.T) {
	t.Parallel()
	for level, want := range map[int]int{-1: 5, 0: 5, 1: 10, 2: 20, 3: 40, 4: 60, 9: 60} {
		if got := RefreshSeconds(level); got != want {
			t.Errorf("RefreshSeconds(%d) = %d, want %d", level, got, want)
		}
	}
}

// An order's page never reads as failed while its outcome is unknown, and
// says what it waits for.
func TestOrderWords(t *testing.T) {
	t.Parallel()
	now := time.Now()
	steps := func(statuses ...app.StepStatus) []app.Step {
		s := app.NewOrderSteps([]app.OrderLine{{SKU: "sku-tea", Quantity: 1}})
		for i, st := range statuses {
			s[i].Status = st
		}
		return s
	}
	customer := &app.Customer{Email: "ann@example.com"}
	tests := []struct {
		name string
		op   app.Operation
		want string
	}{
		{"waiting for payment", app.Operation{Status: app.StatusQueued, Mode: app.ModeAsync, Steps: steps(app.StepSucceeded, app.StepPending),
			Payment: app.PaymentRequest{Customer: customer}}, "Payment is slow right now; we'll email you at ann@example.com"},
		{"waiting for stock", app.Operation{Status: app.StatusQueued, Mode: app.ModeAsync, Steps: steps(app.StepPending, app.StepPending)},
			"Our stock system is slow right now"},
		{"unknown", app.Operation{Status: app.StatusProcessing, Mode: app.ModeAsync, OutcomeUnknownSince: &now,
			Steps: steps(app.StepSucceeded, app.StepProcessing)}, "you will not be charged twice"},
		{"out of stock", app.Operation{Status: app.StatusDeclined, Error: &app.OperationError{Code: "out_of_stock",
			Message: "a line is out of stock; nothing was charged and every reservation was released"}},
			"A line is out of stock; nothing was charged and every reservation was released."},
		{"confirmed", app.Operation{Status: app.StatusSucceeded, Payment: app.PaymentRequest{Amount: 450, Currency: "usd"}},
			"taken the payment of USD 4.50"},
	}
	for _, tt := range tests {
		h, d := orderWords(&tt.op)
		if !strings.Contains(h+" "+d, tt.want) {
			t.Errorf("%s: %q %q; want %q", tt.name, h, d, tt.want)
		}
		if tt.op.MayHaveCharged() && strings.Contains(h+d, "did not go through") {
			t.Errorf("%s: an unknown outcome reads as failed", tt.name)
		}
	}
}
