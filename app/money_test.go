package app_test

import (
	"math"
	"testing"

	"github.com/spillway/spillway/app"
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
		{amount: 500, currency: "JPY", want: "JPY 500"},
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
		if got := app.FormatAmount(tt.amount, tt.currency); got != tt.want {
			t.Errorf("FormatAmount(%d, %q) = %q, want %q", tt.amount, tt.currency, got, tt.want)
		}
	}
}

func TestMinorUnits(t *testing.T) {
	t.Parallel()
	for cur, want := range map[string]int{
		"usd": 2, "EUR": 2, "jpy": 0, "JPY": 0, "krw": 0, "vnd": 0,
		"bhd": 3, "KWD": 3, "tnd": 3, "clf": 4, "uyw": 4, "xyz": 2, "": 2,
	} {
		if got := app.MinorUnits(cur); got != want {
			t.Errorf("MinorUnits(%q) = %d, want %d", cur, got, want)
		}
	}
}

func TestFormatMajor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		amount   int64
		currency string
		want     string
	}{
		{1999, "usd", "19.99"},
		{500, "jpy", "500"},
		{1500, "kwd", "1.500"},
		{-100000, "usd", "-1,000.00"},
	}
	for _, tt := range tests {
		if got := app.FormatMajor(tt.amount, tt.currency); got != tt.want {
			t.Errorf("FormatMajor(%d, %q) = %q, want %q", tt.amount, tt.currency, got, tt.want)
		}
	}
}
