package admin_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/apptest"
	"github.com/spillway/spillway/web/admin"
)

func TestSignInSetsSafeSessionCookie(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	h.user("ops@example.com", app.RoleOperator)
	c := h.client()

	// Not signed in: sent to sign in, remembering where to.
	r := c.get("/admin/jobs?tab=failed")
	if r.status != http.StatusSeeOther || r.location != "/admin/signin?next="+url.QueryEscape("/admin/jobs?tab=failed") {
		t.Fatalf("anonymous GET: %d %q", r.status, r.location)
	}
	if !strings.Contains(c.mustGet("/admin/signin"), `name="password"`) {
		t.Fatal("sign-in page has no password field")
	}

	r = c.post("/admin/signin", url.Values{"email": {"ops@example.com"}, "password": {"wrong password!"}})
	if r.status != http.StatusUnauthorized || !strings.Contains(r.body, "Wrong email or password") {
		t.Fatalf("wrong password: %d", r.status)
	}
	r = c.post("/admin/signin", url.Values{"email": {"nobody@example.com"}, "password": {testPassword}})
	if r.status != http.StatusUnauthorized || !strings.Contains(r.body, "Wrong email or password") {
		t.Fatalf("unknown email: %d", r.status)
	}

	r = c.post("/admin/signin", url.Values{"email": {"OPS@example.com "}, "password": {testPassword}, "next": {"/admin/jobs?tab=failed"}})
	if r.status != http.StatusSeeOther || r.location != "/admin/jobs?tab=failed" {
		t.Fatalf("sign in: %d %q %s", r.status, r.location, r.body)
	}
	cookie := r.header.Get("Set-Cookie")
	for _, want := range []string{"spillway_admin_session=", "Path=/admin", "HttpOnly", "SameSite=Lax"} {
		if !strings.Contains(cookie, want) {
			t.Errorf("cookie %q lacks %s", cookie, want)
		}
	}
	if strings.Contains(cookie, "Secure") {
		t.Errorf("cookie %q is Secure though SecureCookies is false", cookie)
	}
	// Only the token's hash is stored.
	token := strings.TrimPrefix(strings.Split(cookie, ";")[0], "spillway_admin_session=")
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) != 32 {
		t.Fatalf("token %q is not 32 random bytes", token)
	}
	sum := sha256.Sum256([]byte(token))
	if n := h.count(`SELECT count(*) FROM admin_sessions WHERE token_hash = $1`, sum[:]); n != 1 {
		t.Fatalf("sessions with the token's hash: %d", n)
	}
	if n := h.count(`SELECT count(*) FROM admin_sessions WHERE token_hash = $1`, []byte(token)); n != 0 {
		t.Fatal("the raw token is stored")
	}
	if !strings.Contains(c.mustGet("/admin/jobs?tab=failed"), "ops@example.com (operator)") {
		t.Fatal("signed-in page does not name the user")
	}
	// An open redirect is not possible through next.
	c2 := h.client()
	r = c2.post("/admin/signin", url.Values{"email": {"ops@example.com"}, "password": {testPassword}, "next": {"https://evil.example/"}})
	if r.location != "/admin/" {
		t.Fatalf("next to another site redirected to %q", r.location)
	}

	// Sign out ends the session in the database, not only in the browser.
	if loc := c.mustPost("/admin/signout", nil); loc != "/admin/signin" {
		t.Fatalf("sign out went to %q", loc)
	}
	if n := h.count(`SELECT count(*) FROM admin_sessions WHERE token_hash = $1`, sum[:]); n != 0 {
		t.Fatal("session survived sign-out")
	}
	if r := c.get("/admin/"); r.status != http.StatusSeeOther {
		t.Fatalf("after sign out: %d", r.status)
	}
	if got := len(h.audits("signin")); got != 2 {
		t.Errorf("signin audit entries: %d, want 2", got)
	}
	if got := len(h.audits("signout")); got != 1 {
		t.Errorf("signout audit entries: %d, want 1", got)
	}
}

func TestSecureCookiesWhenConfigured(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	// A second handler on the same database, as a production instance.
	hh, err := admin.New(admin.Config{Pool: h.pool, Operator: h.operator, SecureCookies: true})
	if err != nil {
		t.Fatal(err)
	}
	h.user("ops@example.com", app.RoleOperator)
	req := newFormRequest("/admin/signin", url.Values{"email": {"ops@example.com"}, "password": {testPassword}})
	rec := serve(hh, req)
	if rec.Code != http.StatusSeeOther || !strings.Contains(rec.Header().Get("Set-Cookie"), "Secure") {
		t.Fatalf("%d, cookie %q", rec.Code, rec.Header().Get("Set-Cookie"))
	}
}

