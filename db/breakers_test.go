package db_test

import (
	"context"
	"testing"
	"time"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/db/dbtest"
)

// An operator's breaker change and its audit entry are one transaction:
// when the entry cannot be written, the breaker, its history and the
// other instances' notification are not changed either.
func TestBreakerChangeAndItsAuditAreAtomic(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	b, err := db.EnsureBreaker(ctx, pool, "payment", app.DefaultBreakerPolicy(), now)
	if err != nil {
		t.Fatal(err)
	}
	audits := func() (n int) {
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM admin_audit_log`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	to, err := b.Force(app.BreakerForcedOpen, now)
	if err != nil {
		t.Fatal(err)
	}
	// An actor that does not exist: the audit insert fails on its foreign key.
	bad := app.AuditEntry{At: now, ActorID: 1 << 40, ActorEmail: "ghost@example.com", Action: "breaker.force", Target: "breaker payment"}
	if _, err := db.TransitionBreaker(ctx, pool, b, to, app.Transition{Reason: "drill", Actor: "ghost", Audit: &bad}); err == nil {
		t.Fatal("a transition whose audit entry failed was committed")
	}
	if got, err := db.GetBreaker(ctx, pool, "payment"); err != nil || got.State != app.BreakerClosed || got.Generation != b.Generation {
		t.Fatalf("after the failed change the breaker is %+v (%v), want it unchanged", got, err)
	}
	p := app.DefaultBreakerPolicy()
	p.MinCalls++
	if err := db.SetBreakerPolicy(ctx, pool, "payment", p, app.Transition{Reason: "thresholds", Audit: &bad}, now); err == nil {
		t.Fatal("a policy change whose audit entry failed was committed")
	}
	if got, _ := db.GetBreaker(ctx, pool, "payment"); got.Policy != app.DefaultBreakerPolicy() || audits() != 0 {
		t.Fatalf("after the failed policy change: %+v, %d audit entries", got.Policy, audits())
	}

	good := app.AuditEntry{At: now, ActorEmail: "ops@example.com", Action: "breaker.force", Target: "breaker payment"}
	if won, err := db.TransitionBreaker(ctx, pool, b, to, app.Transition{Reason: "drill", Actor: "ops", Audit: &good}); err != nil || !won {
		t.Fatalf("transition: %v %v", won, err)
	}
	if got, _ := db.GetBreaker(ctx, pool, "payment"); got.State != app.BreakerForcedOpen || audits() != 1 {
		t.Fatalf("after the change: %s, %d audit entries; want forced_open and 1", got.State, audits())
	}
}
