package notify

import (
	"strconv"
	"strings"
)

// minorUnitDigits lists the ISO 4217 currencies whose minor unit is not
// two digits. Amounts arrive in minor units, so getting this wrong would
// tell a customer they paid a hundred times too much (or too little).
var minorUnitDigits = map[string]int{
	// No minor unit.
	"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0,
	"KRW": 0, "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0,
	"XAF": 0, "XOF": 0, "XPF": 0,
	// Thousandths.
	"BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
	// Ten-thousandths (units of account).
	"CLF": 4, "UYW": 4,
}

// FormatAmount renders an amount given in minor units in major units, with
// the currency code upper-cased in front and thousands grouped with commas:
// FormatAmount(199999, "usd") is "USD 1,999.99", FormatAmount(500, "jpy")
// is "JPY 500". Currencies not in the table are taken to have two decimals,
// as most do.
func FormatAmount(amount int64, currency string) string {
	code := strings.ToUpper(strings.TrimSpace(currency))
	digits, ok := minorUnitDigits[code]
	if !ok {
		digits = 2
	}

	// Work on the magnitude as uint64 so that math.MinInt64 has one too.
	neg := amount < 0
	mag := uint64(amount)
	if neg {
		mag = -mag
	}
	s := strconv.FormatUint(mag, 10)
	if len(s) <= digits {
		s = strings.Repeat("0", digits-len(s)+1) + s
	}
	whole, frac := s[:len(s)-digits], s[len(s)-digits:]

	var b strings.Builder
	if code != "" {
		b.WriteString(code)
		b.WriteByte(' ')
	}
	if neg {
		b.WriteByte('-')
	}
	for i, c := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if digits > 0 {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	return b.String()
}
