package admin_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/spillway/spillway/app"
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
	hh, err := admin.New(admin.Config{Pool: h.pool, River: h.river, Breakers: h.breakers, SecureCookies: true})
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
	if err := admin.EnsureFirstAdmin(ctx, h.pool, "Boss@Example.com", "short"); err == nil || !strings.Contains(err.Error(), "ADMIN_PASSWORD") {
		t.Fatalf("short password: %v", err)
	}
	if err := admin.EnsureFirstAdmin(ctx, h.pool, "not an email", testPassword); err == nil || !strings.Contains(err.Error(), "ADMIN_EMAIL") {
		t.Fatalf("bad email: %v", err)
	}
	if err := admin.EnsureFirstAdmin(ctx, h.pool, "Boss@Example.com", testPassword); err != nil {
		t.Fatal(err)
	}
	// A restart with another password does not reset the one in use.
	if err := admin.EnsureFirstAdmin(ctx, h.pool, "boss@example.com", "another long password"); err != nil {
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
