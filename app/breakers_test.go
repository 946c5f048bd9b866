package app_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/apptest"
	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/db/dbtest"
)

// clock is a test's time source, shared by its instances. Breaker time
// (the counting window, the open wait) moves only when the test advances
// it, so no state can come or go because the machine was slow; the flush
// and poll loops still tick in real time, and probe leases are Postgres's.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

// newClock starts at the real time, so that what the store compares with
// Postgres's now() (pruning by created_at) sees sensible instants.
func newClock() *clock { return &clock{now: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// instance is one app instance's breakers, running until the test ends or
// it is killed.
type instance struct {
	*app.Breakers
	kill context.CancelFunc
	done chan struct{}
}

func startInstance(t *testing.T, pool *pgxpool.Pool, name string, policy app.BreakerPolicy, poll time.Duration, clk *clock) *instance {
	t.Helper()
	bs, err := app.NewBreakers(app.BreakersConfig{
		Store: db.NewStore(pool), Instance: name, FlushEvery: 20 * time.Millisecond, PollEvery: poll,
		Now: clk.Now, Rand: func() float64 { return 0.5 },
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
	// The open waits only pass when a test advances its clock. Leases are
	// the longest allowed: they run on Postgres's clock, which no test can
	// hold, and a test that needs one gone says so in the table.
	p.OpenWait, p.MaxOpenWait, p.ProbeLease = 200*time.Millisecond, 2*time.Second, time.Hour
	return p
}

// waitState polls an instance's copy of the breaker until it is in want.
// With the clock held, a state the test waits for lasts until the test
// acts again, so polling cannot miss it.
func waitState(t *testing.T, in *instance, want app.BreakerState) app.Breaker {
	t.Helper()
	deadline := time.Now().Add(apptest.Patience)
	for {
		b, _ := in.Get("payment")
		if b.State == want {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("breaker is %s after %s, want %s", b.State, apptest.Patience, want)
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
	clk := newClock()
	// Polling is off (an hour): only NOTIFY can tell b.
	a := startInstance(t, pool, "a", testPolicy(), time.Hour, clk)
	b := startInstance(t, pool, "b", testPolicy(), time.Hour, clk)

	fail(a, 19)
	// The flush that brings the shared counts to 19 judges them before any
	// later count can reach the table, so the 19 are judged on their own.
	// Whether that judgement tripped is read from the first open
	// transition's figures below, which a look at the cache now could miss.
	apptest.WaitFor(t, "19 calls in breaker_counts", func() bool {
		return count(t, pool, `SELECT coalesce(sum(calls), 0) FROM breaker_counts`) == 19
	})
	if s, _ := a.Get("payment"); s.State != app.BreakerClosed {
		t.Fatalf("opened under the minimum volume: %s", s.State)
	}
	fail(a, 1)
	waitState(t, a, app.BreakerOpen)
	// The clock is held, so the breaker stays open until b has seen it.
	got := waitState(t, b, app.BreakerOpen)
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
	clk := newClock()
	a := startInstance(t, pool, "a", testPolicy(), 50*time.Millisecond, clk)
	b := startInstance(t, pool, "b", testPolicy(), 50*time.Millisecond, clk)
	fail(a, 20)
	waitState(t, a, app.BreakerOpen)
	clk.Advance(testPolicy().OpenWait)
	waitState(t, a, app.BreakerHalfOpen)
	waitState(t, b, app.BreakerHalfOpen)

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
	waitState(t, a, app.BreakerClosed)
	waitState(t, b, app.BreakerClosed)
}

func TestFailedProbeReopensWithLongerWait(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	clk := newClock()
	a := startInstance(t, pool, "a", testPolicy(), 50*time.Millisecond, clk)
	fail(a, 20)
	first := waitState(t, a, app.BreakerOpen)
	clk.Advance(first.OpenUntil.Sub(first.Since))
	waitState(t, a, app.BreakerHalfOpen)
	p, _ := a.Acquire(context.Background(), "payment")
	if !p.Probe() {
		t.Fatal("no probe permit")
	}
	p.Done(true, 0)
	// Held clock: the reopened breaker cannot half-open again unseen.
	second := waitState(t, a, app.BreakerOpen)
	if second.Trips != 2 || second.OpenUntil.Sub(second.Since) <= first.OpenUntil.Sub(first.Since) {
		t.Fatalf("second open: trips %d wait %s; first wait %s", second.Trips,
			second.OpenUntil.Sub(second.Since), first.OpenUntil.Sub(first.Since))
	}
}

func TestKilledInstancesProbeLeaseExpires(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	clk := newClock()
	p := testPolicy() // leases of an hour: live for as long as this test can take
	a := startInstance(t, pool, "a", p, 50*time.Millisecond, clk)
	b := startInstance(t, pool, "b", p, 50*time.Millisecond, clk)
	fail(a, 20)
	waitState(t, a, app.BreakerOpen)
	clk.Advance(p.OpenWait)
	waitState(t, a, app.BreakerHalfOpen)
	waitState(t, b, app.BreakerHalfOpen)
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
	// Each lease is as long as the policy says, counted from its claim.
	if n := count(t, pool, fmt.Sprintf(`SELECT count(*) FROM breaker_probes
		WHERE instance = 'a' AND outcome IS NULL AND leased_until - created_at = interval '%d milliseconds'`,
		p.ProbeLease.Milliseconds())); n != 3 {
		t.Fatalf("%d of a's 3 leases last ProbeLease (%s)", n, p.ProbeLease)
	}
	// Leases run on Postgres's clock, which no test can advance. Moving
	// their end back by their length is what the lease having run its
	// course looks like to the claim's query, without waiting it out.
	if _, err := pool.Exec(context.Background(), `UPDATE breaker_probes
		SET leased_until = leased_until - $1 * interval '1 millisecond'
		WHERE instance = 'a' AND outcome IS NULL`, p.ProbeLease.Milliseconds()); err != nil {
		t.Fatal(err)
	}
	permit, _ := b.Acquire(context.Background(), "payment")
	if permit == nil {
		t.Fatal("a's probe leases never expired")
	}
	permit.Done(false, 0)
}

func TestForceAndEnvOverride(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	clk := newClock()
	a := startInstance(t, pool, "a", testPolicy(), time.Hour, clk)
	b := startInstance(t, pool, "b", testPolicy(), time.Hour, clk)
	if _, err := a.Force(context.Background(), "payment", app.BreakerForcedOpen, "ops@example.com", "drill"); err != nil {
		t.Fatal(err)
	}
	waitState(t, b, app.BreakerForcedOpen)
	if _, err := b.Force(context.Background(), "payment", app.BreakerClosed, "ops@example.com", "drill over"); err != nil {
		t.Fatal(err)
	}
	waitState(t, a, app.BreakerClosed)
	var actor string
	if err := pool.QueryRow(context.Background(), `SELECT actor FROM breaker_transitions WHERE to_state = 'forced_open'`).Scan(&actor); err != nil || actor != "ops@example.com" {
		t.Fatalf("actor %q %v", actor, err)
	}

	// A restart with a threshold in the environment replaces just that one.
	rate := 0.25
	c, err := app.NewBreakers(app.BreakersConfig{Store: db.NewStore(pool), Instance: "c"})
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

// A run of failures split between two instances opens the breaker for
// both once it reaches ConsecutiveFailures, though neither saw the whole
// run; a success on either ends it. The window is set never to trip, so
// the run alone decides.
func TestConsecutiveFailuresAcrossInstancesOpenTheBreaker(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	clk := newClock()
	policy := testPolicy()
	policy.FailureRate, policy.SlowRate, policy.ConsecutiveFailures = 1, 1, 10
	a := startInstance(t, pool, "a", policy, time.Hour, clk)
	b := startInstance(t, pool, "b", policy, time.Hour, clk)
	run := func(want int) {
		t.Helper()
		apptest.WaitFor(t, fmt.Sprintf("a shared run of %d", want), func() bool {
			return count(t, pool, `SELECT coalesce(max(failures), -1) FROM breaker_streaks
				WHERE generation = (SELECT generation FROM breakers WHERE name = 'payment')`) == want
		})
	}
	succeed := func(in *instance) {
		p, _ := in.Acquire(context.Background(), "payment")
		p.Done(false, 0)
	}

	fail(a, 6)
	run(6)
	succeed(b) // a decline or a success, on the other instance
	run(0)
	fail(a, 5)
	run(5)
	fail(b, 4)
	run(9)
	if s, _ := a.Get("payment"); s.State != app.BreakerClosed {
		t.Fatalf("opened one failure short of the run: %s", s.State)
	}
	fail(b, 1)
	waitState(t, b, app.BreakerOpen)
	waitState(t, a, app.BreakerOpen) // by NOTIFY: polling is off
	var reason string
	if err := pool.QueryRow(context.Background(), `SELECT reason FROM breaker_transitions
		WHERE to_state = 'open' ORDER BY id LIMIT 1`).Scan(&reason); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(reason, "10 failures in a row") {
		t.Fatalf("opened for %q, want the run", reason)
	}
}

// An instance that sees the whole run flushes at once instead of waiting
// for its tick: here the tick is an hour away.
func TestARunOfFailuresFlushesWithoutWaitingForTheTick(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	clk := newClock()
	bs, err := app.NewBreakers(app.BreakersConfig{
		Store: db.NewStore(pool), Instance: "a", FlushEvery: time.Hour, PollEvery: time.Hour, Now: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := bs.Register(context.Background(), "payment", testPolicy(), app.PolicyOverride{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = bs.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	in := &instance{Breakers: bs}
	fail(in, testPolicy().ConsecutiveFailures)
	waitState(t, in, app.BreakerOpen)
}
