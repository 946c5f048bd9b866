package web_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/apptest"
	"github.com/spillway/spillway/app/sim"
)

func TestOpenBreakerCapturesWithoutCallingAndWorkersHold(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{workers: 2})
	if _, err := h.breakers.Force(context.Background(), "payment", app.BreakerForcedOpen, "test", "drill"); err != nil {
		t.Fatal(err)
	}
	r := h.pay("open-1", payment)
	if r.status != http.StatusAccepted {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	doc := r.json(t)
	id := doc["id"].(string)
	if doc["reason"] != "breaker_open" || doc["attempts"] != 0.0 {
		t.Fatalf("document %v", doc)
	}
	if h.sim.Calls(id) != 0 {
		t.Fatal("an open breaker let a sync call through")
	}
	// The job is held without a call or a spent attempt: the gate pauses
	// the queue, and a worker that fetched it before the pause snoozes it.
	// (A snooze no longer than River's scheduler interval leaves the job
	// available with a future scheduled_at; a longer one, scheduled.)
	apptest.WaitFor(t, "the job to be held by a paused queue or snoozed", func() bool {
		return h.count(`SELECT count(*) FROM river_queue WHERE name = 'payments' AND paused_at IS NOT NULL`) == 1 &&
			h.count(`SELECT count(*) FROM river_job WHERE kind = 'payment' AND state = 'running'`) == 0
	})
	if h.sim.Calls(id) != 0 || h.count(`SELECT attempts FROM operations WHERE id = $1`, id) != 0 {
		t.Fatal("a worker called through an open breaker")
	}
	if _, err := h.breakers.Force(context.Background(), "payment", app.BreakerClosed, "test", "drill over"); err != nil {
		t.Fatal(err)
	}
	done := h.waitStatus(id, app.StatusSucceeded)
	if done["attempts"] != 1.0 || h.sim.Effects(id) != 1 {
		t.Fatalf("after the drill: %v, effects %d", done, h.sim.Effects(id))
	}
}

// TestFlappingProvider runs a steady load against a provider that is down
// one second, up the next, for 30 seconds of simulated time: one manual
// clock drives the simulator's flapping and the breakers (their windows and
// open waits), and it moves a second only once that second's requests are
// answered and the breakers have counted every call the simulator saw. So
// each second is wholly up or wholly down, carries the same load, and is
// judged before the next, however fast the machine runs it.
//
// With the default policy each trip in a row doubles the open wait (5 s,
// 10 s, 20 s, ±10 %): the first trip comes at 1 s at the earliest, so the
// second at 6 s and the third at 15 s, whose wait outlasts the load. At
// most three trips, then, and each brings at most three transitions
// (→open, →half_open, →closed or straight back to open): nine in all, and
// none once the provider is healthy again. Every acknowledged request must
// end succeeded with exactly one effect.
func TestFlappingProvider(t *testing.T) {
	t.Parallel()
	policy := app.DefaultBreakerPolicy()
	// What trips the breaker here is failures, never the machine's speed:
	// no call counts as slow, and a probe's lease (Postgres' clock, and
	// the bound of a worker's probe call) is a guard.
	policy.SlowCall, policy.ProbeLease = sim.MaxDuration, guard
	clk := &clock{t: time.Now().UTC()}
	// How many attempts a job spends while the breaker is still closed in
	// a down second depends on how long that second takes in real time
	// (worker retries run on the real clock), so the attempt budget is the
	// harness's guard: the breaker, not the budget, is what is tested.
	h := newHarness(t, harnessOpts{workers: 16, clock: clk.Now, breaker: &policy})
	h.sim.SetChaos(sim.Chaos{FlapPeriod: time.Second})

	const seconds, clients, perClient = 30, 4, 6 // 24 requests a second, over MinCalls
	recorded := func() int {
		return h.count(`SELECT (SELECT coalesce(sum(calls), 0) FROM breaker_counts) +
			(SELECT count(*) FROM breaker_probes WHERE outcome IS NOT NULL)`)
	}
	var (
		accepted []string
		statuses = map[int]int{}
	)
	for sec := range seconds {
		answers := make(chan response, clients*perClient)
		errs := make(chan error, clients*perClient)
		var wg sync.WaitGroup
		for c := range clients {
			wg.Go(func() {
				for i := range perClient {
					r, err := h.post(keyf("flap-%d-%d-%d", sec, c, i), payment)
					if err != nil {
						errs <- err
						continue
					}
					answers <- r
				}
			})
		}
		wg.Wait()
		close(answers)
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		for r := range answers {
			statuses[r.status]++
			if r.status == http.StatusCreated || r.status == http.StatusAccepted {
				accepted = append(accepted, r.json(t)["id"].(string))
			}
		}
		calls := h.sim.TotalCalls()
		apptest.WaitFor(t, "the breakers to count every call of the second", func() bool { return recorded() >= calls })
		clk.Add(time.Second)
	}
	h.sim.SetChaos(sim.Chaos{})
	if len(accepted) == 0 {
		t.Fatalf("nothing was acknowledged: %v", statuses)
	}
	for s, n := range statuses {
		if s != http.StatusCreated && s != http.StatusAccepted {
			t.Fatalf("%d requests answered %d: only 201 and 202 are acceptable here (%v)", n, s, statuses)
		}
	}
	// Past any open wait the load left: the breaker half-opens, the
	// workers' probes succeed and it closes.
	clk.Add(2 * policy.MaxOpenWait)
	h.waitAllSucceeded(accepted)

	opens := h.count(`SELECT count(*) FROM breaker_transitions WHERE to_state = 'open'`)
	transitions := h.count(`SELECT count(*) FROM breaker_transitions WHERE from_state <> to_state`)
	t.Logf("%v; %d acknowledged; breaker opened %d times, %d transitions", statuses, len(accepted), opens, transitions)
	if opens < 1 || transitions > 9 {
		t.Fatalf("breaker opened %d times with %d transitions; want at least one open and at most 9 transitions: %s", opens, transitions,
			h.describe(`SELECT from_state || '->' || to_state || ' ' || reason || ' at ' || at::text FROM breaker_transitions ORDER BY id`))
	}
}

func TestMetricsExposeRequestsBreakerAndQueue(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	h.StockCatalog()
	h.pay("m-1", payment)
	if r := h.order("m-order", `{"lines": [{"sku": "sku-tea", "quantity": 1}], "currency": "usd"}`); r.status != http.StatusCreated {
		t.Fatalf("order: %d %s", r.status, r.body)
	}
	h.sim.SetChaos(sim.Chaos{Down: true})
	h.pay("m-2", payment)
	r := h.do(http.MethodGet, "/metrics", "", "", nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /metrics: %d", r.status)
	}
	for _, want := range []string{
		`spillway_payment_requests_total{mode="sync",reason="",status="succeeded"} 1`,
		`spillway_payment_requests_total{mode="async",reason="provider_error",status="queued"} 1`,
		// Every kind by kind; the order is not counted as a payment.
		`spillway_requests_total{kind="order",mode="sync",reason="",status="succeeded"} 1`,
		`spillway_requests_total{kind="payment",mode="sync",reason="",status="succeeded"} 1`,
		`spillway_breaker_state{dependency="payment",state="closed"} 1`,
		`spillway_provider_call_seconds_count{dependency="payment",outcome="provider_error",path="sync"} 1`,
		`spillway_queue_jobs{queue="payments",state="available"} 1`,
		`spillway_sync_calls_in_flight 0`,
	} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
