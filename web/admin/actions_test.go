package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spillway/spillway/app"
)

func jobPath(id int64) string { return "/admin/jobs/" + strconv.FormatInt(id, 10) }

func TestReprioritizeOneJob(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	c := h.signedIn("ops@example.com", app.RoleOperator)
	j := h.seedJob(seed{amount: 250000, priority: 3})
	done := h.seedJob(seed{state: "completed", priority: 3})

	if loc := c.mustPost(jobPath(j.jobID)+"/action", url.Values{"action": {"reprioritize"}, "new_priority": {"1"}}); loc != jobPath(j.jobID) {
		t.Fatalf("redirected to %q", loc)
	}
	if _, p, _ := h.job(j.jobID); p != 1 {
		t.Fatalf("job priority %d, want 1", p)
	}
	if _, p := h.opStatus(j.opID); p != 1 {
		t.Fatalf("operation priority %d, want 1", p)
	}
	page := c.mustGet(jobPath(j.jobID))
	if !strings.Contains(page, "Set priority 1 on 1 job.") {
		t.Error("no confirmation message after the redirect")
	}
	a := h.audits("job.reprioritize")
	if len(a) != 1 || a[0].ActorEmail != "ops@example.com" || a[0].Target != fmt.Sprintf("job %d", j.jobID) ||
		!strings.Contains(string(a[0].Before), `"priority": 3`) || string(a[0].After) != `{"priority": 1}` || a[0].RequestID == "" {
		t.Fatalf("audit: %+v", a)
	}

	// Finished jobs keep their priority: River would never fetch them.
	c.mustPost(jobPath(done.jobID)+"/action", url.Values{"action": {"reprioritize"}, "new_priority": {"1"}})
	if _, p, _ := h.job(done.jobID); p != 3 {
		t.Fatalf("completed job's priority changed to %d", p)
	}
	if got := len(h.audits("job.reprioritize")); got != 1 {
		t.Fatalf("a no-op was audited: %d entries", got)
	}
	// Out of range priorities are refused with a readable page.
	for _, p := range []string{"0", "5", "x", ""} {
		r := c.post(jobPath(j.jobID)+"/action", url.Values{"action": {"reprioritize"}, "new_priority": {p}})
		if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "priority must be 1 (highest) to 4") {
			t.Fatalf("priority %q: %d", p, r.status)
		}
	}
}

func TestRetryDiscardedJobReopensOperation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	c := h.signedIn("ops@example.com", app.RoleOperator)
	j := h.seedJob(seed{state: "discarded", errorText: "provider answered 503"})
	c.mustPost(jobPath(j.jobID)+"/action", url.Values{"action": {"retry"}})
	if st, _, at := h.job(j.jobID); st != "available" || !h.dueNow(j.jobID) {
		t.Fatalf("job %s at %v", st, at)
	}
	if st, _ := h.opStatus(j.opID); st != "queued" {
		t.Fatalf("operation %s, want queued so the worker calls the provider", st)
	}
	if a := h.audits("job.retry"); len(a) != 1 || !strings.Contains(string(a[0].Before), `"state": "discarded"`) {
		t.Fatalf("audit: %+v", a)
	}
}

func TestCancelJobClosesOperation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	c := h.signedIn("ops@example.com", app.RoleOperator)
	j := h.seedJob(seed{})
	c.mustPost(jobPath(j.jobID)+"/action", url.Values{"action": {"cancel"}})
	if st, _, _ := h.job(j.jobID); st != "cancelled" {
		t.Fatalf("job %s", st)
	}
	if st, _ := h.opStatus(j.opID); st != "cancelled" {
		t.Fatalf("operation %s", st)
	}
	if len(h.audits("job.cancel")) != 1 {
		t.Fatal("cancel not audited")
	}
}

func TestRunNowMakesScheduledJobAvailable(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	c := h.signedIn("ops@example.com", app.RoleOperator)
	j := h.seedJob(seed{scheduledAt: time.Now().Add(time.Hour)})
	if st, _, _ := h.job(j.jobID); st != "scheduled" {
		t.Fatalf("seeded %s", st)
	}
	c.mustPost(jobPath(j.jobID)+"/action", url.Values{"action": {"run_now"}})
	st, _, at := h.job(j.jobID)
	if st != "available" || !h.dueNow(j.jobID) {
		t.Fatalf("job %s due %v", st, at)
	}
	if len(h.audits("job.run_now")) != 1 {
		t.Fatal("run now not audited")
	}
}

