package app_test

import (
	"testing"
	"time"

	"github.com/spillway/spillway/app"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func closedBreaker() app.Breaker {
	return app.Breaker{Name: "payment", State: app.BreakerClosed, Generation: 1, Since: t0, Policy: app.DefaultBreakerPolicy()}
}

func TestShouldTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		state  app.BreakerState
		counts app.Counts
		trip   bool
	}{
		{"healthy", app.BreakerClosed, app.Counts{Calls: 100, Failures: 5, Slow: 10}, false},
		{"failure rate exactly at threshold", app.BreakerClosed, app.Counts{Calls: 100, Failures: 10}, false},
		{"failure rate over threshold", app.BreakerClosed, app.Counts{Calls: 100, Failures: 11}, true},
		{"slow-call rate over threshold", app.BreakerClosed, app.Counts{Calls: 100, Slow: 51}, true},
		{"slow-call rate at threshold", app.BreakerClosed, app.Counts{Calls: 100, Slow: 50}, false},
		{"all failing but under minimum volume", app.BreakerClosed, app.Counts{Calls: 19, Failures: 19}, false},
		{"at minimum volume", app.BreakerClosed, app.Counts{Calls: 20, Failures: 3}, true},
		{"forced closed never trips", app.BreakerForcedClosed, app.Counts{Calls: 100, Failures: 100}, false},
		{"open does not trip again", app.BreakerOpen, app.Counts{Calls: 100, Failures: 100}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := closedBreaker()
			b.State = tt.state
			why, trip := b.ShouldTrip(tt.counts)
			if trip != tt.trip {
				t.Fatalf("ShouldTrip(%+v) = %v (%s), want %v", tt.counts, trip, why, tt.trip)
			}
			if trip && why == "" {
				t.Fatal("a trip must say why")
			}
		})
	}
}

func TestDecide(t *testing.T) {
	t.Parallel()
	for state, want := range map[app.BreakerState]app.Verdict{
		app.BreakerClosed: app.Allow, app.BreakerForcedClosed: app.Allow, app.BreakerHalfOpen: app.Probe,
		app.BreakerOpen: app.Reject, app.BreakerForcedOpen: app.Reject,
	} {
		b := closedBreaker()
		b.State = state
		if got := b.Decide(); got != want {
			t.Errorf("%s: Decide() = %v, want %v", state, got, want)
		}
	}
}

func TestTripBacksOffAndHalfOpensOnTime(t *testing.T) {
	t.Parallel()
	b := closedBreaker()
	now := t0.Add(time.Minute)
	b = b.Trip(now, 0.5) // r = 0.5: no jitter
	if b.State != app.BreakerOpen || b.Generation != 2 || b.Trips != 1 || !b.OpenUntil.Equal(now.Add(5*time.Second)) {
		t.Fatalf("first trip: %+v", b)
	}
	if _, due := b.HalfOpen(now.Add(4999 * time.Millisecond)); due {
		t.Fatal("half-open before the wait is over")
	}
	h, due := b.HalfOpen(now.Add(5 * time.Second))
	if !due || h.State != app.BreakerHalfOpen || h.Generation != 3 || h.Decide() != app.Probe {
		t.Fatalf("half-open: %+v", h)
	}
	// A failed probe trips again with twice the wait.
	now = now.Add(6 * time.Second)
	b = h.Trip(now, 0.5)
	if b.Trips != 2 || !b.OpenUntil.Equal(now.Add(10*time.Second)) {
		t.Fatalf("second trip: %+v", b)
	}
	// Probes succeed: closed, but the trips are remembered, so a quick
	// relapse waits longer still (this is what damps a flapping provider).
	h, _ = b.HalfOpen(b.OpenUntil)
	c := h.Close(b.OpenUntil)
	if c.State != app.BreakerClosed || c.Trips != 2 || c.Decide() != app.Allow {
		t.Fatalf("close: %+v", c)
	}
	relapse := c.Trip(c.Since.Add(time.Second), 0.5)
	if relapse.Trips != 3 || relapse.OpenUntil.Sub(relapse.Since) != 20*time.Second {
		t.Fatalf("relapse: %+v", relapse)
	}
	// Healthy for TripMemory: a new trip starts from the first wait again.
	later := c.Trip(c.Since.Add(c.Policy.TripMemory), 0.5)
	if later.Trips != 1 || later.OpenUntil.Sub(later.Since) != 5*time.Second {
		t.Fatalf("after a long healthy spell: %+v", later)
	}
}

func TestOpenWaitAfter(t *testing.T) {
	t.Parallel()
	p := app.DefaultBreakerPolicy()
	tests := []struct {
		trips    int
		r        float64
		min, max time.Duration
	}{
		{1, 0.5, 5 * time.Second, 5 * time.Second},
		{1, 0, 4500 * time.Millisecond, 4500 * time.Millisecond},
		{1, 0.999, 5 * time.Second, 5500 * time.Millisecond},
		{2, 0.5, 10 * time.Second, 10 * time.Second},
		{4, 0.5, 40 * time.Second, 40 * time.Second},
		{5, 0.5, 60 * time.Second, 60 * time.Second}, // capped
		{500, 0.999, 60 * time.Second, 66 * time.Second},
	}
	for _, tt := range tests {
		if got := p.OpenWaitAfter(tt.trips, tt.r); got < tt.min || got > tt.max {
			t.Errorf("OpenWaitAfter(%d, %v) = %s, want [%s, %s]", tt.trips, tt.r, got, tt.min, tt.max)
		}
	}
}

