package admin

import "testing"

// Amounts are shown in each currency's own minor units: JPY has none, so
// 500 minor units are 500 yen, not 5.00.
func TestFmtAmountUsesTheCurrencysMinorUnits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		minor    int64
		currency string
		want     string
	}{
		{500, "jpy", "500 JPY"},
		{1999, "usd", "19.99 USD"},
		{199999, "usd", "1,999.99 USD"},
		{1500, "kwd", "1.500 KWD"},
		{-4200, "eur", "-42.00 EUR"},
		{1999, "", ""},
	}
	for _, tt := range tests {
		if got := fmtAmount(tt.minor, tt.currency); got != tt.want {
			t.Errorf("fmtAmount(%d, %q) = %q, want %q", tt.minor, tt.currency, got, tt.want)
		}
	}
}