func TestActionOnSelectedJobs(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	c := h.signedIn("ops@example.com", app.RoleOperator)
	a, b, other := h.seedJob(seed{}), h.seedJob(seed{}), h.seedJob(seed{})
	running := h.seedJob(seed{state: "running"})
	back := "/admin/jobs?tab=pending"
	loc := c.mustPost("/admin/jobs/action", url.Values{"action": {"reprioritize"}, "new_priority": {"2"}, "return": {back},
		"id": {strconv.FormatInt(a.jobID, 10), strconv.FormatInt(b.jobID, 10), strconv.FormatInt(running.jobID, 10)}})
	if loc != back {
		t.Fatalf("back to %q", loc)
	}
	for _, j := range []seeded{a, b} {
		if _, p, _ := h.job(j.jobID); p != 2 {
			t.Fatalf("selected job %d has priority %d", j.jobID, p)
		}
	}
	for _, j := range []seeded{other, running} {
		if _, p, _ := h.job(j.jobID); p != 3 {
			t.Fatalf("job %d changed to %d", j.jobID, p)
		}
	}
	page := c.mustGet(back)
	if !strings.Contains(page, "Set priority 2 on 2 jobs. 1 left as they were") {
		t.Error("message does not say what changed and what was skipped")
	}
	entries := h.audits("job.reprioritize")
	if len(entries) != 1 || entries[0].Detail != "selected" {
		t.Fatalf("audit: %+v", entries)
	}
	var before []map[string]any
	if err := json.Unmarshal(entries[0].Before, &before); err != nil || len(before) != 2 {
		t.Fatalf("before: %s", entries[0].Before)
	}
}

// The drill: raise all payments over 1 000.00 to priority 1 in one
// action, re-run on the server in batches.
func TestBulkActionOnAllMatching(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	c := h.signedIn("ops@example.com", app.RoleOperator)
	const big = 520 // more than one batch
	ctx := context.Background()
	// Fast fixtures: many jobs in one statement each.
	if _, err := h.pool.Exec(ctx, `
		WITH j AS (
			INSERT INTO river_job (args, kind, max_attempts, priority, queue, state, scheduled_at)
			SELECT jsonb_build_object('operation_id', gen_random_uuid()), 'payment', 25, 3, 'payments', 'available', now()
			FROM generate_series(1, $1) RETURNING id, (args->>'operation_id')::uuid AS op
		)
		INSERT INTO operations (id, kind, status, mode, priority, amount, currency, job_id, created_at, updated_at)
		SELECT op, 'payment', 'queued', 'async', 3, 150000, 'usd', id, now(), now() FROM j`, big); err != nil {
		t.Fatal(err)
	}
	small := h.seedJob(seed{amount: 99999})
	failed := h.seedJob(seed{amount: 200000, state: "discarded"})

	q := url.Values{"tab": {"pending"}, "kind": {"payment"}, "min": {"100001"}, "action": {"reprioritize"}, "new_priority": {"1"}}
	page := c.mustGet("/admin/jobs/bulk?" + q.Encode())
	if !strings.Contains(page, fmt.Sprintf("<strong>%d</strong> of %d matching jobs", big, big)) {
		t.Fatalf("confirmation does not show the count:\n%s", page)
	}
	q.Del("tab")
	q.Set("tab", "pending")
	loc := c.mustPost("/admin/jobs/bulk", q)
	if !strings.HasPrefix(loc, "/admin/jobs?") {
		t.Fatalf("redirected to %q", loc)
	}
	if n := h.count(`SELECT count(*) FROM river_job WHERE priority = 1`); n != big {
		t.Fatalf("%d jobs at priority 1, want %d", n, big)
	}
	if n := h.count(`SELECT count(*) FROM operations WHERE priority = 1`); n != big {
		t.Fatalf("%d operations at priority 1, want %d", n, big)
	}
	if _, p, _ := h.job(small.jobID); p != 3 {
		t.Fatal("a job below the amount was raised")
	}
	if _, p, _ := h.job(failed.jobID); p != 3 {
		t.Fatal("a failed job was raised")
	}
	entries := h.audits("job.reprioritize")
	if len(entries) != 2 || !strings.Contains(entries[0].Detail, "amount ≥ 100001") {
		t.Fatalf("want one audit entry per batch naming the filter, got %+v", entries)
	}
	if !strings.Contains(c.mustGet(loc), fmt.Sprintf("Set priority 1 on %d jobs", big)) {
		t.Error("no message after the bulk action")
	}
}

