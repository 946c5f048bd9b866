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

// The shared run of failures folds each flush in as app.Streak.Then does:
// failures alone extend it, a success seen restarts it from the failures
// after it; each generation has its own, and deltas of one call are folded
// in order.
func TestBreakerStreaksFoldAsTheCallsWould(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	if _, err := db.EnsureBreaker(ctx, pool, "payment", app.DefaultBreakerPolicy(), now); err != nil {
		t.Fatal(err)
	}
	d := func(gen int64, reset bool, failures int) app.StreakDelta {
		return app.StreakDelta{Name: "payment", Generation: gen, Streak: app.Streak{Reset: reset, Failures: failures}}
	}
	steps := []struct {
		deltas []app.StreakDelta
		want   map[int64]int
	}{
		{[]app.StreakDelta{d(1, false, 4)}, map[int64]int{1: 4}},
		{[]app.StreakDelta{d(1, false, 3)}, map[int64]int{1: 7}},
		{[]app.StreakDelta{d(1, true, 2)}, map[int64]int{1: 2}},
		{[]app.StreakDelta{d(1, false, 5), d(1, true, 1), d(1, false, 2)}, map[int64]int{1: 3}},
		{[]app.StreakDelta{d(2, false, 6), d(1, false, 1)}, map[int64]int{1: 4, 2: 6}},
		{[]app.StreakDelta{d(2, true, 0)}, map[int64]int{2: 0}},
	}
	for i, st := range steps {
		got, err := db.AddBreakerStreaks(ctx, pool, st.deltas, now)
		if err != nil {
			t.Fatal(err)
		}
		m := map[int64]int{}
		for _, g := range got {
			m[g.Generation] = g.Streak.Failures
		}
		if len(m) != len(st.want) {
			t.Fatalf("step %d: runs %v, want %v", i, m, st.want)
		}
		for gen, n := range st.want {
			if m[gen] != n {
				t.Fatalf("step %d: runs %v, want %v", i, m, st.want)
			}
		}
	}
	// Pruned with the counts.
	if err := db.PruneBreakerHistory(ctx, pool, now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM breaker_streaks`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d runs left after pruning (%v)", n, err)
	}
}
