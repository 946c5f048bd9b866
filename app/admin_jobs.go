package app

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// JobTab is one of the admin's views of River's jobs.
type JobTab string

const (
	TabPending     JobTab = "pending" // available, scheduled (and River's pending)
	TabRunning     JobTab = "running"
	TabRetryable   JobTab = "retryable"
	TabFailed      JobTab = "failed" // River's discarded: attempts exhausted or failed for good
	TabCancelled   JobTab = "cancelled"
	TabCompleted   JobTab = "completed"
	TabPrioritized JobTab = "prioritized" // priority 1–2 still waiting, in the order workers take them
)

// JobTabs lists the tabs in display order.
var JobTabs = []JobTab{TabPending, TabPrioritized, TabRunning, TabRetryable, TabFailed, TabCancelled, TabCompleted}

// States are the River job states a tab shows.
func (t JobTab) States() []string {
	switch t {
	case TabPending:
		return []string{"available", "scheduled", "pending"}
	case TabRunning:
		return []string{"running"}
	case TabRetryable:
		return []string{"retryable"}
	case TabFailed:
		return []string{"discarded"}
	case TabCancelled:
		return []string{"cancelled"}
	case TabCompleted:
		return []string{"completed"}
	case TabPrioritized:
		return WaitingStates
	}
	return nil
}

// WorkerOrder reports whether the tab lists jobs in the order workers will
// take them (priority, scheduled_at, id) rather than newest first.
func (t JobTab) WorkerOrder() bool { return t == TabPending || t == TabPrioritized }

// JobFilter narrows a job list. It round-trips through a query string, so
// a filtered page, its next page and a bulk action on it all mean the
// same set.
type JobFilter struct {
	Tab         JobTab
	Kind        string
	Queue       string
	Priority    int // 0: any
	OperationID *uuid.UUID
	Email       string
	MinAmount   int64 // minor units; 0: no bound
	MaxAmount   int64
	Within      time.Duration // created within this long before now; 0: any time
}

// Withins are the offered "created within" choices.
var Withins = []time.Duration{15 * time.Minute, time.Hour, 24 * time.Hour, 7 * 24 * time.Hour}

// ParseJobFilter reads and validates a filter from a query string; the
// error names the bad field.
func ParseJobFilter(q url.Values) (JobFilter, error) {
	f := JobFilter{Tab: JobTab(q.Get("tab"))}
	if f.Tab == "" {
		f.Tab = TabPending
	}
	if f.Tab.States() == nil {
		return f, FieldErrorf("tab", "unknown tab %q", q.Get("tab"))
	}
	f.Kind = strings.TrimSpace(q.Get("kind"))
	f.Queue = strings.TrimSpace(q.Get("queue"))
	if len(f.Kind) > 128 || len(f.Queue) > 128 {
		return f, FieldErrorf("kind", "kind and queue are at most 128 characters")
	}
	if !utf8.ValidString(f.Kind + f.Queue + q.Get("email")) {
		// Postgres refuses invalid UTF-8; say so here rather than fail there.
		return f, FieldErrorf("kind", "filters must be valid UTF-8 text")
	}
	if s := strings.TrimSpace(q.Get("priority")); s != "" {
		p, err := ParsePriority(s)
		if err != nil {
			return f, err
		}
		f.Priority = p
	}
	if s := strings.TrimSpace(q.Get("op")); s != "" {
		id, err := uuid.Parse(s)
		if err != nil {
			return f, FieldErrorf("op", "operation id %q is not a UUID", s)
		}
		f.OperationID = &id
	}
	f.Email = strings.ToLower(strings.TrimSpace(q.Get("email")))
	if len(f.Email) > 254 {
		return f, FieldErrorf("email", "email is at most 254 characters")
	}
	var err error
	if f.MinAmount, err = parseAmountBound(q.Get("min"), "min"); err != nil {
		return f, err
	}
	if f.MaxAmount, err = parseAmountBound(q.Get("max"), "max"); err != nil {
		return f, err
	}
	if f.MinAmount > 0 && f.MaxAmount > 0 && f.MinAmount > f.MaxAmount {
		return f, FieldErrorf("min", "minimum amount %d is above the maximum %d", f.MinAmount, f.MaxAmount)
	}
	if s := strings.TrimSpace(q.Get("within")); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 || d > 366*24*time.Hour {
			return f, FieldErrorf("within", "within must be a duration like 1h, not %q", s)
		}
		f.Within = d
	}
	return f, nil
}

func parseAmountBound(s, field string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, FieldErrorf(field, "%s amount must be a whole number of minor units (100000 = 1 000.00), not %q", field, s)
	}
	return n, nil
}

// ParsePriority accepts River priorities 1 (highest) to 4.
func ParsePriority(s string) (int, error) {
	p, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || p < 1 || p > 4 {
		return 0, FieldErrorf("priority", "priority must be 1 (highest) to 4, not %q", s)
	}
	return p, nil
}

// Query returns the filter as query parameters (tab included).
func (f JobFilter) Query() url.Values {
	q := url.Values{}
	q.Set("tab", string(f.Tab))
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("kind", f.Kind)
	set("queue", f.Queue)
	if f.Priority > 0 {
		q.Set("priority", strconv.Itoa(f.Priority))
	}
	if f.OperationID != nil {
		q.Set("op", f.OperationID.String())
	}
	set("email", f.Email)
	if f.MinAmount > 0 {
		q.Set("min", strconv.FormatInt(f.MinAmount, 10))
	}
	if f.MaxAmount > 0 {
		q.Set("max", strconv.FormatInt(f.MaxAmount, 10))
	}
	if f.Within > 0 {
		q.Set("within", f.Within.String())
	}
	return q
}

// String describes the filter for people and the audit log.
func (f JobFilter) String() string {
	parts := []string{string(f.Tab) + " jobs"}
	add := func(format string, args ...any) { parts = append(parts, fmt.Sprintf(format, args...)) }
	if f.Kind != "" {
		add("kind %s", f.Kind)
	}
	if f.Queue != "" {
		add("queue %s", f.Queue)
	}
	if f.Priority > 0 {
		add("priority %d", f.Priority)
	}
	if f.OperationID != nil {
		add("operation %s", f.OperationID)
	}
	if f.Email != "" {
		add("customer %s", f.Email)
	}
	if f.MinAmount > 0 {
		add("amount ≥ %d", f.MinAmount)
	}
	if f.MaxAmount > 0 {
		add("amount ≤ %d", f.MaxAmount)
	}
	if f.Within > 0 {
		add("created in the last %s", f.Within)
	}
	return strings.Join(parts, ", ")
}

// Label is the action in words, for buttons and the audit log.
func (a JobAction) Label() string {
	switch a {
	case ActionReprioritize:
		return "change priority"
	case ActionRetry:
		return "retry"
	case ActionCancel:
		return "cancel"
	case ActionRunNow:
		return "run now"
	}
	return string(a)
}
