package notify

import (
	"math"
	"testing"
)

func TestFormatAmount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		amount   int64
		currency string
		want     string
	}{
		{amount: 1999, currency: "usd", want: "USD 19.99"},
		{amount: 5, currency: "EUR", want: "EUR 0.05"},
		{amount: 0, currency: "gbp", want: "GBP 0.00"},
		{amount: 199999, currency: "usd", want: "USD 1,999.99"},
		{amount: 99999999999, currency: "usd", want: "USD 999,999,999.99"},
		{amount: 500, currency: "jpy", want: "JPY 500"},
		{amount: 1234567, currency: "krw", want: "KRW 1,234,567"},
		{amount: 1500, currency: "kwd", want: "KWD 1.500"},
		{amount: 7, currency: "bhd", want: "BHD 0.007"},
		{amount: 12345, currency: "clf", want: "CLF 1.2345"},
		{amount: 1999, currency: "xyz", want: "XYZ 19.99"}, // unknown: two decimals
		{amount: -1999, currency: "usd", want: "USD -19.99"},
		{amount: math.MinInt64, currency: "jpy", want: "JPY -9,223,372,036,854,775,808"},
		{amount: 1999, currency: "", want: "19.99"},
	}
	for _, tt := range tests {
		if got := FormatAmount(tt.amount, tt.currency); got != tt.want {
			t.Errorf("FormatAmount(%d, %q) = %q, want %q", tt.amount, tt.currency, got, tt.want)
		}
	}
}
