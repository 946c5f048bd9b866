package admin_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/apptest"
	"github.com/spillway/spillway/web/admin"
)

func TestEveryPageRenders(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	c := h.signedIn("look@example.com", app.RoleViewer)
	j := h.seedJob(seed{email: "a@b.example", description: "order 7", errorText: "timeout after 3s", state: "retryable"})
	if _, err := h.pool.Exec(context.Background(), `UPDATE operations SET mode = 'sync', status = 'succeeded',
		completed_at = created_at + interval '120 milliseconds' WHERE id = $1`, j.opID); err != nil {
		t.Fatal(err)
	}
	if _, err := h.pool.Exec(context.Background(), `INSERT INTO deliveries (operation_id, channel, target, attempt, outcome, response_code)
		VALUES ($1, 'webhook', 'https://shop.example/hook', 1, 'sent', 204)`, j.opID); err != nil {
		t.Fatal(err)
	}
	overview := c.mustGet("/admin/")
	for _, want := range []string{`data-mode="SYNC"`, "<svg", "Queue", "payments", "120ms", `data-live="5"`} {
		if !strings.Contains(overview, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	if strings.Contains(overview, "Backlog waiting") || strings.Contains(overview, "Sync bulkhead") {
		t.Error("the overview shows a backlog or bulkhead it was not given")
	}
	for _, tab := range admin.JobTabs {
		c.mustGet("/admin/jobs?tab=" + string(tab))
	}
	detail := c.mustGet(jobPath(j.jobID))
	for _, want := range []string{"timeout after 3s", j.opID.String(), "a@b.example", "order 7", "19.99 USD",
		"Deliveries", "https://shop.example/hook", "204"} {
		if !strings.Contains(detail, want) {
			t.Errorf("job page lacks %q", want)
		}
	}
	c.mustGet("/admin/breakers")
	c.mustGet("/admin/audit")
	if page := c.mustGet("/admin/operations/unresolved"); !strings.Contains(page, `id="no-unresolved"`) {
		t.Error("the unresolved page does not say nothing is unresolved")
	}
	if _, err := h.pool.Exec(context.Background(), `INSERT INTO orphan_charges (charge_id, reference, amount, currency, status,
		created_at, found_at) VALUES ('ch_<orphan>', 'not-ours', 4200, 'usd', 'open', now(), now())`); err != nil {
		t.Fatal(err)
	}
	if page := c.mustGet("/admin/orphans"); !strings.Contains(page, "ch_&lt;orphan&gt;") || !strings.Contains(page, "42.00 USD") {
		t.Error("the orphans page does not list the orphan charge, escaped")
	}
	if !strings.Contains(c.mustGet("/admin/"), `id="orphans-alert"`) {
		t.Error("the overview does not flag the open orphan charge")
	}
	if r := c.get("/admin/static/live.js"); r.status != http.StatusOK || !strings.Contains(r.body, "data-live") {
		t.Fatalf("live.js: %d", r.status)
	}
	if csp := c.get("/admin/").header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
}

func TestErrorsRenderReadablePages(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	c := h.signedIn("look@example.com", app.RoleViewer)
	for path, want := range map[string]struct {
		status int
		text   string
	}{
		"/admin/jobs?priority=9":         {http.StatusUnprocessableEntity, "priority must be 1 (highest) to 4"},
		"/admin/jobs?tab=nope":           {http.StatusUnprocessableEntity, "unknown tab"},
		"/admin/jobs?min=5&max=1":        {http.StatusUnprocessableEntity, "above the maximum"},
		"/admin/jobs?op=not-a-uuid":      {http.StatusUnprocessableEntity, "is not a UUID"},
		"/admin/jobs/999999":             {http.StatusNotFound, "no such thing"},
		"/admin/jobs/abc":                {http.StatusNotFound, "There is no job"},
		"/admin/nowhere":                 {http.StatusNotFound, "There is no admin page"},
		"/admin/jobs/bulk?action=delete": {http.StatusUnprocessableEntity, "unknown action"},
	} {
		r := c.get(path)
		if r.status != want.status || !strings.Contains(r.body, want.text) || !strings.Contains(r.header.Get("Content-Type"), "text/html") {
			t.Errorf("GET %s: %d %q, want %d with %q", path, r.status, r.header.Get("Content-Type"), want.status, want.text)
		}
	}
}

func TestFiltersAndKeysetPagination(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	c := h.signedIn("look@example.com", app.RoleViewer)
	var ids []int64
	for i := range 120 {
		ids = append(ids, h.seedJob(seed{amount: int64(1000 + i), priority: 3 - i%2}).jobID)
	}
	target := h.seedJob(seed{amount: 777777, email: "vip@example.com", priority: 4})
	done := h.seedJob(seed{state: "discarded", email: "vip@example.com", amount: 555})

	// Pending in worker order across pages: every job once, sorted.
	seen := map[string]bool{}
	var order []string
	next := "/admin/jobs?tab=pending"
	rowRE := regexp.MustCompile(`<tr data-job="(\d+)">`)
	nextRE := regexp.MustCompile(`href="(/admin/jobs\?[^"]*after=[^"]*)" rel="next"`)
	pages := 0
	for next != "" {
		body := c.mustGet(strings.ReplaceAll(next, "&amp;", "&"))
		pages++
		for _, m := range rowRE.FindAllStringSubmatch(body, -1) {
			if seen[m[1]] {
				t.Fatalf("job %s on two pages", m[1])
			}
			seen[m[1]] = true
			order = append(order, m[1])
		}
		next = ""
		if m := nextRE.FindStringSubmatch(body); m != nil {
			next = m[1]
		}
	}
	if len(seen) != 121 || pages != 3 {
		t.Fatalf("%d jobs on %d pages, want 121 on 3", len(seen), pages)
	}
	// Priority 2 jobs (odd i) first, then priority 3, then the 4.
	if first, _ := strconv.ParseInt(order[0], 10, 64); first != ids[1] {
		t.Fatalf("first in worker order is %d, want %d", first, ids[1])
	}
	if order[120] != strconv.FormatInt(target.jobID, 10) {
		t.Fatal("priority 4 job is not last")
	}

	// Prioritized: priority 1-2 waiting jobs only.
	body := c.mustGet("/admin/jobs?tab=prioritized")
	if n := len(rowRE.FindAllString(body, -1)); n != 50 || !strings.Contains(body, "<strong>60</strong>") {
		t.Fatalf("prioritized shows %d rows", n)
	}

	for q, want := range map[string][]int64{
		"tab=pending&email=VIP@example.com":                      {target.jobID},
		"tab=failed&email=vip@example.com":                       {done.jobID},
		"tab=pending&min=777777&max=777777":                      {target.jobID},
		"tab=pending&priority=4":                                 {target.jobID},
		"tab=pending&op=" + mustOp(h, target.jobID):              {target.jobID},
		"tab=pending&kind=payment&queue=payments&min=1119":       {ids[119], target.jobID},
		"tab=failed&within=1h":                                   {done.jobID},
		"tab=pending&kind=nope":                                  {},
		"tab=pending&queue=payments&min=1000&max=1001&within=1h": {ids[1], ids[0]},
	} {
		body := c.mustGet("/admin/jobs?" + q)
		var got []int64
		for _, m := range rowRE.FindAllStringSubmatch(body, -1) {
			id, _ := strconv.ParseInt(m[1], 10, 64)
			got = append(got, id)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) && !(len(got) == 0 && len(want) == 0) {
			t.Errorf("%s: got %v, want %v", q, got, want)
		}
	}
}

func mustOp(h *harness, jobID int64) string {
	var id string
	if err := h.pool.QueryRow(context.Background(), `SELECT id::text FROM operations WHERE job_id = $1`, jobID).Scan(&id); err != nil {
		h.t.Fatal(err)
	}
	return id
}

// Everything a customer or a provider controls is shown escaped.
func TestUserSuppliedTextIsEscaped(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	c := h.signedIn("ops@example.com", app.RoleOperator)
	payload := `<script>alert("x")</script>`
	j := h.seedJob(seed{state: "discarded", description: "desc " + payload, email: `"<script>alert(1)</script>"@evil.example`,
		errorText: "provider said " + payload})
	if _, err := h.pool.Exec(context.Background(), `INSERT INTO deliveries (operation_id, channel, target, attempt, outcome, error)
		VALUES ($1, 'webhook', $2, 1, 'failed', $2)`, j.opID, "https://x.example/"+payload); err != nil {
		t.Fatal(err)
	}
	// An operator's reason goes into history and the audit log.
	c.mustPost("/admin/breakers/payment/force", url.Values{"state": {"forced_open"}, "reason": {payload}})
	for _, page := range []string{"/admin/jobs?tab=failed", jobPath(j.jobID), "/admin/", "/admin/breakers", "/admin/audit",
		"/admin/jobs?tab=failed&email=" + url.QueryEscape(payload)} {
		body := c.mustGet(page)
		if strings.Contains(body, "<script>alert") {
			t.Errorf("%s renders a payload unescaped", page)
		}
		if !strings.Contains(body, "&lt;script&gt;") {
			t.Errorf("%s does not show the payload escaped", page)
		}
	}
}

// River has no API to change a job's priority; the admin updates the
// column. This proves River then works a raised job before older ones
// (River v0.51.1 fetches by priority, scheduled_at, id).
func TestRaisedJobIsWorkedFirst(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	c := h.signedIn("ops@example.com", app.RoleOperator)
	past := time.Now().Add(-time.Minute)
	var older []int64
	for i := range 5 {
		older = append(older, h.seedJob(seed{kind: "test_record", description: fmt.Sprint("old ", i), scheduledAt: past}).jobID)
	}
	raised := h.seedJob(seed{kind: "test_record", description: "urgent"}).jobID
	c.mustPost(jobPath(raised)+"/action", url.Values{"action": {"reprioritize"}, "new_priority": {"1"}})

	if err := h.testRiver.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		_ = h.testRiver.Stop(sctx)
	})
	var ran []int64
	for len(ran) < 6 {
		select {
		case id := <-h.ran:
			ran = append(ran, id)
		case <-time.After(apptest.Patience):
			t.Fatalf("only %v ran", ran)
		}
	}
	if ran[0] != raised {
		t.Fatalf("worked %v; the raised job %d should be first, before the older %v", ran, raised, older)
	}
	if fmt.Sprint(ran[1:]) != fmt.Sprint(older) {
		t.Fatalf("the rest ran as %v, want %v", ran[1:], older)
	}
}

