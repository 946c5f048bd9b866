package notify

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxRetryAfter caps what a receiver can ask for. Retry-After is untrusted
// input, and a receiver saying "come back in a year" should not park a job
// for a year; a day is already longer than any retry schedule we run.
const maxRetryAfter = 24 * time.Hour

// parseRetryAfter reads an HTTP Retry-After value (RFC 9110 §10.2.3):
// either a number of seconds or an HTTP date. It returns 0 when the value
// is missing, malformed or already in the past, meaning "no hint", and
// never more than maxRetryAfter.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if isDigits(v) {
		secs, err := strconv.ParseUint(v, 10, 64)
		// An overflow is still a (huge) number of seconds: cap it rather
		// than ignore it.
		if err != nil || secs > uint64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		return time.Duration(secs) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	d := t.Sub(now)
	switch {
	case d <= 0:
		return 0
	case d >= maxRetryAfter: // also keeps the rounding below from overflowing
		return maxRetryAfter
	}
	// HTTP dates have whole seconds while now does not: round up so that we
	// never come back before the moment the receiver named.
	if r := d % time.Second; r != 0 {
		d += time.Second - r
	}
	return min(d, maxRetryAfter)
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