func TestSignInRateLimited(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{limits: app.SignInLimits{Window: time.Hour, PerEmail: 3, PerAddress: 5, SessionLife: time.Hour}})
	h.user("ops@example.com", app.RoleOperator)
	c := h.client()
	for i := range 3 {
		if r := c.post("/admin/signin", url.Values{"email": {"ops@example.com"}, "password": {"guess number " + string(rune('a'+i))}}); r.status != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i, r.status)
		}
	}
	// The right password no longer helps for this account…
	r := c.post("/admin/signin", url.Values{"email": {"ops@example.com"}, "password": {testPassword}})
	if r.status != http.StatusTooManyRequests || !strings.Contains(r.body, "Too many failed sign-ins") {
		t.Fatalf("after 3 failures: %d", r.status)
	}
	// …and this address may try only a few more accounts.
	h.user("other@example.com", app.RoleOperator)
	for _, e := range []string{"a@example.com", "b@example.com"} {
		c.post("/admin/signin", url.Values{"email": {e}, "password": {"wrong password!"}})
	}
	r = c.post("/admin/signin", url.Values{"email": {"other@example.com"}, "password": {testPassword}})
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("after 5 failures from one address: %d", r.status)
	}
	if n := h.count(`SELECT count(*) FROM admin_sessions`); n != 0 {
		t.Fatalf("%d sessions created while limited", n)
	}
}

func TestEnsureFirstAdmin(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	ctx := context.Background()
	if err := h.operator.EnsureFirstAdmin(ctx, "Boss@Example.com", "short"); err == nil || !strings.Contains(err.Error(), "ADMIN_PASSWORD") {
		t.Fatalf("short password: %v", err)
	}
	if err := h.operator.EnsureFirstAdmin(ctx, "not an email", testPassword); err == nil || !strings.Contains(err.Error(), "ADMIN_EMAIL") {
		t.Fatalf("bad email: %v", err)
	}
	if err := h.operator.EnsureFirstAdmin(ctx, "Boss@Example.com", testPassword); err != nil {
		t.Fatal(err)
	}
	// A restart with another password does not reset the one in use.
	if err := h.operator.EnsureFirstAdmin(ctx, "boss@example.com", "another long password"); err != nil {
		t.Fatal(err)
	}
	c := h.client()
	if r := c.post("/admin/signin", url.Values{"email": {"boss@example.com"}, "password": {testPassword}}); r.status != http.StatusSeeOther {
		t.Fatalf("first admin cannot sign in: %d", r.status)
	}
	if n := h.count(`SELECT count(*) FROM admin_users WHERE email = 'boss@example.com' AND role = 'operator'`); n != 1 {
		t.Fatalf("operators: %d", n)
	}
	if got := len(h.audits("user.create")); got != 1 {
		t.Fatalf("user.create entries: %d", got)
	}
}

