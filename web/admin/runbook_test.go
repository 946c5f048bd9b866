package admin_test

import (
	"context"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/web/admin"
)

// alertRules is the rules file Prometheus loads; its runbook_url
// annotations point into /admin/runbook.
const alertRules = "../../testdata/prometheus/alerts.yml"

var (
	runbookURLRE = regexp.MustCompile(`runbook_url:.*?/admin/runbook#([a-z0-9-]+)`)
	alertRE      = regexp.MustCompile(`(?m)^\s*- alert: (\S+)`)
	idRE         = regexp.MustCompile(`<h[1-6] id="([^"]+)"`)
	runbookRefRE = regexp.MustCompile(`href="/admin/runbook#([^"]+)"`)
)

// runbookAnchors are the headings' ids in the rendered runbook.
func runbookAnchors(t *testing.T, page string) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	for _, m := range idRE.FindAllStringSubmatch(page, -1) {
		ids[m[1]] = true
	}
	if len(ids) == 0 {
		t.Fatalf("the runbook page has no headings with ids:\n%s", page)
	}
	return ids
}

// Every alert links to a section the runbook page has, and any signed-in
// user (a viewer too) can read it.
func TestRunbookHasEverySectionTheAlertsLinkTo(t *testing.T) {
	t.Parallel()
	rules, err := os.ReadFile(alertRules)
	if err != nil {
		t.Fatal(err)
	}
	alerts := alertRE.FindAllStringSubmatch(string(rules), -1)
	links := runbookURLRE.FindAllStringSubmatch(string(rules), -1)
	if len(alerts) == 0 || len(links) != len(alerts) {
		t.Fatalf("%s has %d alerts and %d runbook_url annotations into /admin/runbook; want one each", alertRules, len(alerts), len(links))
	}
	h := newHarness(t, harnessOpts{})
	page := h.signedIn("look@example.com", app.RoleViewer).mustGet("/admin/runbook")
	ids := runbookAnchors(t, page)
	for i, m := range links {
		if !ids[m[1]] {
			t.Errorf("alert %s links to /admin/runbook#%s, which the runbook does not have", alerts[i][1], m[1])
		}
	}
	// Each section says what it means, what to check and what to do, in
	// the sections that are an alert's.
	for _, want := range []string{"What it means.", "What to check.", "What to do."} {
		if strings.Count(page, want) < len(links)-3 { // the drill sections are shorter
			t.Errorf("the runbook says %q only %d times for %d alerts", want, strings.Count(page, want), len(links))
		}
	}
	if regexp.MustCompile(`<h[1-6][^>]*>[^<]*\{#`).MatchString(page) {
		t.Error("the runbook shows a heading's {#anchor} as text")
	}
}

// Every abnormal state the overview shows links to a runbook section that
// exists: a breaker forced open, unknown outcomes, orphan charges, a
// backlog over its bound, a full bulkhead, a paused queue.
func TestOverviewAbnormalStatesLinkToTheRunbook(t *testing.T) {
	t.Parallel()
	clk := newClock()
	backlog := app.NewBacklogBounds(app.BacklogConfig{
		Reader: backlogReader{app.QueuePayments: {Jobs: 12, Oldest: clk.Now().Add(-3 * time.Minute)}},
		Bounds: []app.BacklogBound{{Dependency: app.DepPayment, Queue: app.QueuePayments, MaxJobs: 10}},
		Now:    clk.Now,
	})
	backlog.Refresh(context.Background())
	full := app.NewAdmission(2, 0)
	for range 2 {
		full.TryAcquire(false)
	}
	h := newHarness(t, harnessOpts{now: clk.Now, backlog: backlog, bulkheads: map[string]admin.Bulkhead{app.DepPayment: full}})
	ctx := context.Background()
	actor := app.Actor{Email: "test"}
	if _, err := h.operator.ForceBreaker(ctx, actor, app.DepPayment, app.BreakerForcedOpen, "drill"); err != nil {
		t.Fatal(err)
	}
	h.seedJob(seed{queue: "mail", kind: "record"})
	if _, err := h.pool.Exec(ctx, `INSERT INTO river_queue (name, created_at, metadata, paused_at, updated_at)
		VALUES ('mail', now(), '{}', now(), now())`); err != nil {
		t.Fatal(err)
	}
	j := h.seedJob(seed{state: "retryable"})
	if _, err := h.pool.Exec(ctx, `UPDATE operations SET status = 'processing', outcome_unknown_since = now() - interval '2 hours'
		WHERE id = $1`, j.opID); err != nil {
		t.Fatal(err)
	}
	if _, err := h.pool.Exec(ctx, `INSERT INTO orphan_charges (charge_id, reference, amount, currency, status,
		created_at, found_at) VALUES ('ch_orphan', 'not-ours', 4200, 'usd', 'open', now(), now())`); err != nil {
		t.Fatal(err)
	}
	c := h.signedIn("look@example.com", app.RoleViewer)
	ids := runbookAnchors(t, c.mustGet("/admin/runbook"))

	page := c.mustGet("/admin/")
	var linked []string
	for _, m := range runbookRefRE.FindAllStringSubmatch(page, -1) {
		if !ids[m[1]] {
			t.Errorf("the overview links to /admin/runbook#%s, which the runbook does not have", m[1])
		}
		linked = append(linked, m[1])
	}
	for _, want := range []string{"breaker-forced", "unknown-outcome", "orphan-charge", "backlog-over-bound", "bulkhead-full", "pause-a-queue"} {
		if !slices.Contains(linked, want) {
			t.Errorf("the overview does not link its abnormal state to /admin/runbook#%s; it links %v", want, linked)
		}
	}
	// The forced breaker's link is in its own card.
	if !strings.Contains(card(t, page, app.DepPayment), `href="/admin/runbook#breaker-forced"`) {
		t.Error("the payment card does not link FORCED OPEN to its runbook section")
	}
}

