package admin_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
)

// A query cut off by its statement_timeout (here: waiting on a lock an
// ALTER TABLE would hold) leaves its section saying it could not be read
// in time; the rest of the page renders, and the answer is 200, not 500.
func TestSectionsOverTheirTimeoutDegradeThePage(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	c := h.signedIn("look@example.com", app.RoleViewer)
	h.seedJob(seed{amount: 1500})

	ctx := context.Background()
	tx, err := h.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `LOCK TABLE river_job IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	body := c.mustGet("/admin/")
	if !strings.Contains(body, `id="queues-note"`) || !strings.Contains(body, "could not be counted in time") {
		t.Errorf("overview does not say the queue could not be counted in time:\n%s", body)
	}
	if !strings.Contains(body, "Throughput, last hour") || !strings.Contains(body, "Last breaker transitions") {
		t.Error("the other sections are missing")
	}
	// The overview reads its sections in one transaction, which a timeout
	// aborts: those after it are read in a new one. The cards' flow
	// (river_job) is cut off too; the chart (operations) is not.
	if !strings.Contains(body, `id="flow-note"`) {
		t.Error("the overview does not say the dependencies' jobs could not be read in time")
	}
	if strings.Contains(body, `id="chart-note"`) {
		t.Errorf("a section that reads no river_job was lost with those that do:\n%s", body)
	}
	body = c.mustGet("/admin/jobs?tab=pending")
	if !strings.Contains(body, `id="list-note"`) || !strings.Contains(body, "could not be listed in time") {
		t.Errorf("the job list does not say it could not be listed in time:\n%s", body)
	}
	if !strings.Contains(body, `id="count-note"`) {
		t.Error("the job count does not say it could not be counted in time")
	}
	// Each section waits at most its own timeout.
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("two degraded pages took %s", el)
	}

	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	body = c.mustGet("/admin/jobs?tab=pending")
	if strings.Contains(body, "in time") || !strings.Contains(body, "<strong>1</strong>") {
		t.Errorf("after the lock, the list is not back to exact:\n%s", body)
	}
}

// Past db.AdminCountCap jobs in a state, the queue table and the job list
// show the planner's estimate, labelled "about"; small counts stay exact.
func TestLargeCountsAreEstimatesLabelledAbout(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	c := h.signedIn("look@example.com", app.RoleViewer)
	ctx := context.Background()
	n := db.AdminCountCap + 2000
	if err := db.SeedDeferredPayments(ctx, h.pool, n, time.Now().Add(12*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := db.VacuumAnalyze(ctx, h.pool, "river_job", "operations"); err != nil {
		t.Fatal(err)
	}
	h.seedJob(seed{amount: 1500, state: "retryable"})

	about := regexp.MustCompile(`about (\d+)`)
	body := c.mustGet("/admin/")
	m := about.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no estimated count on the overview:\n%s", body)
	}
	if !near(m[1], n) {
		t.Errorf("overview estimate %s, want about %d", m[1], n)
	}
	body = c.mustGet("/admin/jobs?tab=pending")
	if m = about.FindStringSubmatch(body); m == nil || !near(m[1], n) {
		t.Errorf("pending tab count is not an estimate near %d: %v", n, m)
	}
	if got := len(regexp.MustCompile(`<tr data-job="`).FindAllString(body, -1)); got != 50 {
		t.Errorf("pending tab lists %d jobs, want a page of 50", got)
	}
	body = c.mustGet("/admin/jobs?tab=retryable")
	if !strings.Contains(body, "<strong>1</strong>") || about.MatchString(body) {
		t.Error("a small count is not exact")
	}
}

// near says whether s is within 20 % of want (the planner's estimate
// after ANALYZE).
func near(s string, want int) bool {
	var v int
	for _, c := range s {
		v = v*10 + int(c-'0')
	}
	return v >= want*8/10 && v <= want*12/10
}