func TestQueuePauseAndResume(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	c := h.signedIn("ops@example.com", app.RoleOperator)
	if _, err := h.pool.Exec(context.Background(),
		`INSERT INTO river_queue (name, created_at, metadata, updated_at) VALUES ('payments', now(), '{}', now())`); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(c.mustGet("/admin/"), `action="/admin/queues/payments/pause"`) {
		t.Fatal("overview has no pause button")
	}
	c.mustPost("/admin/queues/payments/pause", nil)
	if n := h.count(`SELECT count(*) FROM river_queue WHERE name = 'payments' AND paused_at IS NOT NULL`); n != 1 {
		t.Fatal("queue not paused")
	}
	if !strings.Contains(c.mustGet("/admin/"), "Queue payments paused.") {
		t.Error("no message")
	}
	c.mustPost("/admin/queues/payments/resume", nil)
	if n := h.count(`SELECT count(*) FROM river_queue WHERE name = 'payments' AND paused_at IS NULL`); n != 1 {
		t.Fatal("queue not resumed")
	}
	if len(h.audits("queue.pause")) != 1 || len(h.audits("queue.resume")) != 1 {
		t.Fatal("pause/resume not audited")
	}
	if r := c.post("/admin/queues/nope/pause", nil); r.status != http.StatusNotFound {
		t.Fatalf("unknown queue: %d", r.status)
	}
}

func TestForceBreakerAndBackToAuto(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	c := h.signedIn("ops@example.com", app.RoleOperator)
	if !strings.Contains(c.mustGet("/admin/"), `data-mode="SYNC"`) {
		t.Fatal("a new breaker is not SYNC")
	}
	c.mustPost("/admin/breakers/payment/force", url.Values{"state": {"forced_open"}, "reason": {"drill"}})
	if b, _ := h.breakers.Get("payment"); b.State != app.BreakerForcedOpen {
		t.Fatalf("breaker %s", b.State)
	}
	if page := c.mustGet("/admin/"); !strings.Contains(page, `data-mode="FORCED OPEN"`) || !strings.Contains(page, "forced open by ops@example.com: drill") {
		t.Fatal("overview does not show FORCED OPEN and its transition")
	}
	c.mustPost("/admin/breakers/payment/force", url.Values{"state": {"closed"}})
	if b, _ := h.breakers.Get("payment"); b.State != app.BreakerClosed {
		t.Fatalf("breaker %s after back to auto", b.State)
	}
	entries := h.audits("breaker.force")
	if len(entries) != 2 || string(entries[0].Before) != `{"state": "closed"}` || string(entries[0].After) != `{"state": "forced_open"}` ||
		entries[0].Detail != "drill" {
		t.Fatalf("audit: %+v", entries)
	}
	if r := c.post("/admin/breakers/payment/force", url.Values{"state": {"open"}}); r.status != http.StatusUnprocessableEntity {
		t.Fatalf("force to open (not an operator state): %d", r.status)
	}
	if r := c.post("/admin/breakers/nope/force", url.Values{"state": {"forced_open"}}); r.status != http.StatusNotFound {
		t.Fatalf("unknown breaker: %d", r.status)
	}
}

func TestBreakerThresholdsValidated(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	c := h.signedIn("ops@example.com", app.RoleOperator)
	form := url.Values{"window": {"20s"}, "min_calls": {"10"}, "failure_rate": {"25"}, "slow_rate": {"50"},
		"slow_call": {"2s"}, "open_wait": {"5s"}, "max_open_wait": {"1m"}, "probes": {"3"}, "probe_lease": {"10s"},
		"trip_memory": {"2m"}, "consecutive_failures": {"7"}}
	c.mustPost("/admin/breakers/payment/policy", form)
	b, err := (h.breakerStore()).GetBreaker(context.Background(), "payment")
	if err != nil {
		t.Fatal(err)
	}
	if b.Policy.FailureRate != 0.25 || b.Policy.Window != 20*time.Second || b.Policy.MinCalls != 10 || b.Policy.ConsecutiveFailures != 7 {
		t.Fatalf("policy %+v", b.Policy)
	}
	if a := h.audits("breaker.policy"); len(a) != 1 || !strings.Contains(string(a[0].Before), `"FailureRate": "10"`) ||
		!strings.Contains(string(a[0].After), `"FailureRate": "25"`) {
		t.Fatalf("audit: %+v", a)
	}

	for field, bad := range map[string]string{"failure_rate": "150", "window": "soon", "probes": "0", "max_open_wait": "1s",
		"consecutive_failures": "-1"} {
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		f.Set(field, bad)
		r := c.post("/admin/breakers/payment/policy", f)
		if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "Not saved:") {
			t.Fatalf("%s=%s: %d", field, bad, r.status)
		}
	}
	if after, _ := h.breakerStore().GetBreaker(context.Background(), "payment"); after.Policy != b.Policy {
		t.Fatal("a refused policy was stored")
	}
}

