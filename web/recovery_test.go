package web_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/sim"
)

// TestRecoveryUnderMoreClientsThanConnections runs more clients than the
// pool has connections through a whole outage and recovery: the breaker
// opens, half-opens and closes while every request holds its
// transaction's connection. Probes are claimed and finished on the
// breakers' own connections, so none of it may answer 503, and the
// breaker must close once the provider is back.
func TestRecoveryUnderMoreClientsThanConnections(t *testing.T) {
	t.Parallel()
	policy := app.DefaultBreakerPolicy()
	policy.MinCalls, policy.OpenWait, policy.MaxOpenWait = 5, 300*time.Millisecond, 300*time.Millisecond
	// Once the provider is back only a failure could trip the breaker
	// again, never the machine's speed: no call counts as slow, and calls
	// have the guard for a deadline (a down provider answers at once).
	policy.SlowCall = sim.MaxDuration
	// The capture budget is a generous guard: starved of connections, as
	// before probes had their own, every request would still answer 503
	// once it ran out; a slow machine alone must not.
	h := newHarness(t, harnessOpts{workers: 2, poolSize: 8, syncLimit: 6,
		captureTimeout: 10 * time.Second, breaker: &policy})
	h.sim.SetChaos(sim.Chaos{Down: true})

	var (
		mu        sync.Mutex
		answers   []response
		errs      []error
		stop      atomic.Bool
		recovered = make(chan struct{})
		once      sync.Once
		up        atomic.Bool
		wg        sync.WaitGroup
	)
	const clients = 20
	for c := range clients {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				r, err := h.post(keyf("recover-%d-%d", c, i), payment)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				answers = append(answers, r)
				mu.Unlock()
				if r.status == http.StatusCreated && up.Load() {
					once.Do(func() { close(recovered) })
				}
			}
		})
	}
	// On failure the clients stop first, so that nothing they do outlives
	// the test.
	t.Cleanup(func() { stop.Store(true); wg.Wait() })
	// The outage: the breaker opens under the clients' load.
	waitBreaker(t, h, app.BreakerOpen)
	h.sim.SetChaos(sim.Chaos{})
	up.Store(true)
	back := time.Now()
	select {
	case <-recovered:
	case <-time.After(guard):
		t.Fatalf("no synchronous success within %s of the provider coming back", guard)
	}
	firstOK := time.Since(back)
	// Keep the load on while the breaker settles.
	waitBreaker(t, h, app.BreakerClosed)
	stop.Store(true)
	wg.Wait()
	for _, err := range errs {
		t.Fatal(err)
	}
	statuses := map[int]int{}
	var accepted []string
	for _, r := range answers {
		statuses[r.status]++
		if r.status == http.StatusCreated || r.status == http.StatusAccepted {
			accepted = append(accepted, r.json(t)["id"].(string))
		}
	}

	t.Logf("statuses %v; first 201 %s after the provider was back", statuses, firstOK)
	for s, n := range statuses {
		if s != http.StatusCreated && s != http.StatusAccepted {
			t.Fatalf("%d requests answered %d during the recovery (%v): only 201 and 202 may be", n, s, statuses)
		}
	}
	h.waitAllSucceeded(accepted)
}

// waitBreaker waits until this instance's breaker is in state.
func waitBreaker(t *testing.T, h *harness, state app.BreakerState) {
	t.Helper()
	deadline := time.Now().Add(guard)
	for {
		if b, _ := h.breakers.Get("payment"); b.State == state {
			return
		}
		if time.Now().After(deadline) {
			b, _ := h.breakers.Get("payment")
			t.Fatalf("breaker stayed %s, want %s", b.State, state)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitAllSucceeded waits until every acknowledged operation succeeded,
// with exactly one effect each and no operation beyond them.
func (h *harness) waitAllSucceeded(ids []string) {
	h.t.Helper()
	deadline := time.Now().Add(2 * guard)
	for h.count(`SELECT count(*) FROM operations WHERE status <> 'succeeded'`) != 0 {
		if time.Now().After(deadline) {
			h.t.Fatalf("%d acknowledged operations never succeeded: %s\n%s\n%s", h.count(`SELECT count(*) FROM operations WHERE status <> 'succeeded'`),
				h.describe(`SELECT o.status || '/' || coalesce(o.reason, '') || ' job ' || j.state || ' at ' || j.scheduled_at::text
					|| ' attempt ' || j.attempt || ' ' || coalesce(j.errors[array_length(j.errors, 1)]->>'error', '')
					FROM operations o JOIN river_job j ON j.id = o.job_id WHERE o.status <> 'succeeded' LIMIT 5`),
				h.describe(`SELECT 'now ' || now()::text || ' breaker ' || state || ' gen ' || generation || ' open until ' || coalesce(open_until::text, '-') FROM breakers`),
				h.describe(`SELECT from_state || '->' || to_state || ' ' || reason || ' at ' || at::text FROM breaker_transitions ORDER BY id`))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := h.count(`SELECT count(*) FROM operations`); n != len(ids) {
		h.t.Fatalf("%d operations for %d acknowledged requests", n, len(ids))
	}
	for _, id := range ids {
		if e := h.sim.Effects(id); e != 1 {
			h.t.Fatalf("operation %s has %d effects", id, e)
		}
	}
}

// describe runs a query of one text column and joins its rows, for
// failure messages.
func (h *harness) describe(sql string) string {
	rows, err := h.pool.Query(context.Background(), sql)
	if err != nil {
		return err.Error()
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err.Error()
	}
	return strings.Join(lines, "; ")
}
