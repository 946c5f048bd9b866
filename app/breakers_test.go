package app_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/db/dbtest"
)

// instance is one app instance's breakers, running until the test ends or
// it is killed.
type instance struct {
	*app.Breakers
	kill context.CancelFunc
	done chan struct{}
}

func startInstance(t *testing.T, pool *pgxpool.Pool, name string, policy app.BreakerPolicy, poll time.Duration) *instance {
	t.Helper()
	bs, err := app.NewBreakers(app.BreakersConfig{
		Store: &db.BreakerStore{Pool: pool}, Instance: name, FlushEvery: 20 * time.Millisecond, PollEvery: poll,
		Rand: func() float64 { return 0.5 },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := bs.Register(context.Background(), "payment", policy, app.PolicyOverride{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{Breakers: bs, kill: cancel, done: make(chan struct{})}
	go func() { _ = bs.Run(ctx); close(in.done) }()
	t.Cleanup(func() { cancel(); <-in.done })
	return in
}

func testPolicy() app.BreakerPolicy {
	p := app.DefaultBreakerPolicy()
	// Leases long enough that a loaded machine cannot expire one mid-test.
	p.OpenWait, p.MaxOpenWait, p.ProbeLease = 200*time.Millisecond, 2*time.Second, 10*time.Second
	return p
}

func waitState(t *testing.T, in *instance, want app.BreakerState, within time.Duration) app.Breaker {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		b, _ := in.Get("payment")
		if b.State == want {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("breaker is %s after %s, want %s", b.State, within, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func fail(in *instance, n int) {
	for range n {
		p, _ := in.Acquire(context.Background(), "payment")
		p.Done(true, 0)
	}
}

func TestOneInstancesFailuresOpenTheBreakerForBoth(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	// Polling is off (an hour): only NOTIFY can tell b.
	a := startInstance(t, pool, "a", testPolicy(), time.Hour)
	b := startInstance(t, pool, "b", testPolicy(), time.Hour)

	fail(a, 19)
	time.Sleep(100 * time.Millisecond)
	if s, _ := a.Get("payment"); s.State != app.BreakerClosed {
		t.Fatalf("opened under the minimum volume: %s", s.State)
	}
	fail(a, 1)
	waitState(t, a, app.BreakerOpen, 5*time.Second)
	got := waitState(t, b, app.BreakerOpen, 5*time.Second)
	if p, _ := b.Acquire(context.Background(), "payment"); p != nil {
		t.Fatal("instance b still lets calls through")
	}
	if got.OpenUntil.IsZero() {
		t.Fatal("open breaker has no probe time")
	}
	var reason string
	var calls, failures int
	if err := pool.QueryRow(context.Background(), `SELECT reason, calls, failures FROM breaker_transitions
		WHERE to_state = 'open' ORDER BY id LIMIT 1`).Scan(&reason, &calls, &failures); err != nil {
		t.Fatal(err)
	}
	if calls < 20 || failures < 20 || reason == "" {
		t.Fatalf("transition figures: %q %d/%d", reason, failures, calls)
	}
}

func TestProbesAreLimitedAcrossInstancesAndCloseTheBreaker(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	a := startInstance(t, pool, "a", testPolicy(), 50*time.Millisecond)
	b := startInstance(t, pool, "b", testPolicy(), 50*time.Millisecond)
	fail(a, 20)
	waitState(t, a, app.BreakerHalfOpen, 5*time.Second)
	waitState(t, b, app.BreakerHalfOpen, 5*time.Second)

	var mu sync.Mutex
	var permits []*app.Permit
	var wg sync.WaitGroup
	for _, in := range []*instance{a, b} {
		for range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if p, _ := in.Acquire(context.Background(), "payment"); p != nil {
					mu.Lock()
					permits = append(permits, p)
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	if len(permits) != 3 {
		t.Fatalf("%d probe permits granted across two instances, want 3", len(permits))
	}
	for _, p := range permits {
		if !p.Probe() {
			t.Fatal("half-open granted a permit that is not a probe")
		}
		p.Done(false, 0)
	}
	waitState(t, a, app.BreakerClosed, 5*time.Second)
	waitState(t, b, app.BreakerClosed, 5*time.Second)
}

func TestFailedProbeReopensWithLongerWait(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	a := startInstance(t, pool, "a", testPolicy(), 50*time.Millisecond)
	fail(a, 20)
	first := waitState(t, a, app.BreakerOpen, 5*time.Second)
	waitState(t, a, app.BreakerHalfOpen, 5*time.Second)
	p, _ := a.Acquire(context.Background(), "payment")
	if !p.Probe() {
		t.Fatal("no probe permit")
	}
	p.Done(true, 0)
	second := waitState(t, a, app.BreakerOpen, 5*time.Second)
	if second.Trips != 2 || second.OpenUntil.Sub(second.Since) <= first.OpenUntil.Sub(first.Since) {
		t.Fatalf("second open: trips %d wait %s; first wait %s", second.Trips,
			second.OpenUntil.Sub(second.Since), first.OpenUntil.Sub(first.Since))
	}
}

func TestKilledInstancesProbeLeaseExpires(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	p := testPolicy()
	p.ProbeLease = time.Second
	a := startInstance(t, pool, "a", p, 50*time.Millisecond)
	b := startInstance(t, pool, "b", p, 50*time.Millisecond)
	fail(a, 20)
	waitState(t, a, app.BreakerHalfOpen, 5*time.Second)
	waitState(t, b, app.BreakerHalfOpen, 5*time.Second)
	for i := range 3 {
		if p, _ := a.Acquire(context.Background(), "payment"); p == nil {
			t.Fatalf("a could not claim probe %d", i+1)
		}
	}
	a.kill() // a dies holding every permit, never reporting
	<-a.done
	if p, _ := b.Acquire(context.Background(), "payment"); p != nil {
		t.Fatal("b got a fourth permit while a's leases were live")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		permit, _ := b.Acquire(context.Background(), "payment")
		if permit != nil {
			permit.Done(false, 0)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a's probe leases never expired")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestForceAndEnvOverride(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	a := startInstance(t, pool, "a", testPolicy(), time.Hour)
	b := startInstance(t, pool, "b", testPolicy(), time.Hour)
	if _, err := a.Force(context.Background(), "payment", app.BreakerForcedOpen, "ops@example.com", "drill"); err != nil {
		t.Fatal(err)
	}
	waitState(t, b, app.BreakerForcedOpen, 5*time.Second)
	if _, err := b.Force(context.Background(), "payment", app.BreakerClosed, "ops@example.com", "drill over"); err != nil {
		t.Fatal(err)
	}
	waitState(t, a, app.BreakerClosed, 5*time.Second)
	var actor string
	if err := pool.QueryRow(context.Background(), `SELECT actor FROM breaker_transitions WHERE to_state = 'forced_open'`).Scan(&actor); err != nil || actor != "ops@example.com" {
		t.Fatalf("actor %q %v", actor, err)
	}

	// A restart with a threshold in the environment replaces just that one.
	rate := 0.25
	c, err := app.NewBreakers(app.BreakersConfig{Store: &db.BreakerStore{Pool: pool}, Instance: "c"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Register(context.Background(), "payment", app.DefaultBreakerPolicy(), app.PolicyOverride{FailureRate: &rate}); err != nil {
		t.Fatal(err)
	}
	got, _ := c.Get("payment")
	if got.Policy.FailureRate != 0.25 || got.Policy.OpenWait != testPolicy().OpenWait {
		t.Fatalf("policy after override: %+v", got.Policy)
	}
	bad := 2.0
	if err := c.Register(context.Background(), "payment", app.DefaultBreakerPolicy(), app.PolicyOverride{FailureRate: &bad}); err == nil {
		t.Fatal("an invalid override was accepted")
	}
}