// Viewers see every page but every change is refused on the server, even
// when they forge the form the page did not show them.
func TestViewerCannotAct(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	c := h.signedIn("look@example.com", app.RoleViewer)
	j := h.seedJob(seed{state: "discarded"})
	for _, page := range []string{"/admin/", "/admin/jobs", "/admin/jobs?tab=failed", jobPath(j.jobID), "/admin/breakers", "/admin/audit"} {
		body := c.mustGet(page)
		if strings.Contains(body, "Force open") || strings.Contains(body, `name="action"`) {
			t.Errorf("%s shows controls to a viewer", page)
		}
	}
	posts := map[string]url.Values{
		jobPath(j.jobID) + "/action":     {"action": {"retry"}},
		"/admin/jobs/action":             {"action": {"retry"}, "id": {strconv.FormatInt(j.jobID, 10)}},
		"/admin/jobs/bulk":               {"tab": {"failed"}, "action": {"retry"}},
		"/admin/queues/payments/pause":   nil,
		"/admin/queues/payments/resume":  nil,
		"/admin/breakers/payment/force":  {"state": {"forced_open"}},
		"/admin/breakers/payment/policy": {"window": {"20s"}},
	}
	for path, form := range posts {
		r := c.post(path, form)
		if r.status != http.StatusForbidden || !strings.Contains(r.body, "viewer") {
			t.Errorf("viewer POST %s: %d", path, r.status)
		}
	}
	if st, _, _ := h.job(j.jobID); st != "discarded" {
		t.Fatalf("job %s", st)
	}
	if b, _ := h.breakerStore().GetBreaker(context.Background(), "payment"); b.State != app.BreakerClosed {
		t.Fatalf("breaker %s", b.State)
	}
	if n := h.count(`SELECT count(*) FROM admin_audit_log WHERE action NOT IN ('signin', 'user.create')`); n != 0 {
		t.Fatalf("%d audit entries from refused actions", n)
	}
	// Anonymous changes are sent to sign in and change nothing.
	if r := h.client().post("/admin/breakers/payment/force", url.Values{"state": {"forced_open"}}); r.status != http.StatusSeeOther ||
		!strings.HasPrefix(r.location, "/admin/signin") {
		t.Fatalf("anonymous POST: %d %q", r.status, r.location)
	}
}

func TestCrossOriginPostRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	c := h.signedIn("ops@example.com", app.RoleOperator)
	// A browser posting from another site sends Sec-Fetch-Site…
	c.header.Set("Sec-Fetch-Site", "cross-site")
	r := c.post("/admin/breakers/payment/force", url.Values{"state": {"forced_open"}})
	if r.status != http.StatusForbidden || !strings.Contains(r.body, "came from another site") {
		t.Fatalf("cross-site POST: %d %s", r.status, r.body)
	}
	// …and an older one at least Origin.
	c.header = http.Header{"Origin": {"https://evil.example"}}
	if r := c.post("/admin/breakers/payment/force", url.Values{"state": {"forced_open"}}); r.status != http.StatusForbidden {
		t.Fatalf("cross-origin POST: %d", r.status)
	}
	// Sign-in is protected too (login CSRF).
	if r := c.post("/admin/signin", url.Values{"email": {"ops@example.com"}, "password": {testPassword}}); r.status != http.StatusForbidden {
		t.Fatalf("cross-origin sign-in: %d", r.status)
	}
	if b, _ := h.breakerStore().GetBreaker(context.Background(), "payment"); b.State != app.BreakerClosed {
		t.Fatalf("breaker %s after refused posts", b.State)
	}
	// The same page posting to itself is fine.
	c.header = http.Header{"Sec-Fetch-Site": {"same-origin"}, "Origin": {h.url}}
	c.mustPost("/admin/breakers/payment/force", url.Values{"state": {"forced_open"}})
}

// A long reason whose cut falls inside a multi-byte character, or that is
// not UTF-8 at all, is stored clipped and valid, not refused by Postgres.
func TestForceReasonIsClippedOnACharacter(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	c := h.signedIn("ops@example.com", app.RoleOperator)
	reason := strings.Repeat("a", 199) + "éé\xff"
	c.mustPost("/admin/breakers/payment/force", url.Values{"state": {"forced_open"}, "reason": {reason}})
	if b, _ := h.breakers.Get("payment"); b.State != app.BreakerForcedOpen {
		t.Fatalf("breaker %s", b.State)
	}
	entries := h.audits("breaker.force")
	if len(entries) != 1 || entries[0].Detail != strings.Repeat("a", 199) {
		t.Fatalf("audit detail %q", entries[0].Detail)
	}
}

func TestJobFilterRefusesInvalidUTF8(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	c := h.signedIn("viewer@example.com", app.RoleViewer)
	if r := c.get("/admin/jobs?email=%FF"); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "valid UTF-8") {
		t.Fatalf("invalid UTF-8 filter: %d", r.status)
	}
}
