package admin_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/spillway/spillway/app"
)

// flowHarness is the admin UI with real backlog bounds for both
// dependencies, reading the harness's database on its clock.
func flowHarness(t *testing.T, clk *clock) *harness {
	t.Helper()
	h := newHarness(t, harnessOpts{now: clk.Now, backlogBounds: []app.BacklogBound{
		{Dependency: app.DepPayment, Queue: app.QueuePayments, MaxJobs: 1000},
		{Dependency: app.DepInventory, Queue: app.QueueOrders, MaxJobs: 1000},
	}})
	if err := h.breakers.Register(context.Background(), app.DepInventory, app.DefaultBreakerPolicy(), app.PolicyOverride{}); err != nil {
		t.Fatal(err)
	}
	return h
}

// seedWaiting inserts n captured jobs of kind ("" a payment, or an
// order) waiting in their queue, captured at capturedAt, and returns
// their ids.
func (h *harness) seedWaiting(n int, kind string, capturedAt time.Time) []int64 {
	h.t.Helper()
	var ids []int64
	for range n {
		s := seed{kind: kind}
		if kind == app.KindOrder {
			s = orderSeed()
		}
		ids = append(ids, h.seedJob(s).jobID)
	}
	// River stamps created_at with the database's clock; the test's
	// figures are ages on the harness clock.
	if _, err := h.pool.Exec(context.Background(), `UPDATE river_job SET created_at = $2 WHERE id = ANY($1)`, ids, capturedAt); err != nil {
		h.t.Fatal(err)
	}
	return ids
}

// finish moves jobs to completed at a moment, as River's completer would.
func (h *harness) finish(ids []int64, at time.Time) {
	h.t.Helper()
	if _, err := h.pool.Exec(context.Background(), `UPDATE river_job SET state = 'completed', finalized_at = $2 WHERE id = ANY($1)`,
		ids, at); err != nil {
		h.t.Fatal(err)
	}
}

func wantIn(t *testing.T, what, html string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(html, want) {
			t.Errorf("%s lacks %q:\n%s", what, want, html)
		}
	}
}

// The payment card answers the on-call questions: the mode and since
// when, how much acknowledged work is unfinished and how old the oldest
// is, how fast it drains, and when it will be done. The time to drain
// divides what is unfinished by the backlog's net shrink rate: 30 waiting
// fell to 20 in two minutes (−5/min) with 2 more running, so 22 jobs
// take 4m24s; the drain rate is the 10 that finished in the last five
// minutes.
func TestOverviewShowsBacklogDrainRateAndTimeToDrain(t *testing.T) {
	t.Parallel()
	clk := newClock()
	h := flowHarness(t, clk)
	ctx := context.Background()
	t0 := clk.Now()
	ids := h.seedWaiting(30, "", t0.Add(-7*time.Minute))
	h.seedJob(seed{state: "running"})
	h.seedJob(seed{state: "running"})
	h.backlog.Refresh(ctx)
	h.finish(ids[:10], t0.Add(-time.Minute))
	clk.Advance(2 * time.Minute)
	h.backlog.Refresh(ctx)
	c := h.signedIn("look@example.com", app.RoleViewer)

	payment := card(t, c.mustGet("/admin/"), app.DepPayment)
	wantIn(t, "payment card", payment,
		`<strong>20</strong> jobs`, "the oldest captured 9m00s ago",
		`id="unfinished-payment"><strong>22</strong> <span class="muted">(2 running now)</span>`,
		`<strong>2.0 jobs/min</strong> <span class="muted">(10 finished in the last 5m00s)</span>`,
		"About 4m24s, at the net rate of −5.0 jobs/min over the last 2m00s (drain less new captures).",
		`id="awaiting-payment">nothing`,
	)
	if strings.Contains(payment, "/runbook#") {
		t.Errorf("a draining backlog on a closed breaker links to the runbook:\n%s", payment)
	}
	// The orders queue is the inventory's: nothing there.
	wantIn(t, "inventory card", card(t, c.mustGet("/admin/"), app.DepInventory),
		`id="unfinished-inventory"><strong>0</strong>`, "none: no job finished in the last 5m00s", "Nothing to drain.")

	// An operator forces the breaker open; the card says so and since
	// when, on the harness clock.
	if _, err := h.operator.ForceBreaker(ctx, app.Actor{Email: "test"}, app.DepPayment, app.BreakerForcedOpen, "drill"); err != nil {
		t.Fatal(err)
	}
	since := clk.Now().Add(-12 * time.Minute)
	if _, err := h.pool.Exec(ctx, `UPDATE breakers SET since = $1 WHERE name = 'payment'`, since); err != nil {
		t.Fatal(err)
	}
	payment = card(t, c.mustGet("/admin/"), app.DepPayment)
	wantIn(t, "forced payment card", payment, `data-mode="FORCED OPEN"`,
		"Since "+since.UTC().Format("2006-01-02 15:04:05 UTC")+" (12m00s).", `href="/admin/runbook#breaker-forced"`)
}

// When the time to drain cannot be estimated the card says why, plainly,
// and links the state to its runbook section: a backlog growing faster
// than it drains (the orders queue: 3 drained, 4 waiting became 10 in a
// minute), and one that nothing drains while the breaker is closed (the
// payments queue), whose oldest job has waited past the alert's 30
// minutes.
func TestOverviewSaysWhenTheTimeToDrainCannotBeEstimated(t *testing.T) {
	t.Parallel()
	clk := newClock()
	h := flowHarness(t, clk)
	ctx := context.Background()
	t0 := clk.Now()
	h.seedWaiting(5, "", t0.Add(-40*time.Minute))
	orders := h.seedWaiting(7, app.KindOrder, t0.Add(-time.Minute))
	h.finish(orders[:3], t0.Add(-2*time.Minute))
	h.backlog.Refresh(ctx)
	h.seedWaiting(6, app.KindOrder, t0)
	clk.Advance(time.Minute)
	h.backlog.Refresh(ctx)
	c := h.signedIn("look@example.com", app.RoleViewer)
	page := c.mustGet("/admin/")

	wantIn(t, "inventory card", card(t, page, app.DepInventory),
		`<strong>10</strong> jobs`, "(3 finished in the last 5m00s)", "0.6 jobs/min",
		"Cannot be estimated: the backlog grows faster than it drains (+6.0 jobs/min net over the last 1m00s).",
		`href="/admin/runbook#backlog-growing"`)
	wantIn(t, "payment card", card(t, page, app.DepPayment),
		"the oldest captured 41m00s ago", `href="/admin/runbook#oldest-job"`,
		"none: no job finished in the last 5m00s",
		"Cannot be estimated: nothing has drained in the last 5m00s.", `href="/admin/runbook#backlog-not-draining"`)
	// Every section linked exists.
	ids := runbookAnchors(t, c.mustGet("/admin/runbook"))
	for _, m := range runbookRefRE.FindAllStringSubmatch(page, -1) {
		if !ids[m[1]] {
			t.Errorf("the overview links to /admin/runbook#%s, which the runbook does not have", m[1])
		}
	}
}