// postStatus posts a form as a fresh browser would and returns the status;
// unlike client it may run on any goroutine.
func postStatus(base, path string, form url.Values) (int, error) {
	c := &http.Client{Timeout: apptest.Patience,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.PostForm(base+path, form)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode, nil
}

// guessAtOnce sends forms all at once, released together, and counts the
// answers by status.
func guessAtOnce(t *testing.T, h *harness, forms []url.Values) map[int]int {
	t.Helper()
	start := make(chan struct{})
	statuses := make(chan int, len(forms))
	errs := make(chan error, len(forms))
	var wg sync.WaitGroup
	for _, f := range forms {
		wg.Go(func() {
			<-start
			status, err := postStatus(h.url, "/admin/signin", f)
			if err != nil {
				errs <- err
				return
			}
			statuses <- status
		})
	}
	close(start)
	wg.Wait()
	close(statuses)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got := map[int]int{}
	for s := range statuses {
		got[s]++
	}
	return got
}

func TestConcurrentGuessesForOneEmailCheckedOnlyUpToTheLimit(t *testing.T) {
	t.Parallel()
	clk := newClock()
	h := newHarness(t, harnessOpts{now: clk.Now})
	h.user("ops@example.com", app.RoleOperator)
	lim := app.DefaultSignInLimits()
	const guesses = 40
	var forms []url.Values
	for i := range guesses {
		forms = append(forms, url.Values{"email": {"ops@example.com"}, "password": {fmt.Sprintf("wrong guess %02d", i)}})
	}
	got := guessAtOnce(t, h, forms)
	// However they interleave, exactly PerEmail reach the password check
	// (401); the rest are refused before it (429).
	if got[http.StatusUnauthorized] != lim.PerEmail || got[http.StatusTooManyRequests] != guesses-lim.PerEmail {
		t.Fatalf("answers %v, want %d×401 and %d×429", got, lim.PerEmail, guesses-lim.PerEmail)
	}
	if n := h.count(`SELECT count(*) FROM admin_login_attempts WHERE email = 'ops@example.com' AND NOT ok`); n != lim.PerEmail {
		t.Fatalf("%d failed attempts recorded, want %d", n, lim.PerEmail)
	}

	// The right password is refused too, until the window has passed since
	// the guesses.
	right := url.Values{"email": {"ops@example.com"}, "password": {testPassword}}
	c := h.client()
	if r := c.post("/admin/signin", right); r.status != http.StatusTooManyRequests {
		t.Fatalf("right password straight after: %d", r.status)
	}
	clk.Advance(lim.Window - time.Second)
	if r := c.post("/admin/signin", right); r.status != http.StatusTooManyRequests {
		t.Fatalf("right password a second before the window ends: %d", r.status)
	}
	clk.Advance(2 * time.Second)
	if r := c.post("/admin/signin", right); r.status != http.StatusSeeOther {
		t.Fatalf("right password after the window: %d %s", r.status, r.body)
	}
	// A right password is recorded as such, not as a failure.
	if n := h.count(`SELECT count(*) FROM admin_login_attempts WHERE ok`); n != 1 {
		t.Fatalf("%d successful attempts recorded, want 1", n)
	}
}

func TestConcurrentGuessesFromOneAddressCheckedOnlyUpToTheLimit(t *testing.T) {
	t.Parallel()
	lim := app.SignInLimits{Window: time.Hour, PerEmail: 5, PerAddress: 6, SessionLife: time.Hour}
	h := newHarness(t, harnessOpts{limits: lim, now: newClock().Now})
	const guesses = 30
	var forms []url.Values
	for i := range guesses { // a different account each time: only the address limit binds
		forms = append(forms, url.Values{"email": {fmt.Sprintf("u%02d@example.com", i)}, "password": {testPassword}})
	}
	got := guessAtOnce(t, h, forms)
	if got[http.StatusUnauthorized] != lim.PerAddress || got[http.StatusTooManyRequests] != guesses-lim.PerAddress {
		t.Fatalf("answers %v, want %d×401 and %d×429", got, lim.PerAddress, guesses-lim.PerAddress)
	}
}

func TestSignInThroughTrustedProxyCountsTheForwardedAddress(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{
		limits:         app.SignInLimits{Window: time.Hour, PerEmail: 10, PerAddress: 2, SessionLife: time.Hour},
		trustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, // the test's connections come from here
	})
	h.user("ops@example.com", app.RoleOperator)
	from := func(xff string) *client {
		c := h.client()
		c.header.Set("X-Forwarded-For", xff)
		return c
	}
	a := from("198.51.100.1")
	for _, e := range []string{"a@example.com", "b@example.com"} {
		if r := a.post("/admin/signin", url.Values{"email": {e}, "password": {"wrong password!"}}); r.status != http.StatusUnauthorized {
			t.Fatalf("guess from 198.51.100.1: %d", r.status)
		}
	}
	if r := a.post("/admin/signin", url.Values{"email": {"c@example.com"}, "password": {"wrong password!"}}); r.status != http.StatusTooManyRequests {
		t.Fatalf("third guess from 198.51.100.1: %d", r.status)
	}
	// Writing another address in front of what the proxy appended does
	// not escape the limit.
	forged := from("203.0.113.9, 198.51.100.1")
	if r := forged.post("/admin/signin", url.Values{"email": {"d@example.com"}, "password": {"wrong password!"}}); r.status != http.StatusTooManyRequests {
		t.Fatalf("guess with a forged entry: %d", r.status)
	}
	// Another client behind the same proxy has its own allowance, and
	// its session and audit entry name its address.
	b := from("198.51.100.2")
	if r := b.post("/admin/signin", url.Values{"email": {"ops@example.com"}, "password": {testPassword}}); r.status != http.StatusSeeOther {
		t.Fatalf("sign in from 198.51.100.2: %d", r.status)
	}
	if n := h.count(`SELECT count(*) FROM admin_sessions WHERE ip = '198.51.100.2'`); n != 1 {
		t.Fatalf("sessions from 198.51.100.2: %d", n)
	}
	if e := h.audits("signin"); len(e) != 1 || e[0].IP != "198.51.100.2" {
		t.Fatalf("signin audit: %+v", e)
	}
}

