package web_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/apptest"
	"github.com/spillway/spillway/app/sim"
)

// TestRaisedJobsGoFirstAfterAnOutage is what an operator does during an
// outage: raise the high-value payments so they are charged first when the
// provider is back. The breaker goes open → half-open → closed on its own;
// whatever it does, the queue is worked in priority order, and a job held
// back by the breaker loses neither its place nor an attempt. So no
// smaller payment waiting behind the raised ones is charged before the
// last raised one, beyond those already running beside it (fewer than the
// workers). The smaller payments' answers are held until every raised one
// is charged: a worker that takes a smaller one stays on it, so how many
// can run beside the last raised one does not depend on how fast each
// call happens to be.
func TestRaisedJobsGoFirstAfterAnOutage(t *testing.T) {
	t.Parallel()
	const workers, small, raised = 4, 180, 20
	policy := app.DefaultBreakerPolicy()
	// The breaker stays open through the setup, however slow the machine;
	// the test ends the open wait itself below. Once the provider is back
	// nothing may trip it again, for the next open wait is an hour: no
	// call counts as slow, and a worker's probe call (bounded by the lease)
	// has the guard.
	policy.MinCalls, policy.OpenWait, policy.MaxOpenWait, policy.ProbeLease = 5, time.Hour, time.Hour, guard
	policy.SlowCall = sim.MaxDuration
	h := newHarness(t, harnessOpts{workers: workers, breaker: &policy})
	h.sim.SetChaos(sim.Chaos{Down: true})

	var smallIDs, raisedIDs []string
	for i := range small {
		r := h.pay(keyf("small-%d", i), `{"amount": 1000, "currency": "usd"}`)
		if r.status != http.StatusAccepted {
			t.Fatalf("small %d: %d %s", i, r.status, r.body)
		}
		smallIDs = append(smallIDs, r.json(t)["id"].(string))
	}
	waitBreaker(t, h, app.BreakerOpen)
	// The gate pauses the queue while the breaker is open; from then on no
	// worker holds a job, so every one the operator raises is waiting.
	apptest.WaitFor(t, "the payments queue to be paused and no job running", func() bool {
		return h.count(`SELECT count(*) FROM river_queue WHERE name = 'payments' AND paused_at IS NOT NULL`) == 1 &&
			h.count(`SELECT count(*) FROM river_job WHERE state = 'running'`) == 0
	})
	var raisedJobs []int64
	for i := range raised {
		r := h.pay(keyf("big-%d", i), `{"amount": 500000, "currency": "usd"}`)
		if r.status != http.StatusAccepted {
			t.Fatalf("big %d: %d %s", i, r.status, r.body)
		}
		id := r.json(t)["id"].(string)
		raisedIDs = append(raisedIDs, id)
		raisedJobs = append(raisedJobs, h.jobOf(id))
	}
	res, err := h.operator().ApplyJobs(context.Background(), app.Actor{Email: "ops@example.com"},
		app.JobRequest{Action: app.ActionReprioritize, Priority: app.PriorityUrgent}, raisedJobs)
	if err != nil || len(res.Changed) != raised {
		t.Fatalf("raise: %+v %v", res, err)
	}

	for _, id := range smallIDs {
		h.sim.Hold(id)
	}
	// The provider comes back and the open wait ends (now rather than in
	// an hour): the breaker half-opens, probes and closes by itself.
	h.sim.SetChaos(sim.Chaos{})
	if _, err := h.pool.Exec(context.Background(), `UPDATE breakers SET open_until = now(), generation = generation + 1
		WHERE name = 'payment' AND state = 'open'`); err != nil {
		t.Fatal(err)
	}
	if _, err := h.pool.Exec(context.Background(), `SELECT pg_notify('spillway_breakers', 'payment')`); err != nil {
		t.Fatal(err)
	}
	// Worked in priority order, the raised payments are all charged
	// before more smaller ones than the other workers can hold. Out of
	// order, a smaller one is charged while a raised one still waits to be
	// fetched (a raised job, once fetched, never waits again).
	outOfOrder := false
	apptest.WaitFor(t, "every raised payment to be charged, or a smaller one charged before", func() bool {
		charged, held := 0, 0
		for _, id := range raisedIDs {
			charged += h.sim.Effects(id)
		}
		for _, id := range smallIDs {
			held += h.sim.Held(id)
		}
		if held > 0 && h.count(`SELECT count(*) FROM river_job WHERE id = ANY($1) AND state = 'available'`, raisedJobs) > 0 {
			outOfOrder = true
		}
		return charged == raised || outOfOrder
	})
	for _, id := range smallIDs {
		h.sim.Release(id)
	}
	if outOfOrder {
		t.Fatal("a smaller payment was charged while raised ones still waited to be fetched")
	}
	h.waitAllSucceeded(append(append([]string(nil), smallIDs...), raisedIDs...))

	last := 0
	for _, id := range raisedIDs {
		last = max(last, h.sim.EffectSeq(id))
	}
	before := 0
	for _, id := range smallIDs {
		if h.sim.EffectSeq(id) < last {
			before++
		}
	}
	transitions := h.count(`SELECT count(*) FROM breaker_transitions WHERE to_state = 'half_open'`)
	t.Logf("%d of %d smaller payments were charged before the last raised one; the breaker half-opened %d times",
		before, small, transitions)
	if transitions < 1 {
		t.Fatal("the breaker never went through half-open")
	}
	if before > workers-1 {
		t.Fatalf("%d smaller payments were charged before the last raised one; at most %d may run beside it", before, workers-1)
	}
	// No attempt was spent on the breaker: each raised payment, captured
	// without a call while it was open, was called exactly once.
	for _, id := range raisedIDs {
		if got := h.count(`SELECT attempts FROM operations WHERE id = $1`, id); got != 1 {
			t.Fatalf("raised payment %s made %d attempts, want 1 (a breaker's hold spends none)", id, got)
		}
	}
}
