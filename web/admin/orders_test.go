package admin_test

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/spillway/spillway/app"
)

// orderSeed is an order of two lines (2 × 12.50 + 1 × 5.00 = 30.00 USD)
// standing at its charge: both reservations made, the charge's outcome
// unknown.
func orderSeed() seed {
	return seed{kind: app.KindOrder, email: "buyer@example.com",
		lines: []app.PricedLine{{SKU: "sku-a", Quantity: 2, UnitPrice: 1250}, {SKU: "sku-b", Quantity: 1, UnitPrice: 500}},
		steps: []app.Step{
			{Name: "reserve:sku-a", Dependency: app.DepInventory, Status: app.StepSucceeded, Mode: app.ModeSync, Attempts: 1, Ref: "res_1"},
			{Name: "reserve:sku-b", Dependency: app.DepInventory, Status: app.StepSucceeded, Mode: app.ModeAsync, Attempts: 2, Ref: "res_2"},
			{Name: "charge", Dependency: app.DepPayment, Status: app.StepProcessing, Mode: app.ModeAsync, Attempts: 1, OutcomeUnknown: true},
		}}
}

var rowRE = regexp.MustCompile(`(?s)<tr data-job="(\d+)">.*?</tr>`)

// rows are the job rows of a jobs page by id.
func rows(body string) map[string]string {
	out := map[string]string{}
	for _, m := range rowRE.FindAllStringSubmatch(body, -1) {
		out[m[1]] = m[0]
	}
	return out
}

func jobIDs(body string) []int64 {
	var ids []int64
	for _, m := range rowRE.FindAllStringSubmatch(body, -1) {
		id, _ := strconv.ParseInt(m[1], 10, 64)
		ids = append(ids, id)
	}
	return ids
}

func TestOrderJobPageListsLinesAndSteps(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	c := h.signedIn("look@example.com", app.RoleViewer)
	o := h.seedJob(orderSeed())

	page := c.mustGet(jobPath(o.jobID))
	for _, want := range []string{
		"order on orders", o.opID.String(), "30.00 USD", "3000 minor units", "buyer@example.com",
		`id="order-lines"`, "sku-a", "12.50 USD", "25.00 USD", "sku-b", "5.00 USD",
		`id="order-steps"`, "2/3 steps done; charge processing (outcome unknown)",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("order job page lacks %q", want)
		}
	}
	steps := regexp.MustCompile(`(?s)<tr data-step="([^"]+)">(.*?)</tr>`).FindAllStringSubmatch(page, -1)
	if len(steps) != 3 {
		t.Fatalf("%d step rows, want 3:\n%s", len(steps), page)
	}
	for i, want := range []struct{ name, dep, status, mode, attempts, outcome string }{
		{"reserve:sku-a", "inventory", "succeeded", "sync", "1", "known"},
		{"reserve:sku-b", "inventory", "succeeded", "async", "2", "known"},
		{"charge", "payment", "processing", "async", "1", "unknown"},
	} {
		row := steps[i][2]
		if steps[i][1] != want.name {
			t.Errorf("step %d is %s, want %s", i, steps[i][1], want.name)
		}
		for _, cell := range []string{">" + want.dep + "<", ">" + want.status + "<", want.mode, ">" + want.attempts + "<", ">" + want.outcome + "<"} {
			if !strings.Contains(row, cell) {
				t.Errorf("step %s lacks %q: %s", want.name, cell, row)
			}
		}
	}

	// The list shows the order's kind, total and where it stands.
	row := rows(c.mustGet("/admin/jobs?tab=pending"))[strconv.FormatInt(o.jobID, 10)]
	for _, want := range []string{"order", "orders", "30.00 USD", "buyer@example.com", "2/3 steps done; charge processing (outcome unknown)"} {
		if !strings.Contains(row, want) {
			t.Errorf("order row lacks %q: %s", want, row)
		}
	}
	// A payment's page and row have no steps.
	p := h.seedJob(seed{})
	if strings.Contains(c.mustGet(jobPath(p.jobID)), "order-steps") {
		t.Error("a payment's page shows steps")
	}
	if strings.Contains(rows(c.mustGet("/admin/jobs?tab=pending"))[strconv.FormatInt(p.jobID, 10)], "steps done") {
		t.Error("a payment's row shows a step summary")
	}
}

