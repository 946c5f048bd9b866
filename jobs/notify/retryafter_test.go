package notify

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 12, 0, 0, 250_000_000, time.UTC)
	date := func(d time.Duration) string { return now.Add(d).UTC().Format(http.TimeFormat) }
	tests := []struct {
		in   string
		want time.Duration
	}{
		{in: "", want: 0},
		{in: "0", want: 0},
		{in: "120", want: 2 * time.Minute},
		{in: " 7 ", want: 7 * time.Second},
		{in: "86400", want: 24 * time.Hour},
		{in: "86401", want: maxRetryAfter},
		{in: "99999999999999999999999", want: maxRetryAfter}, // overflows uint64: capped, not ignored
		{in: "-5", want: 0},
		{in: "1.5", want: 0},
		{in: "soon", want: 0},
		// The date has whole seconds and now does not: round up, never early.
		{in: date(90 * time.Second), want: 90 * time.Second},
		{in: date(-time.Hour), want: 0},
		{in: date(48 * time.Hour), want: maxRetryAfter},
		{in: "Mon, 01 Jan 0001 00:00:00 GMT", want: 0},
		{in: "Fri, 31 Dec 9999 23:59:59 GMT", want: maxRetryAfter},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"", "0", "120", "-1", "1e3", "99999999999999999999",
		"Wed, 21 Oct 2015 07:28:00 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"} {
		f.Add(s)
	}
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d := parseRetryAfter(v, now)
		if d < 0 || d > maxRetryAfter {
			t.Fatalf("parseRetryAfter(%q) = %v, outside [0, %v]", v, d, maxRetryAfter)
		}
		if d%time.Second != 0 {
			t.Fatalf("parseRetryAfter(%q) = %v, not whole seconds", v, d)
		}
		// A plain number of seconds means exactly that, up to the cap.
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 && isDigits(v) {
			want := min(time.Duration(min(n, int64(maxRetryAfter/time.Second)))*time.Second, maxRetryAfter)
			if d != want {
				t.Fatalf("parseRetryAfter(%q) = %v, want %v", v, d, want)
			}
		}
	})
}
