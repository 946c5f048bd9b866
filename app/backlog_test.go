package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/spillway/spillway/app"
)

// A backlog is over its bound at the count or the age, whichever it
// reaches first; a zero in either means no bound on it.
func TestBacklogBoundExceeded(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name  string
		bound app.BacklogBound
		bl    app.Backlog
		over  bool
		why   string
	}{
		{"under both", app.BacklogBound{MaxJobs: 10, MaxAge: time.Minute}, app.Backlog{Jobs: 9, Oldest: now.Add(-59 * time.Second)}, false, ""},
		{"at the count", app.BacklogBound{MaxJobs: 10}, app.Backlog{Jobs: 10, Oldest: now}, true, "10 jobs wait"},
		{"at the age", app.BacklogBound{MaxJobs: 10, MaxAge: time.Minute}, app.Backlog{Jobs: 1, Oldest: now.Add(-time.Minute)}, true, "waited 1m0s"},
		{"no bound", app.BacklogBound{}, app.Backlog{Jobs: 1 << 20, Oldest: now.Add(-24 * time.Hour)}, false, ""},
		{"empty", app.BacklogBound{MaxJobs: 1, MaxAge: time.Second}, app.Backlog{}, false, ""},
	}
	for _, tt := range tests {
		why, over := tt.bound.Exceeded(tt.bl, now)
		if over != tt.over || !strings.Contains(why, tt.why) || (!over && why != "") {
			t.Errorf("%s: Exceeded = %q, %v; want over %v saying %q", tt.name, why, over, tt.over, tt.why)
		}
	}
}

// fixedBacklog is a backlog per queue that a test sets between readings.
type fixedBacklog map[string]int

func (f fixedBacklog) QueueBacklog(_ context.Context, queue string) (app.Backlog, error) {
	return app.Backlog{Jobs: f[queue]}, nil
}

// The trend is the net change over the readings of the last
// BacklogTrendSpan: not judged until they span ten seconds, and a reading
// older than the span no longer counts once a newer one starts it.
func TestBacklogTrendIsTheNetChangeOverTheLastSpan(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	jobs := fixedBacklog{"q": 100}
	b := app.NewBacklogBounds(app.BacklogConfig{Reader: jobs, Bounds: []app.BacklogBound{{Dependency: "d", Queue: "q"}},
		Now: func() time.Time { return now }})
	read := func(n int, after time.Duration) {
		now = now.Add(after)
		jobs["q"] = n
		b.Refresh(context.Background())
	}
	read(100, 0)
	read(99, 5*time.Second)
	if _, _, ok := b.Trend("d"); ok {
		t.Error("judged a trend from 5 s of readings")
	}
	read(40, 55*time.Second) // −60 in a minute
	if v, over, ok := b.Trend("d"); !ok || over != time.Minute || v != -1 {
		t.Errorf("Trend = %v/s over %v (%v), want −1/s over 1m", v, over, ok)
	}
	// Five minutes on the backlog has grown by 30 from the reading that
	// now starts the span (the one a minute in); the first is forgotten.
	read(70, 5*time.Minute)
	if v, over, ok := b.Trend("d"); !ok || over != 5*time.Minute || v != 0.1 {
		t.Errorf("Trend = %v/s over %v (%v), want +0.1/s over 5m", v, over, ok)
	}
	if _, _, ok := b.Trend("other"); ok {
		t.Error("a dependency never read has a trend")
	}
}