func TestKindAndDependencyFilters(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	c := h.signedIn("ops@example.com", app.RoleOperator)
	pay := h.seedJob(seed{amount: 1500}).jobID
	order := h.seedJob(orderSeed()).jobID
	// An order stopped before its charge still calls payment: its steps
	// say so.
	early := orderSeed()
	early.steps = []app.Step{
		{Name: "reserve:sku-a", Dependency: app.DepInventory, Status: app.StepDeclined, Mode: app.ModeSync, Attempts: 1},
		{Name: "reserve:sku-b", Dependency: app.DepInventory, Status: app.StepPending},
		{Name: "charge", Dependency: app.DepPayment, Status: app.StepPending},
	}
	declined := h.seedJob(early).jobID
	other := h.seedJob(seed{kind: "test_record", description: "no operation"}).jobID

	for _, tt := range []struct {
		query string
		want  []int64 // in the pending tab's worker order: all priority 3, so by id
	}{
		{"", []int64{pay, order, declined, other}},
		{"dependency=payment", []int64{pay, order, declined}},
		{"dependency=inventory", []int64{order, declined}},
		{"kind=order", []int64{order, declined}},
		{"kind=payment", []int64{pay}},
		{"kind=test_record", []int64{other}},
		{"kind=order&dependency=payment", []int64{order, declined}},
		{"kind=payment&dependency=inventory", nil},
		{"kind=test_record&dependency=payment", nil},
		{"dependency=inventory&min=3000&max=3000", []int64{order, declined}},
		{"dependency=+inventory+", []int64{order, declined}},
	} {
		body := c.mustGet("/admin/jobs?tab=pending&" + tt.query)
		if got := jobIDs(body); fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%q: got %v, want %v", tt.query, got, tt.want)
		}
		if !strings.Contains(body, "<strong>"+strconv.Itoa(len(tt.want))+"</strong>") {
			t.Errorf("%q: the count is not %d", tt.query, len(tt.want))
		}
	}

	// Both filters are choices, with the current one selected; the kind's
	// include Spillway's own and those found in River.
	body := c.mustGet("/admin/jobs?tab=pending&kind=order&dependency=inventory")
	for _, want := range []string{
		`<select name="kind">`, `<option value="payment">`, `<option value="order" selected>`, `<option value="delivery">`,
		`<option value="test_record">`,
		`<select name="dependency">`, `<option value="payment">`, `<option value="inventory" selected>`,
		"pending jobs, kind order, calling inventory",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the filtered page lacks %q", want)
		}
	}
	if strings.Contains(body, `<input name="kind"`) {
		t.Error("the kind filter is still free text")
	}

	// A bulk action honours the dependency: reviewed, then applied, to the
	// orders only.
	q := url.Values{"tab": {"pending"}, "dependency": {"inventory"}, "action": {"reprioritize"}, "new_priority": {"1"}}
	if review := c.mustGet("/admin/jobs/bulk?" + q.Encode()); !strings.Contains(review, "<strong>2</strong> of 2 matching") {
		t.Errorf("the review does not count the 2 orders:\n%s", review)
	}
	c.mustPost("/admin/jobs/bulk", q)
	for id, want := range map[int64]int{pay: 3, order: 1, declined: 1, other: 3} {
		if _, prio, _ := h.job(id); prio != want {
			t.Errorf("job %d has priority %d after the bulk action on inventory jobs, want %d", id, prio, want)
		}
	}
	if a := h.audits("job.reprioritize"); len(a) == 0 || !strings.Contains(a[len(a)-1].Detail, "calling inventory") {
		t.Errorf("the audit does not name the dependency filter: %v", a)
	}
}

func TestUnknownDependencyIsAReadableError(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	c := h.signedIn("ops@example.com", app.RoleOperator)
	for _, path := range []string{
		"/admin/jobs?dependency=crm",
		"/admin/jobs?dependency=%3Cscript%3E",
		"/admin/jobs/bulk?action=retry&dependency=crm",
	} {
		r := c.get(path)
		if r.status != 422 || !strings.Contains(r.header.Get("Content-Type"), "text/html") ||
			!strings.Contains(r.body, "dependency must be one of payment, inventory") {
			t.Errorf("GET %s: %d %q\n%s", path, r.status, r.header.Get("Content-Type"), r.body)
		}
		if strings.Contains(r.body, "<script>") {
			t.Errorf("GET %s shows the value unescaped", path)
		}
	}
}

// High value is judged by the operation's amount, which for an order is
// its total: an order of cheap lines adding up past HIGH_VALUE_AMOUNT is
// marked, and the amount filters find it by its total.
func TestHighValueCountsAnOrdersTotal(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{highValue: 100000})
	c := h.signedIn("look@example.com", app.RoleViewer)
	big := orderSeed()
	big.lines = []app.PricedLine{{SKU: "sku-a", Quantity: 40, UnitPrice: 2000}, {SKU: "sku-b", Quantity: 1, UnitPrice: 20000}} // 1 000.00
	bigOrder := h.seedJob(big).jobID
	smallOrder := h.seedJob(orderSeed()).jobID // 30.00
	atBound := h.seedJob(seed{amount: 100000}).jobID
	below := h.seedJob(seed{amount: 99999}).jobID

	list := rows(c.mustGet("/admin/jobs?tab=pending"))
	for id, want := range map[int64]bool{bigOrder: true, smallOrder: false, atBound: true, below: false} {
		row := list[strconv.FormatInt(id, 10)]
		if row == "" {
			t.Fatalf("job %d is not listed", id)
		}
		if got := strings.Contains(row, `class="high-value"`); got != want {
			t.Errorf("job %d marked high value: %v, want %v: %s", id, got, want, row)
		}
	}
	if !strings.Contains(list[strconv.FormatInt(bigOrder, 10)], "1,000.00 USD") {
		t.Errorf("the big order's row does not show its total: %s", list[strconv.FormatInt(bigOrder, 10)])
	}
	if page := c.mustGet(jobPath(bigOrder)); !strings.Contains(page, `id="high-value"`) {
		t.Error("the big order's page does not mark it high value")
	}
	if page := c.mustGet(jobPath(smallOrder)); strings.Contains(page, `id="high-value"`) {
		t.Error("the small order's page marks it high value")
	}
	if got := jobIDs(c.mustGet("/admin/jobs?tab=pending&min=100000")); fmt.Sprint(got) != fmt.Sprint([]int64{bigOrder, atBound}) {
		t.Errorf("min=100000 lists %v, want the big order and the payment at the bound", got)
	}
	if got := jobIDs(c.mustGet("/admin/jobs?tab=pending&kind=order&min=100000")); fmt.Sprint(got) != fmt.Sprint([]int64{bigOrder}) {
		t.Errorf("orders of at least 100000 are %v, want the big order", got)
	}
}