func TestForcedStatesHoldUntilAuto(t *testing.T) {
	t.Parallel()
	b := closedBreaker()
	fo, err := b.Force(app.BreakerForcedOpen, t0)
	if err != nil || fo.Decide() != app.Reject {
		t.Fatalf("forced open: %+v %v", fo, err)
	}
	if _, due := fo.HalfOpen(t0.Add(24 * time.Hour)); due {
		t.Fatal("forced open must not half-open by itself")
	}
	if _, trip := fo.ShouldTrip(app.Counts{Calls: 1000, Failures: 1000}); trip {
		t.Fatal("forced open must not trip")
	}
	fc, _ := fo.Force(app.BreakerForcedClosed, t0)
	if fc.Decide() != app.Allow {
		t.Fatal("forced closed must allow")
	}
	if _, trip := fc.ShouldTrip(app.Counts{Calls: 1000, Failures: 1000}); trip {
		t.Fatal("forced closed must not trip")
	}
	auto, _ := fc.Force(app.BreakerClosed, t0)
	if auto.State != app.BreakerClosed || auto.Trips != 0 || auto.Generation != fc.Generation+1 {
		t.Fatalf("back to auto: %+v", auto)
	}
	if _, err := b.Force(app.BreakerHalfOpen, t0); err == nil {
		t.Fatal("half_open cannot be forced")
	}
}

func TestBreakerPolicyValidate(t *testing.T) {
	t.Parallel()
	if err := app.DefaultBreakerPolicy().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*app.BreakerPolicy){
		"zero failure rate":      func(p *app.BreakerPolicy) { p.FailureRate = 0 },
		"failure rate above 1":   func(p *app.BreakerPolicy) { p.FailureRate = 1.5 },
		"no probes":              func(p *app.BreakerPolicy) { p.Probes = 0 },
		"max wait below wait":    func(p *app.BreakerPolicy) { p.MaxOpenWait = time.Second },
		"window under a second":  func(p *app.BreakerPolicy) { p.Window = 500 * time.Millisecond },
		"zero minimum calls":     func(p *app.BreakerPolicy) { p.MinCalls = 0 },
		"negative slow duration": func(p *app.BreakerPolicy) { p.SlowCall = -time.Second },
		"negative run":           func(p *app.BreakerPolicy) { p.ConsecutiveFailures = -1 },
	} {
		p := app.DefaultBreakerPolicy()
		mutate(&p)
		if p.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestRetryAt(t *testing.T) {
	t.Parallel()
	b := closedBreaker().Trip(t0, 0.5)
	if got := b.RetryAt(t0); !got.Equal(b.OpenUntil) {
		t.Fatalf("open: RetryAt = %s, want the probe time %s", got, b.OpenUntil)
	}
	fo, _ := b.Force(app.BreakerForcedOpen, t0)
	if got := fo.RetryAt(t0); got.Sub(t0) <= 0 {
		t.Fatalf("forced open: RetryAt = %s", got)
	}
}

func TestShouldTripOnStreak(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		state       app.BreakerState
		consecutive int
		streak      int
		trip        bool
	}{
		{"one short of the run", app.BreakerClosed, 20, 19, false},
		{"the run", app.BreakerClosed, 20, 20, true},
		{"past the run", app.BreakerClosed, 20, 500, true},
		{"off", app.BreakerClosed, 0, 1000, false},
		{"a run of one", app.BreakerClosed, 1, 1, true},
		{"forced closed never trips", app.BreakerForcedClosed, 20, 100, false},
		{"half-open is the probes' to judge", app.BreakerHalfOpen, 20, 100, false},
		{"open does not trip again", app.BreakerOpen, 20, 100, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := closedBreaker()
			b.State, b.Policy.ConsecutiveFailures = tt.state, tt.consecutive
			why, trip := b.ShouldTripOnStreak(tt.streak)
			if trip != tt.trip {
				t.Fatalf("ShouldTripOnStreak(%d) = %v (%s), want %v", tt.streak, trip, why, tt.trip)
			}
			if trip && why == "" {
				t.Fatal("a trip must say why")
			}
		})
	}
}

// A run is folded flush by flush, in any grouping, to what the calls in
// order would give: a success ends it, failures extend it.
func TestStreakThen(t *testing.T) {
	t.Parallel()
	run := func(calls string) app.Streak {
		var s app.Streak
		for _, c := range calls {
			s = s.Record(c == 'f')
		}
		return s
	}
	tests := []struct {
		flushes []string // each instance flush's calls in order: f failure, s success (or decline)
		want    int
	}{
		{[]string{"ffff"}, 4},
		{[]string{"ff", "ff"}, 4},
		{[]string{"ffff", "s"}, 0},
		{[]string{"ffff", "sff"}, 2},
		{[]string{"ffsf", "ff"}, 3},
		{[]string{"fff", "", "ff"}, 5},
		{[]string{"ss", "ss"}, 0},
	}
	for _, tt := range tests {
		var shared app.Streak
		for _, f := range tt.flushes {
			shared = shared.Then(run(f))
		}
		if shared.Failures != tt.want {
			t.Errorf("%q: run of %d, want %d", tt.flushes, shared.Failures, tt.want)
		}
	}
}
