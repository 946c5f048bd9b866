package admin

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/riverqueue/river/rivertype"

	"github.com/spillway/spillway/app"
)

type signInForm struct {
	Email string
	Next  string
	Error string
}

func itoa(n int) string { return strconv.Itoa(n) }

func statusText(code int) string { return http.StatusText(code) }

func navClass(current bool) string {
	if current {
		return "current"
	}
	return ""
}

// fmtTime is an instant as operators read it: UTC, to the second.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func fmtTimePtr(t *time.Time) string {
	if t == nil {
		return "—"
	}
	return fmtTime(*t)
}

// fmtAgo is the distance from then to now in words: "3m ago", "in 12s".
func fmtAgo(then, now time.Time) string {
	if then.IsZero() {
		return ""
	}
	d := now.Sub(then)
	if d < 0 {
		return "in " + fmtDuration(-d)
	}
	return fmtDuration(d) + " ago"
}

// fmtDuration rounds a duration to what a person needs.
func fmtDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func fmtPercent(f float64) string { return fmt.Sprintf("%.1f%%", f*100) }

// fmtAmount is an amount for a numeric column: app.FormatMajor's number
// (minor units per currency, so JPY 500 is "500 JPY"), then the code.
func fmtAmount(minor int64, currency string) string {
	if currency == "" {
		return ""
	}
	return app.FormatMajor(minor, currency) + " " + strings.ToUpper(currency)
}

// prettyJSON indents a JSON document for a <pre>; templ escapes it.
func prettyJSON(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return string(b)
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return string(b)
	}
	return string(out)
}

// compactJSON is a JSON document on one line.
func compactJSON(b []byte) string {
	if len(b) == 0 {
		return "—"
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return string(b)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

func opString(f jobFilter) string {
	if f.OperationID == nil {
		return ""
	}
	return f.OperationID.String()
}

func amountString(n int64) string {
	if n == 0 {
		return ""
	}
	return strconv.FormatInt(n, 10)
}

// queryPairs splits an encoded query into name/value pairs in a stable
// order, for hidden form fields.
func queryPairs(encoded string) [][2]string {
	q, _ := url.ParseQuery(encoded)
	keys := slices.Sorted(maps.Keys(q))
	var out [][2]string
	for _, k := range keys {
		for _, v := range q[k] {
			out = append(out, [2]string{k, v})
		}
	}
	return out
}

func joinStates(states []rivertype.JobState) string {
	s := make([]string, len(states))
	for i, st := range states {
		s[i] = string(st)
	}
	return strings.Join(s, ", ")
}

func pluralWord(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
