package app_test

import (
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
