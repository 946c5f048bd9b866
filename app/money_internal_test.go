package app

import "testing"

// Every code in the minor-unit table is one the API accepts: a typo there
// would silently format that currency with two decimals.
func TestMinorUnitTableNamesKnownCurrencies(t *testing.T) {
	t.Parallel()
	for cur := range minorUnitDigits {
		if !KnownCurrency(cur) {
			t.Errorf("%s has a minor-unit entry but is not a known currency", cur)
		}
	}
}
