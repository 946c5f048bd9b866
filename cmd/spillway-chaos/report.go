package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
)

// report is a run's table, as printed and as written to CHAOS_OUT.
type report struct {
	Started string  `json:"started"` // RFC 3339, UTC
	Seconds float64 `json:"seconds"`
	Timing  struct {
		Rate    float64 `json:"rate_per_s"`
		WarmS   float64 `json:"warm_s"`
		FaultS  float64 `json:"fault_s"`
		AfterS  float64 `json:"after_s"`
		DrainS  float64 `json:"drain_limit_s"`
		Budgets struct {
			PaymentMs float64 `json:"payment_ms"`
			OrderMs   float64 `json:"order_ms"`
		} `json:"budgets"`
	} `json:"timing"`
	Rows []row `json:"rows"`
	OK   bool  `json:"ok"` // no row lost, duplicated or contradicted anything
}

func newReport(t timing) *report {
	r := &report{OK: true}
	r.Timing.Rate, r.Timing.WarmS, r.Timing.FaultS = t.Rate, t.Warm.Seconds(), t.Fault.Seconds()
	r.Timing.AfterS, r.Timing.DrainS = t.After.Seconds(), t.Drain.Seconds()
	r.Timing.Budgets.PaymentMs, r.Timing.Budgets.OrderMs = ms(budget("payment")), ms(budget("order"))
	return r
}

func (r *report) add(rw row) {
	r.Rows = append(r.Rows, rw)
	if rw.failed() {
		r.OK = false
	}
}

// Format prints the table: one row per scenario, then each failing row's
// examples.
func (r *report) Format(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	// tabwriter aligns every column right; the names read better on the
	// left, so they are padded here.
	width := len("scenario")
	for _, rw := range r.Rows {
		width = max(width, len(rw.Scenario))
	}
	fmt.Fprintf(tw, "%-*s\tsent\tacknowledged\tsync\tasync\tlost\tduplicated\twrong\tundocumented\tp99\tover budget\trecover\t\n", width, "scenario")
	for _, rw := range r.Rows {
		fmt.Fprintf(tw, "%-*s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%d\t%s\t\n", width, rw.Scenario, rw.Sent, rw.Acknowledged,
			rw.Sync, rw.Async, rw.Lost, rw.Duplicated, rw.Wrong, rw.Undocumented, formatMs(rw.P99Ms), rw.OverBudget, formatRecover(rw.RecoverMs))
	}
	_ = tw.Flush() // w's own errors are the caller's business, as with fmt.Fprint
	for _, rw := range r.Rows {
		if len(rw.Problems) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s:\n", rw.Scenario)
		for _, p := range rw.Problems {
			fmt.Fprintf(w, "  %s\n", p)
		}
	}
}

func formatMs(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%.2fs", v/1000)
	}
	return fmt.Sprintf("%.0fms", v)
}

func formatRecover(v float64) string {
	switch {
	case v < 0:
		return "never"
	case v == 0:
		return "-"
	}
	return formatMs(v)
}

// WriteJSON writes the report to path, creating its directory.
func (r *report) WriteJSON(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
