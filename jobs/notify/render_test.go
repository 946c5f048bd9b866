package notify

import (
	"strings"
	"testing"
	"time"
)

func TestRenderPaymentEmail(t *testing.T) {
	t.Parallel()
	completed := time.Date(2026, 3, 4, 5, 6, 0, 0, time.FixedZone("CET", 3600))
	tests := []struct {
		name      string
		notice    PaymentNotice
		subject   string
		inText    []string
		inHTML    []string
		notInHTML []string
		notInText []string
		wantErr   bool
	}{
		{
			name: "succeeded with everything",
			notice: PaymentNotice{
				OperationID: "op-1", Status: "succeeded", Amount: 1999, Currency: "usd",
				Description: `Order <b>#1</b> "gift"`, StatusURL: "http://127.0.0.1:8080/o/op-1?a=1&b=2", CompletedAt: completed,
			},
			subject:   "Payment succeeded: USD 19.99",
			inText:    []string{"Your payment of USD 19.99 succeeded.", `Order <b>#1</b> "gift"`, "op-1", "4 March 2026, 04:06 UTC", "http://127.0.0.1:8080/o/op-1?a=1&b=2"},
			inHTML:    []string{"USD 19.99", "Order &lt;b&gt;#1&lt;/b&gt; &#34;gift&#34;", `href="http://127.0.0.1:8080/o/op-1?a=1&amp;b=2"`, "4 March 2026, 04:06 UTC"},
			notInHTML: []string{"<b>#1"},
		},
		{
			name:      "declined in yen, no description",
			notice:    PaymentNotice{OperationID: "op-2", Status: "declined", Amount: 500, Currency: "jpy", StatusURL: "http://127.0.0.1/o/op-2"},
			subject:   "Payment declined: JPY 500",
			inText:    []string{"JPY 500 was declined."},
			inHTML:    []string{"JPY 500", "was declined"},
			notInText: []string{"Description", "Completed"},
			notInHTML: []string{"Description", "Completed"},
		},
		{
			name:    "queued",
			notice:  PaymentNotice{OperationID: "op-3", Status: "queued", Amount: 4200, Currency: "eur"},
			subject: "Payment received: EUR 42.00",
			inText:  []string{"EUR 42.00 is queued for processing."},
		},
		{
			name:      "unknown status still reads",
			notice:    PaymentNotice{OperationID: "op-4", Status: "on\nhold", Amount: 1, Currency: "usd"},
			subject:   "Payment update: USD 0.01",
			inText:    []string{"is now on hold"},
			notInText: []string{"See its status"},
		},
		{
			name:      "script link is neutralised in HTML",
			notice:    PaymentNotice{OperationID: "op-5", Status: "failed", Amount: 1, Currency: "usd", StatusURL: "javascript:alert(1)"},
			subject:   "Payment failed: USD 0.01",
			notInHTML: []string{"javascript:"},
		},
		{name: "no currency", notice: PaymentNotice{Status: "succeeded", Amount: 1}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			subject, text, html, err := RenderPaymentEmail(tt.notice)
			if tt.wantErr {
				if err == nil {
					t.Fatal("want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if subject != tt.subject {
				t.Errorf("subject = %q, want %q", subject, tt.subject)
			}
			for _, s := range tt.inText {
				if !strings.Contains(text, s) {
					t.Errorf("text lacks %q:\n%s", s, text)
				}
			}
			for _, s := range tt.notInText {
				if strings.Contains(text, s) {
					t.Errorf("text has %q:\n%s", s, text)
				}
			}
			for _, s := range tt.inHTML {
				if !strings.Contains(html, s) {
					t.Errorf("HTML lacks %q:\n%s", s, html)
				}
			}
			for _, s := range tt.notInHTML {
				if strings.Contains(html, s) {
					t.Errorf("HTML has %q:\n%s", s, html)
				}
			}
		})
	}
}

func TestRenderPaymentSMS(t *testing.T) {
	t.Parallel()
	url := "https://pay.shop.example/api/v1/operations/7f8d6829-0000-4000-8000-000000000001"
	for status := range statusWords {
		t.Run(status, func(t *testing.T) {
			t.Parallel()
			msg := RenderPaymentSMS(PaymentNotice{
				Status: status, Amount: 199999, Currency: "usd", StatusURL: url,
				Description: "never in an SMS",
			})
			if len(msg) > 160 {
				t.Errorf("%d characters, over one segment: %s", len(msg), msg)
			}
			if !strings.Contains(msg, "USD 1,999.99") || !strings.Contains(msg, url) || !strings.Contains(msg, statusWords[status].phrase) {
				t.Errorf("lacks amount, link or status: %s", msg)
			}
			if strings.Contains(msg, "never in an SMS") {
				t.Errorf("carries the description: %s", msg)
			}
		})
	}
}