func TestSecureCookieWhenPublicURLIsHTTPS(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	h.user("ops@example.com", app.RoleOperator)
	for _, tc := range []struct {
		publicURL string
		secure    bool // SecureCookies
		want      bool
	}{
		{"https://pay.example.com", false, true},
		{"HTTPS://pay.example.com/base", false, true},
		{"http://127.0.0.1:8080", false, false},
		{"http://127.0.0.1:8080", true, true},
		{"", false, false},
	} {
		hh, err := admin.New(admin.Config{Pool: h.pool, Operator: h.operator,
			PublicURL: tc.publicURL, SecureCookies: tc.secure})
		if err != nil {
			t.Fatal(err)
		}
		rec := serve(hh, newFormRequest("/admin/signin", url.Values{"email": {"ops@example.com"}, "password": {testPassword}}))
		cookie := rec.Header().Get("Set-Cookie")
		if rec.Code != http.StatusSeeOther || strings.Contains(cookie, "; Secure") != tc.want {
			t.Errorf("PublicURL %q, SecureCookies %v: %d, cookie %q, want Secure %v", tc.publicURL, tc.secure, rec.Code, cookie, tc.want)
		}
	}
	if _, err := admin.New(admin.Config{Pool: h.pool, Operator: h.operator, PublicURL: "://no scheme"}); err == nil {
		t.Error("a PublicURL that is no URL was accepted")
	}
}

func TestPasswordResetEndsTheUsersSessions(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	phone := h.signedIn("ops@example.com", app.RoleOperator)
	laptop := h.client()
	if r := laptop.post("/admin/signin", url.Values{"email": {"ops@example.com"}, "password": {testPassword}}); r.status != http.StatusSeeOther {
		t.Fatalf("second sign in: %d", r.status)
	}
	colleague := h.signedIn("viewer@example.com", app.RoleViewer)

	const newPassword = "a brand new passphrase"
	if _, err := h.operator.CreateUser(context.Background(), app.Actor{Email: "cli"}, "ops@example.com", newPassword, app.RoleOperator); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*client{"phone": phone, "laptop": laptop} {
		if r := c.get("/admin/audit"); r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, "/admin/signin") {
			t.Errorf("%s after the reset: %d %q", name, r.status, r.location)
		}
	}
	if n := h.count(`SELECT count(*) FROM admin_sessions s JOIN admin_users u ON u.id = s.user_id WHERE u.email = 'ops@example.com'`); n != 0 {
		t.Fatalf("%d sessions survived the reset", n)
	}
	colleague.mustGet("/admin/audit") // other users keep theirs
	resets := h.audits("user.reset")
	if len(resets) != 1 || resets[0].Detail != "password replaced; 2 sessions signed out" {
		t.Fatalf("reset audit: %+v", resets)
	}
	if r := phone.post("/admin/signin", url.Values{"email": {"ops@example.com"}, "password": {newPassword}}); r.status != http.StatusSeeOther {
		t.Fatalf("sign in with the new password: %d", r.status)
	}
}

func TestIdleSessionIsRefusedAndDeleted(t *testing.T) {
	t.Parallel()
	clk := newClock()
	h := newHarness(t, harnessOpts{now: clk.Now}) // SessionIdle zero: app.DefaultSessionIdle
	c := h.signedIn("ops@example.com", app.RoleOperator)
	// Used every 29 minutes, the session outlives 30 minutes…
	for range 3 {
		clk.Advance(app.DefaultSessionIdle - time.Minute)
		c.mustGet("/admin/audit")
	}
	// …but not a pause longer than that.
	clk.Advance(app.DefaultSessionIdle + time.Second)
	if r := c.get("/admin/audit"); r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, "/admin/signin?next=") {
		t.Fatalf("after idling: %d %q", r.status, r.location)
	}
	if n := h.count(`SELECT count(*) FROM admin_sessions`); n != 0 {
		t.Fatalf("the idle session was not deleted: %d left", n)
	}
}

// With a short idle time, last_seen_at is refreshed often enough that a
// session used at a steady pace below it never expires (a once-a-minute
// refresh would lose this one at the second request).
func TestSessionInUseNeverIdlesOut(t *testing.T) {
	t.Parallel()
	clk := newClock()
	h := newHarness(t, harnessOpts{now: clk.Now, sessionIdle: time.Minute})
	c := h.signedIn("ops@example.com", app.RoleOperator)
	for range 10 {
		clk.Advance(50 * time.Second)
		c.mustGet("/admin/audit")
	}
	clk.Advance(61 * time.Second)
	if r := c.get("/admin/audit"); r.status != http.StatusSeeOther {
		t.Fatalf("after a pause over the idle time: %d", r.status)
	}
}
