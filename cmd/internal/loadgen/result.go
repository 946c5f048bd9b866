package loadgen

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"text/tabwriter"
	"time"
)

// Result is what a run measured. Requests counts every finished exchange:
// responses of any status plus transport errors. Requests still in flight
// when the run ends are cancelled and counted nowhere, so the end of the run
// does not show up as a burst of errors.
type Result struct {
	Requests        int64
	Errors          int64 // transport errors: no HTTP response (refused, reset, timeout…)
	Elapsed         time.Duration
	ByStatus        map[int]int64
	Latency         Summary // all responses; transport errors excluded
	LatencyByStatus map[int]Summary
	Throughput      float64 // responses per second
}

// Tick describes the interval that just ended.
type Tick struct {
	At       time.Duration // end of the interval, since the start of the run
	Interval time.Duration // its length; the last one of a run may be short
	Requests int64         // responses plus transport errors
	Errors   int64         // transport errors
	ByStatus map[int]int64
	P50, P99 time.Duration
	Max      time.Duration
}

// Format writes a short human-readable table of r.
func (r Result) Format(w io.Writer) {
	fmt.Fprintf(w, "%d requests in %s, %.1f responses/s, %d transport errors\n",
		r.Requests, r.Elapsed.Round(time.Millisecond), r.Throughput, r.Errors)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "status\tcount\tshare\tmin\tp50\tp90\tp99\tp99.9\tmax\tmean\t")
	row := func(name string, s Summary) {
		share := 0.0
		if r.Requests > 0 {
			share = 100 * float64(s.Count) / float64(r.Requests)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1f%%\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", name, s.Count, share,
			FormatDuration(s.Min), FormatDuration(s.P50), FormatDuration(s.P90), FormatDuration(s.P99),
			FormatDuration(s.P999), FormatDuration(s.Max), FormatDuration(s.Mean))
	}
	for _, code := range slices.Sorted(maps.Keys(r.ByStatus)) {
		row(fmt.Sprint(code), r.LatencyByStatus[code])
	}
	row("all", r.Latency)
	_ = tw.Flush() // w's own errors are the caller's business, as with fmt.Fprint
}

// FormatDuration prints d with three or four significant digits in a unit
// that suits it, which reads better in a table than time.Duration's String.
func FormatDuration(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d)
	case d < time.Millisecond:
		return fmt.Sprintf("%.1fµs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.3fs", d.Seconds())
	}
}
