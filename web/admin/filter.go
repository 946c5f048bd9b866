package admin

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/riverqueue/river/rivertype"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
)

// JobTab is one of the admin's views of River's jobs.
type JobTab string

const (
	TabPending     JobTab = "pending" // acknowledged and not finished: waiting, retrying or running
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
func (t JobTab) States() []rivertype.JobState {
	switch t {
	case TabPending:
		// Every job that still has to end: a retryable job waiting out a
		// provider that is down is the work an operator most wants to
		// see, so it is pending too; the table says each one's state.
		return pendingStates
	case TabRunning:
		return []rivertype.JobState{rivertype.JobStateRunning}
	case TabRetryable:
		return []rivertype.JobState{rivertype.JobStateRetryable}
	case TabFailed:
		return []rivertype.JobState{rivertype.JobStateDiscarded}
	case TabCancelled:
		return []rivertype.JobState{rivertype.JobStateCancelled}
	case TabCompleted:
		return []rivertype.JobState{rivertype.JobStateCompleted}
	case TabPrioritized:
		return app.WaitingStates
	}
	return nil
}

// pendingStates are the River states of work acknowledged and not
// finished.
var pendingStates = []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStateScheduled,
	rivertype.JobStatePending, rivertype.JobStateRetryable, rivertype.JobStateRunning}

// WorkerOrder reports whether the tab lists jobs in the order workers will
// take them (priority, scheduled_at, id) rather than newest first.
func (t JobTab) WorkerOrder() bool { return t == TabPending || t == TabPrioritized }

func (t JobTab) order() db.JobOrder {
	if t.WorkerOrder() {
		return db.WorkerOrder
	}
	return db.NewestFirst
}

// Label is the tab's name on the page.
func (t JobTab) Label() string {
	switch t {
	case TabFailed:
		return "failed (discarded)"
	case TabPrioritized:
		return "prioritized (1–2)"
	case TabPending:
		return "pending (not finished)"
	}
	return string(t)
}

// withins are the offered "created within" choices.
var withins = []time.Duration{15 * time.Minute, time.Hour, 24 * time.Hour, 7 * 24 * time.Hour}

// jobFilter is a tab and the filter fields the jobs page offers. It
// round-trips through a query string, so a filtered page, its next page
// and a bulk action on it all mean the same set.
type jobFilter struct {
	Tab JobTab
	// The fields the form sets; States and MaxPriority come from the tab
	// (see domain).
	app.JobFilter
}

// domain is the filter the database and the operator service apply.
func (f jobFilter) domain() app.JobFilter {
	d := f.JobFilter
	d.States = f.Tab.States()
	d.MaxPriority = 0
	if f.Tab == TabPrioritized {
		d.MaxPriority = 2
	}
	return d
}

// parseJobFilter reads and validates a filter from a query string; the
// error names the bad field.
func parseJobFilter(q url.Values) (jobFilter, error) {
	f := jobFilter{Tab: JobTab(q.Get("tab"))}
	if f.Tab == "" {
		f.Tab = TabPending
	}
	if f.Tab.States() == nil {
		return f, app.FieldErrorf("tab", "unknown tab %q", q.Get("tab"))
	}
	f.Kind = strings.TrimSpace(q.Get("kind"))
	f.Queue = strings.TrimSpace(q.Get("queue"))
	if len(f.Kind) > 128 || len(f.Queue) > 128 {
		return f, app.FieldErrorf("kind", "kind and queue are at most 128 characters")
	}
	if !utf8.ValidString(f.Kind + f.Queue + q.Get("email")) {
		// Postgres refuses invalid UTF-8; say so here rather than fail there.
		return f, app.FieldErrorf("kind", "filters must be valid UTF-8 text")
	}
	if s := strings.TrimSpace(q.Get("priority")); s != "" {
		p, err := app.ParsePriority(s)
		if err != nil {
			return f, err
		}
		f.Priority = p
	}
	if s := strings.TrimSpace(q.Get("op")); s != "" {
		id, err := uuid.Parse(s)
		if err != nil {
			return f, app.FieldErrorf("op", "operation id %q is not a UUID", s)
		}
		f.OperationID = &id
	}
	f.Email = strings.ToLower(strings.TrimSpace(q.Get("email")))
	if len(f.Email) > 254 {
		return f, app.FieldErrorf("email", "email is at most 254 characters")
	}
	var err error
	if f.MinAmount, err = parseAmountBound(q.Get("min"), "min"); err != nil {
		return f, err
	}
	if f.MaxAmount, err = parseAmountBound(q.Get("max"), "max"); err != nil {
		return f, err
	}
	if f.MinAmount > 0 && f.MaxAmount > 0 && f.MinAmount > f.MaxAmount {
		return f, app.FieldErrorf("min", "minimum amount %d is above the maximum %d", f.MinAmount, f.MaxAmount)
	}
	if s := strings.TrimSpace(q.Get("dependency")); s != "" {
		dep, err := app.ParseDependency(s)
		if err != nil {
			return f, err
		}
		f.Dependency = dep
	}
	if s := strings.TrimSpace(q.Get("within")); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 || d > 366*24*time.Hour {
			return f, app.FieldErrorf("within", "within must be a duration like 1h, not %q", s)
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
		return 0, app.FieldErrorf(field, "%s amount must be a whole number of minor units (100000 = 1 000.00), not %q", field, s)
	}
	return n, nil
}

// Query returns the filter as query parameters (tab included).
func (f jobFilter) Query() url.Values {
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
	set("dependency", f.Dependency)
	return q
}

// String describes the filter for people and the audit log.
func (f jobFilter) String() string {
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
	if f.Dependency != "" {
		add("calling %s", f.Dependency)
	}
	return strings.Join(parts, ", ")
}

// actionLabel is the action in words, for buttons and messages.
func actionLabel(a app.JobAction) string {
	switch a {
	case app.ActionReprioritize:
		return "change priority"
	case app.ActionRetry:
		return "retry"
	case app.ActionCancel:
		return "cancel"
	case app.ActionRunNow:
		return "run now"
	}
	return string(a)
}