// backlogReader is a fixed backlog per queue.
type backlogReader map[string]app.Backlog

func (r backlogReader) QueueBacklog(_ context.Context, queue string) (app.Backlog, error) {
	return r[queue], nil
}

// Each dependency's card shows its backlog against its bound, with a
// warning once past it, and the payment card this instance's sync
// bulkhead in words.
func TestOverviewShowsBacklogAndBulkhead(t *testing.T) {
	t.Parallel()
	clk := newClock()
	backlog := app.NewBacklogBounds(app.BacklogConfig{
		Reader: backlogReader{
			app.QueuePayments: {Jobs: 12, Oldest: clk.Now().Add(-3 * time.Minute)},
			app.QueueOrders:   {Jobs: 10, Oldest: clk.Now().Add(-5 * time.Second)},
		},
		Bounds: []app.BacklogBound{
			{Dependency: app.DepPayment, Queue: app.QueuePayments, MaxJobs: 100, MaxAge: 10 * time.Minute},
			{Dependency: app.DepInventory, Queue: app.QueueOrders, MaxJobs: 10},
		},
		Now: clk.Now,
	})
	backlog.Refresh(context.Background())
	sync := app.NewAdmission(16, 4)
	for range 4 {
		sync.TryAcquire(false)
	}
	h := newHarness(t, harnessOpts{now: clk.Now, backlog: backlog, highValue: 100000,
		bulkheads: map[string]admin.Bulkhead{app.DepPayment: sync}})
	if err := h.breakers.Register(context.Background(), app.DepInventory, app.DefaultBreakerPolicy(), app.PolicyOverride{}); err != nil {
		t.Fatal(err)
	}
	c := h.signedIn("look@example.com", app.RoleViewer)

	page := c.mustGet("/admin/")
	payment, inventory := card(t, page, app.DepPayment), card(t, page, app.DepInventory)
	for _, want := range []string{
		`<strong>12</strong> jobs`, "the oldest captured 3m00s ago", "bound: at most 100 jobs, the oldest at most 10m00s",
		`id="bulkhead-payment"`, "4 of 16 sync slots in use on this instance; 4 kept for payments and orders ≥ 100000 (HIGH_VALUE_AMOUNT, minor units: an order counts by its total).",
	} {
		if !strings.Contains(payment, want) {
			t.Errorf("payment card lacks %q:\n%s", want, payment)
		}
	}
	if strings.Contains(payment, "backlog-over") || strings.Contains(payment, `class="shedding"`) {
		t.Errorf("payment card warns though under its bound with slots free:\n%s", payment)
	}
	for _, want := range []string{
		`class="backlog-over"`, "bound: at most 10 jobs, of any age", `id="backlog-over-inventory"`,
		"10 jobs wait, the most it takes is 10", "new captures are refused with 503",
	} {
		if !strings.Contains(inventory, want) {
			t.Errorf("inventory card lacks %q:\n%s", want, inventory)
		}
	}
	if strings.Contains(inventory, "Sync bulkhead") {
		t.Error("inventory card shows a bulkhead it has none of")
	}

	// Past the ordinary slots, the card says who still calls sync; the
	// reading is live, not cached.
	for range 8 {
		sync.TryAcquire(false)
	}
	payment = card(t, c.mustGet("/admin/"), app.DepPayment)
	for _, want := range []string{"12 of 16 sync slots in use", "Only payments and orders ≥ 100000 are worked sync now"} {
		if !strings.Contains(payment, want) {
			t.Errorf("payment card under load lacks %q:\n%s", want, payment)
		}
	}
}

// card is the overview's section for one dependency.
func card(t *testing.T, page, dep string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)<section class="card" id="dep-` + regexp.QuoteMeta(dep) + `">.*?</section>`).FindString(page)
	if m == "" {
		t.Fatalf("the overview has no card for %s:\n%s", dep, page)
	}
	return m
}
