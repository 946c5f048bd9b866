package admin_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/spillway/spillway/app"
)

// An operation whose outcome stayed unknown past RECONCILE_AFTER is flagged
// on the overview and resolved by an operator with a required reason,
// audited; a viewer sees it but cannot resolve it.
func TestUnresolvedOperationIsFlaggedAndResolvedWithAReason(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	ops := h.signedIn("ops@example.com", app.RoleOperator)
	viewer := h.signedIn("view@example.com", app.RoleViewer)
	j := h.seedJob(seed{state: "discarded", amount: 4200})
	fresh := h.seedJob(seed{state: "retryable", amount: 4300})
	// The worker left both processing with an unknown outcome; only the
	// first has been so for longer than RECONCILE_AFTER (30 min).
	ctx := context.Background()
	for id, age := range map[any]string{j.opID: "2 hours", fresh.opID: "1 minute"} {
		if _, err := h.pool.Exec(ctx, `UPDATE operations SET status = 'processing', reason = 'outcome_unknown',
			completed_at = NULL, attempts = 2, outcome_unknown_since = now() - $2::interval, updated_at = now() - $2::interval
			WHERE id = $1`, id, age); err != nil {
			t.Fatal(err)
		}
	}

	if page := ops.mustGet("/admin/"); !strings.Contains(page, `id="unresolved-alert"`) || !strings.Contains(page, "1 operation has") {
		t.Fatalf("the overview does not flag the unresolved operation:\n%s", page)
	}
	list := ops.mustGet("/admin/operations/unresolved")
	if !strings.Contains(list, j.opID.String()) || strings.Contains(list, fresh.opID.String()) {
		t.Fatal("the unresolved page lists the wrong operations")
	}
	if strings.Contains(viewer.mustGet("/admin/operations/unresolved"), "/resolve") {
		t.Fatal("a viewer is offered the resolve form")
	}
	path := "/admin/operations/" + j.opID.String() + "/resolve"
	if r := viewer.post(path, url.Values{"outcome": {"failed"}, "reason": {"x"}}); r.status != http.StatusForbidden {
		t.Fatalf("viewer resolve: %d", r.status)
	}
	// No reason, no verdict.
	if r := ops.post(path, url.Values{"outcome": {"failed"}, "reason": {"  "}}); r.status != http.StatusUnprocessableEntity ||
		!strings.Contains(r.body, "say why") {
		t.Fatalf("resolve without a reason: %d", r.status)
	}
	if st, _ := h.opStatus(j.opID); st != "processing" {
		t.Fatalf("a refused verdict changed the operation to %s", st)
	}
	ops.mustPost(path, url.Values{"outcome": {"succeeded"}, "provider_ref": {"ch_found"},
		"reason": {"found ch_found in the provider dashboard"}})
	if st, _ := h.opStatus(j.opID); st != "succeeded" {
		t.Fatalf("operation %s after resolving as succeeded", st)
	}
	a := h.audits("operation.resolve")
	if len(a) != 1 || a[0].ActorEmail != "ops@example.com" || a[0].Detail != "found ch_found in the provider dashboard" ||
		!strings.Contains(string(a[0].Before), `"processing"`) || !strings.Contains(string(a[0].After), `"succeeded"`) {
		t.Fatalf("audit: %+v", a)
	}
	if strings.Contains(ops.mustGet("/admin/"), `id="unresolved-alert"`) {
		t.Fatal("the overview still flags a resolved operation")
	}
	// A verdict on a closed operation is refused.
	if r := ops.post(path, url.Values{"outcome": {"failed"}, "reason": {"again"}}); r.status != http.StatusConflict {
		t.Fatalf("second verdict: %d", r.status)
	}
}
