package admin_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/spillway/spillway/app"
)

func TestSignInFormOverItsCapIsRefusedWith413(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	c := h.client()
	r := c.post("/admin/signin", url.Values{"email": {"ops@example.com"}, "password": {strings.Repeat("x", 9<<10)}})
	if r.status != http.StatusRequestEntityTooLarge || !strings.Contains(r.body, "larger than the 8 KiB this page accepts") {
		t.Fatalf("%d\n%s", r.status, r.body)
	}
	if n := h.count(`SELECT count(*) FROM admin_login_attempts`); n != 0 {
		t.Fatalf("%d attempts recorded for a form that was not read", n)
	}
}

// The cap on signed-in forms leaves room for the largest real one: more
// ticked jobs than may be selected, with the longest ids, still reach the
// handler and get its message rather than a 413.
func TestSelectedFormOfMostJobsFitsTheCap(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	c := h.signedIn("ops@example.com", app.RoleOperator)
	const maxSelected = 1000 // job_actions.go
	form := url.Values{"action": {"retry"}, "return": {"/admin/jobs?tab=failed&kind=payment&queue=payments&q=" + strings.Repeat("x", 200)}}
	for range maxSelected + 1 {
		form.Add("id", "9223372036854775807")
	}
	r := c.post("/admin/jobs/action", form)
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "At most 1000 jobs can be selected") {
		t.Fatalf("%d selected ids: %d\n%s", maxSelected+1, r.status, r.body)
	}

	// Past the cap, every signed-in form is refused before its handler.
	pad := strings.Repeat("x", 64<<10)
	for _, path := range []string{"/admin/jobs/action", "/admin/jobs/bulk", "/admin/breakers/payment/force", "/admin/signout"} {
		r := c.post(path, url.Values{"action": {"retry"}, "state": {"forced_open"}, "pad": {pad}})
		if r.status != http.StatusRequestEntityTooLarge || !strings.Contains(r.body, "larger than the 64 KiB") {
			t.Errorf("POST %s over the cap: %d\n%s", path, r.status, r.body)
		}
	}
	// Nothing happened, and the session is still there.
	if n := h.count(`SELECT count(*) FROM admin_audit_log WHERE action <> 'signin' AND action <> 'user.create'`); n != 0 {
		t.Fatalf("%d audit entries from refused forms", n)
	}
	c.mustGet("/admin/audit")
}
