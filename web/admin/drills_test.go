package admin_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/spillway/spillway/app"
)

// idleDrills stands in for what the admin UI never runs itself: the drill
// jobs (the harness's River client only inserts them) and the canaries.
type idleDrills struct{}

func (idleDrills) Advance(context.Context, int64) (time.Duration, error) { return 0, nil }
func (idleDrills) Schedule(context.Context) ([]app.Drill, error)         { return nil, nil }
func (idleDrills) Submit(context.Context, string, string, app.StepRequest) (*app.Outcome, error) {
	return nil, errors.New("the admin harness sends no canaries")
}

// finishedDrill records a drill of payment that ended ago, as the drill
// job leaves one.
func (h *harness) finishedDrill(status app.DrillStatus, reason string, ago time.Duration) {
	h.t.Helper()
	end := time.Now().Add(-ago)
	start := end.Add(-2 * time.Minute)
	var drain any
	if status == app.DrillPassed {
		drain = 3200
	}
	if _, err := h.pool.Exec(context.Background(), `
		INSERT INTO drills (dependency, mode, trigger, actor, status, duration_ms, started_at, ended_at, canaries, sent, completed,
			drain_ms, reason, finished_at)
		VALUES ('payment', 'shadow', 'manual', 'ops@example.com', $1, 60000, $2, $3, 3, 3, $4, $5, $6, $7)`,
		status, start, start.Add(time.Minute), map[bool]int{true: 3, false: 1}[status == app.DrillPassed], drain, reason, end); err != nil {
		h.t.Fatal(err)
	}
}

// lastDrillItem is the overview's line for a dependency's last drill.
func lastDrillItem(t *testing.T, page, dep string) string {
	t.Helper()
	i := strings.Index(page, `id="last-drill-`+dep+`"`)
	if i < 0 {
		t.Fatalf("overview has no last drill of %s", dep)
	}
	return page[i : i+strings.Index(page[i:], "</li>")]
}

// The overview shows each dependency's last drill: never drilled (with
// the runbook's "run a drill"), then the latest drill's result, when, and
// for a failure why, linking to the history and the runbook.
func TestOverviewShowsTheLastDrillPerDependency(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{drills: true})
	c := h.signedIn("look@example.com", app.RoleViewer)
	page := c.mustGet("/admin/")
	if item := lastDrillItem(t, page, "payment"); !strings.Contains(item, `data-result="none"`) ||
		!strings.Contains(item, "never drilled") || !strings.Contains(item, `href="/admin/runbook#run-a-drill"`) {
		t.Fatalf("never drilled: %s", item)
	}
	if !strings.Contains(page, `href="/admin/drills"`) {
		t.Fatal("the overview does not link to the drill history")
	}

	h.finishedDrill(app.DrillPassed, "all 3 canaries completed", 3*time.Hour)
	page = c.mustGet("/admin/")
	if item := lastDrillItem(t, page, "payment"); !strings.Contains(item, `data-result="passed"`) ||
		!strings.Contains(item, "shadow") || !strings.Contains(item, "3h00m ago") || strings.Contains(item, "runbook") {
		t.Fatalf("passed drill: %s", item)
	}

	h.finishedDrill(app.DrillFailed, "2 of 3 canaries did not complete within DRILL_DURATION (1m0s) + 1m0s", time.Minute)
	page = c.mustGet("/admin/")
	if item := lastDrillItem(t, page, "payment"); !strings.Contains(item, `data-result="failed"`) ||
		!strings.Contains(item, "2 of 3 canaries did not complete") || !strings.Contains(item, `href="/admin/runbook#drill-failed"`) {
		t.Fatalf("failed drill: %s", item)
	}
}

// An operator starts a drill from the form: it is recorded, audited, and
// listed; a second one while it runs, or a bad mode, answers the page
// again with the reason; a viewer sees no form and may not post it.
func TestOperatorStartsADrillFromTheDrillsPage(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{drills: true})
	viewer := h.signedIn("look@example.com", app.RoleViewer)
	if page := viewer.mustGet("/admin/drills"); strings.Contains(page, `id="drill-form"`) || !strings.Contains(page, "No drill has run yet.") {
		t.Fatal("a viewer is shown the drill form, or history that is not there")
	}
	if r := viewer.post("/admin/drills", url.Values{"dependency": {"payment"}}); r.status != http.StatusForbidden {
		t.Fatalf("a viewer's drill: %d", r.status)
	}

	ops := h.signedIn("ops@example.com", app.RoleOperator)
	page := ops.mustGet("/admin/drills")
	if !strings.Contains(page, `id="drill-form"`) || !strings.Contains(page, "sends 3 canaries down the async path for 1m0s") ||
		!strings.Contains(page, "opens the breaker on every instance for 1m0s") {
		t.Fatal("the form does not say what each mode does")
	}
	if r := ops.post("/admin/drills", url.Values{"dependency": {"payment"}, "mode": {"sideways"}}); r.status != http.StatusUnprocessableEntity ||
		!strings.Contains(r.body, "Not started: A drill&#39;s mode is shadow or live") {
		t.Fatalf("a bad mode: %d %s", r.status, r.body)
	}
	if r := ops.post("/admin/drills", url.Values{"dependency": {"crm"}}); r.status != http.StatusUnprocessableEntity ||
		!strings.Contains(r.body, "There is no drillable dependency") {
		t.Fatalf("an unknown dependency: %d", r.status)
	}
	r := ops.post("/admin/drills", url.Values{"dependency": {"payment"}, "mode": {"shadow"}})
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/admin/drills#drill-") {
		t.Fatalf("start a drill: %d %s", r.status, r.header.Get("Location"))
	}
	page = ops.mustGet("/admin/drills")
	if !strings.Contains(page, "Drill #1 of payment started (shadow)") || !strings.Contains(page, `data-status="running"`) ||
		!strings.Contains(page, "by ops@example.com") {
		t.Fatalf("the history does not list the running drill: %s", page)
	}
	if r := ops.post("/admin/drills", url.Values{"dependency": {"payment"}, "mode": {"live"}}); r.status != http.StatusConflict ||
		!strings.Contains(r.body, "already running") || !strings.Contains(r.body, `value="live" checked`) {
		t.Fatalf("a second drill: %d %s", r.status, r.body)
	}
	var n int
	if err := h.pool.QueryRow(context.Background(), `SELECT count(*) FROM admin_audit_log
		WHERE action = 'drill.start' AND actor_email = 'ops@example.com' AND target = 'drill payment'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d audit entries (%v), want 1", n, err)
	}
	if err := h.pool.QueryRow(context.Background(), `SELECT count(*) FROM river_job WHERE kind = 'drill'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d drill jobs (%v), want the one the start inserted", n, err)
	}
}
