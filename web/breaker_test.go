package web_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/web/sim"
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
	deadline := time.Now().Add(30 * time.Second)
	for h.count(`SELECT count(*) FROM river_queue WHERE name = 'payments' AND paused_at IS NOT NULL`) != 1 ||
		h.count(`SELECT count(*) FROM river_job WHERE kind = 'payment' AND state = 'running'`) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the job was neither held by a paused queue nor snoozed")
		}
		time.Sleep(10 * time.Millisecond)
	}
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

// TestFlappingProvider runs steady load against a provider that is down 1 s,
// up 1 s, for 30 s. With the default policy each trip in a row doubles the
// open wait (5 s, 10 s, 20 s, ±10 %), so at most three trips can start in
// 30 s, and each trip brings at most three transitions (→open,
// →half_open, →closed or straight back to open): nine in all, and none
// once the provider is healthy again. Every acknowledged request must end
// succeeded with exactly one effect.
func TestFlappingProvider(t *testing.T) {
	if testing.Short() {
		t.Skip("30 s of flapping")
	}
	t.Parallel()
	h := newHarness(t, harnessOpts{workers: 16, deadline: 500 * time.Millisecond})
	h.sim.SetChaos(sim.Chaos{FlapPeriod: time.Second})

	var (
		mu       sync.Mutex
		accepted []string
		statuses = map[int]int{}
		wg       sync.WaitGroup
	)
	stop := time.Now().Add(30 * time.Second)
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(stop); i++ {
				r := h.pay(keyf("flap-%d-%d", c, i), payment)
				mu.Lock()
				statuses[r.status]++
				if r.status == http.StatusCreated || r.status == http.StatusAccepted {
					accepted = append(accepted, r.json(t)["id"].(string))
				}
				mu.Unlock()
				time.Sleep(25 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	h.sim.SetChaos(sim.Chaos{})
	if len(accepted) == 0 {
		t.Fatalf("nothing was acknowledged: %v", statuses)
	}
	for s, n := range statuses {
		if s != http.StatusCreated && s != http.StatusAccepted {
			t.Fatalf("%d requests answered %d: only 201 and 202 are acceptable here (%v)", n, s, statuses)
		}
	}

	deadline := time.Now().Add(2 * time.Minute)
	for h.count(`SELECT count(*) FROM operations WHERE status <> 'succeeded'`) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d acknowledged operations never succeeded", h.count(`SELECT count(*) FROM operations WHERE status <> 'succeeded'`))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := h.count(`SELECT count(*) FROM operations`); n != len(accepted) {
		t.Fatalf("%d operations for %d acknowledged requests", n, len(accepted))
	}
	for _, id := range accepted {
		if e := h.sim.Effects(id); e != 1 {
			t.Fatalf("operation %s has %d effects", id, e)
		}
	}
	opens := h.count(`SELECT count(*) FROM breaker_transitions WHERE to_state = 'open'`)
	transitions := h.count(`SELECT count(*) FROM breaker_transitions WHERE from_state <> to_state`)
	t.Logf("%v; %d acknowledged; breaker opened %d times, %d transitions", statuses, len(accepted), opens, transitions)
	if opens < 1 || transitions > 9 {
		t.Fatalf("breaker opened %d times with %d transitions; want at least one open and at most 9 transitions", opens, transitions)
	}
}

func TestMetricsExposeRequestsBreakerAndQueue(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	h.pay("m-1", payment)
	h.sim.SetChaos(sim.Chaos{Down: true})
	h.pay("m-2", payment)
	r := h.do(http.MethodGet, "/metrics", "", "", nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /metrics: %d", r.status)
	}
	for _, want := range []string{
		`spillway_payment_requests_total{mode="sync",reason="",status="succeeded"} 1`,
		`spillway_payment_requests_total{mode="async",reason="provider_error",status="queued"} 1`,
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
