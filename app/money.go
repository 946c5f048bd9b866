package app

import (
	"strconv"
	"strings"
)

// minorUnitDigits lists the ISO 4217 currencies whose minor unit is not
// two digits. Amounts arrive in minor units, so getting this wrong would
// tell a customer they paid a hundred times too much (or too little).
var minorUnitDigits = map[string]int{
	// No minor unit.
	"bif": 0, "clp": 0, "djf": 0, "gnf": 0, "isk": 0, "jpy": 0, "kmf": 0,
	"krw": 0, "pyg": 0, "rwf": 0, "ugx": 0, "uyi": 0, "vnd": 0, "vuv": 0,
	"xaf": 0, "xof": 0, "xpf": 0,
	// Thousandths.
	"bhd": 3, "iqd": 3, "jod": 3, "kwd": 3, "lyd": 3, "omr": 3, "tnd": 3,
	// Ten-thousandths (units of account).
	"clf": 4, "uyw": 4,
}

// MinorUnits is how many decimal digits currency's minor unit has (any
// case): 2 for USD, 0 for JPY, 3 for KWD. Currencies not in the table are
// taken to have two, as most do.
func MinorUnits(currency string) int {
	if d, ok := minorUnitDigits[strings.ToLower(strings.TrimSpace(currency))]; ok {
		return d
	}
	return 2
}

// FormatAmount renders an amount given in minor units in major units, with
// the currency code upper-cased in front and thousands grouped with commas:
// FormatAmount(199999, "usd") is "USD 1,999.99", FormatAmount(500, "jpy")
// is "JPY 500". Emails, SMS and the status page show amounts this way; the
// operator UI puts FormatMajor's number before the code, for its columns.
func FormatAmount(amount int64, currency string) string {
	code := strings.ToUpper(strings.TrimSpace(currency))
	if code == "" {
		return FormatMajor(amount, currency)
	}
	return code + " " + FormatMajor(amount, currency)
}

// FormatMajor is FormatAmount without the code: the amount in major units
// of currency, thousands grouped with commas ("1,999.99", "500").
func FormatMajor(amount int64, currency string) string {
	digits := MinorUnits(currency)
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
