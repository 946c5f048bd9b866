package admin_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/apptest"
	"github.com/spillway/spillway/web/browsertest"
)

// TestEndToEndInChromium walks the operator's path in a real headless
// browser: sign in, open failed jobs, raise a job's priority, force the
// payment breaker open and see the overview say so, sign out. Nothing from
// the browser is kept: its profile lives in a temporary directory.
func TestEndToEndInChromium(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	h.user("ops@example.com", app.RoleOperator)
	failed := h.seedJob(seed{state: "discarded", amount: 120000, email: "late@example.com", errorText: "provider answered 503"})
	waiting := h.seedJob(seed{amount: 250000, priority: 3})

	// The browser lives as long as bctx: only later steps get a deadline,
	// each its own guard, so a step the machine runs slowly never eats into
	// the next one's.
	bctx := browsertest.Start(t)

	step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		ctx, cancel := context.WithTimeout(bctx, apptest.Patience)
		defer cancel()
		began := time.Now()
		defer func() { t.Logf("%s: %s", name, time.Since(began).Round(time.Millisecond)) }()
		if err := chromedp.Do(ctx, actions...); err != nil {
			dctx, dcancel := context.WithTimeout(bctx, 5*time.Second)
			defer dcancel()
			loc, _ := chromedp.Run(dctx, chromedp.Location())
			body, _ := chromedp.Run(dctx, chromedp.OuterHTML(chromedp.CSS("body")))
			t.Fatalf("%s: %v\nat %s\n%s", name, err, loc, body)
		}
	}
	text := func(sel string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(bctx, apptest.Patience)
		defer cancel()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	failedRow := `tr[data-job="` + strconv.FormatInt(failed.jobID, 10) + `"]`
	waitingLink := `tr[data-job="` + strconv.FormatInt(waiting.jobID, 10) + `"] a`

	step("sign in",
		chromedp.Navigate(h.url+"/admin/"),
		chromedp.WaitVisible(css(`input[name="email"]`)),
		chromedp.SendKeys(css(`input[name="email"]`), "ops@example.com"),
		chromedp.SendKeys(css(`input[name="password"]`), testPassword),
		chromedp.Click(css(`.signin button[type="submit"]`)),
		chromedp.WaitVisible(css(`#dep-payment`)),
	)
	if got := text(`#dep-payment .mode`); got != "SYNC" {
		t.Fatalf("overview mode %q, want SYNC", got)
	}

	step("open failed jobs",
		chromedp.Click(css(`header nav a[href="/admin/jobs"]`)),
		chromedp.WaitVisible(css(`a[data-tab="failed"]`)),
		chromedp.Click(css(`a[data-tab="failed"]`)),
		chromedp.WaitVisible(css(failedRow)),
	)
	if got := text(failedRow); !strings.Contains(got, "provider answered 503") || !strings.Contains(got, "late@example.com") {
		t.Fatalf("failed job row %q", got)
	}

	step("raise a waiting job's priority",
		chromedp.Click(css(`a[data-tab="pending"]`)),
		chromedp.WaitVisible(css(waitingLink)),
		chromedp.Click(css(waitingLink)),
		chromedp.WaitVisible(css(`#job-actions select[name="new_priority"]`)),
		chromedp.SetValue(css(`#job-actions select[name="new_priority"]`), "1"),
		chromedp.Click(css(`#job-actions form:has(select[name="new_priority"]) button`)),
		chromedp.WaitVisible(css(`.flash`)),
	)
	if got := text(`#job-priority`); got != "1" {
		t.Fatalf("job page shows priority %q after raising", got)
	}
	if _, p, _ := h.job(waiting.jobID); p != 1 {
		t.Fatalf("job priority %d in the database", p)
	}

	step("force the breaker open",
		chromedp.Click(css(`header nav a[href="/admin/breakers"]`)),
		chromedp.WaitVisible(css(`#breaker-payment`)),
		chromedp.SendKeys(css(`#breaker-payment input[name="reason"]`), "drill"),
		chromedp.Click(css(`#breaker-payment button[value="forced_open"]`)),
		chromedp.WaitVisible(css(`.flash`)),
		chromedp.Click(css(`header nav a[href="/admin/"]`)),
		chromedp.WaitVisible(css(`#dep-payment .mode-forced-open`)),
	)
	if got := text(`#dep-payment .mode`); got != "FORCED OPEN" {
		t.Fatalf("overview mode %q after forcing open", got)
	}

	step("sign out",
		chromedp.Click(css(`header form.who button`)),
		chromedp.WaitVisible(css(`input[name="password"]`)),
		chromedp.Navigate(h.url+"/admin/breakers"),
		chromedp.WaitVisible(css(`input[name="password"]`)),
	)
	for _, action := range []string{"signin", "job.reprioritize", "breaker.force", "signout"} {
		if len(h.audits(action)) != 1 {
			t.Errorf("audit log has no single %s entry", action)
		}
	}
}