// A healthy overview links to no runbook section: nothing to do.
func TestCalmOverviewLinksToNoRunbookSection(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	page := h.signedIn("look@example.com", app.RoleViewer).mustGet("/admin/")
	if m := runbookRefRE.FindAllString(page, -1); len(m) != 0 {
		t.Errorf("a calm overview links to %v", m)
	}
}

// One failed call is under the breaker's minimum volume: the overview
// says the rate is not judged instead of "100.0 % (opens over 10.0 %)".
func TestOverviewSaysTheMinimumVolumeIsNotReached(t *testing.T) {
	t.Parallel()
	// The clock stands still, so the bucket stays in the window however
	// slowly the test runs.
	clk := newClock()
	h := newHarness(t, harnessOpts{now: clk.Now})
	// The window starts no earlier than the breaker's registration, a
	// moment after the clock was read.
	clk.Advance(2 * time.Second)
	ctx := context.Background()
	record := func(calls, failures int) {
		t.Helper()
		if _, err := h.pool.Exec(ctx, `INSERT INTO breaker_counts (name, generation, bucket, calls, failures, slow)
			SELECT name, generation, $3, $1, $2, 0 FROM breakers WHERE name = 'payment'
			ON CONFLICT (name, generation, bucket) DO UPDATE SET calls = breaker_counts.calls + excluded.calls,
				failures = breaker_counts.failures + excluded.failures`, calls, failures, clk.Now().Truncate(time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	record(1, 1)
	c := h.signedIn("look@example.com", app.RoleViewer)
	payment := card(t, c.mustGet("/admin/"), app.DepPayment)
	want := "Not judged: 1 call in the window; the breaker judges the rate from 20 calls (opens over 10.0% failures)."
	if !strings.Contains(payment, want) {
		t.Errorf("payment card lacks %q:\n%s", want, payment)
	}
	if strings.Contains(payment, "100.0%") {
		t.Errorf("payment card shows a rate from one call:\n%s", payment)
	}

	// From the minimum on, the rate is shown.
	record(19, 0)
	payment = card(t, c.mustGet("/admin/"), app.DepPayment)
	if !strings.Contains(payment, "5.0%") || strings.Contains(payment, "Not judged") {
		t.Errorf("payment card at 20 calls does not show the rate:\n%s", payment)
	}
}

// The pending tab lists every job acknowledged and not finished, the
// retryable one waiting out a down provider included, each with its River
// state; finished jobs are not pending.
func TestPendingTabShowsEveryUnfinishedJobWithItsState(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	c := h.signedIn("look@example.com", app.RoleViewer)
	want := map[string]int64{}
	for _, st := range []string{"available", "scheduled", "retryable", "running"} {
		s := seed{state: st}
		if st == "scheduled" {
			s.scheduledAt = time.Now().Add(time.Hour)
		}
		want[st] = h.seedJob(s).jobID
	}
	var finished []int64
	for _, st := range []string{"completed", "discarded", "cancelled"} {
		finished = append(finished, h.seedJob(seed{state: st}).jobID)
	}
	page := c.mustGet("/admin/jobs?tab=pending")
	list := rows(page)
	for st, id := range want {
		row, ok := list[strconv.FormatInt(id, 10)]
		if !ok {
			t.Errorf("the pending tab hides the %s job %d", st, id)
			continue
		}
		if !strings.Contains(row, `<td class="state">`+st+`</td>`) {
			t.Errorf("the pending tab's row for the %s job does not say its state:\n%s", st, row)
		}
	}
	for _, id := range finished {
		if _, ok := list[strconv.FormatInt(id, 10)]; ok {
			t.Errorf("the pending tab lists finished job %d", id)
		}
	}
	if !strings.Contains(page, "Pending means acknowledged and not finished") {
		t.Error("the pending tab does not say what pending means")
	}
}
