package app

import (
	"errors"
	"fmt"
	"time"
)

// BreakerState is a circuit breaker's state. The forced states are an
// operator's and hold until the breaker is returned to auto.
type BreakerState string

const (
	BreakerClosed       BreakerState = "closed"
	BreakerOpen         BreakerState = "open"
	BreakerHalfOpen     BreakerState = "half_open"
	BreakerForcedOpen   BreakerState = "forced_open"
	BreakerForcedClosed BreakerState = "forced_closed"
)

// BreakerPolicy holds one dependency's thresholds.
type BreakerPolicy struct {
	// Window is the sliding window outcomes are judged over, kept in
	// one-second buckets.
	Window time.Duration
	// MinCalls is the volume below which the breaker never trips: a few
	// failures of a handful of calls say little about a dependency.
	MinCalls    int
	FailureRate float64 // trips when failures/calls exceeds it
	SlowRate    float64 // trips when slow/calls exceeds it
	SlowCall    time.Duration
	// OpenWait is the first wait before probing; each trip in a row
	// doubles it up to MaxOpenWait, which is what stops a flapping
	// dependency from flapping the breaker.
	OpenWait    time.Duration
	MaxOpenWait time.Duration
	// Probes is how many trial calls half-open lets through, across all
	// instances; all must succeed to close.
	Probes int
	// ProbeLease is how long a claimed probe permit lasts; a permit whose
	// instance died frees itself when the lease ends.
	ProbeLease time.Duration
	// TripMemory is how long the breaker must stay closed before a new
	// trip starts the wait from OpenWait again.
	TripMemory time.Duration
	// ConsecutiveFailures is the fast trigger: that many failures in a
	// row, across all instances, with no success between them, open the
	// breaker whatever the window says (0: off). The window judges
	// sustained error rates, and over 10 s it cannot see a hard outage
	// for a second or more; a run of failures can, in milliseconds at any
	// real volume. A provider that fails 10 % of calls almost never fails
	// this many in a row (0.1^20), so the trigger does not tighten the
	// rate threshold; the open wait's backoff still bounds a flapping
	// provider.
	ConsecutiveFailures int
}

// DefaultBreakerPolicy is the seed's policy: a slow call is one over 3 s,
// and a failure rate over 10 % opens; so do 20 failures in a row, the
// minimum volume, which at 200 calls/s is 100 ms of a hard outage.
func DefaultBreakerPolicy() BreakerPolicy {
	return BreakerPolicy{
		Window: 10 * time.Second, MinCalls: 20, FailureRate: 0.10, SlowRate: 0.50, SlowCall: 3 * time.Second,
		OpenWait: 5 * time.Second, MaxOpenWait: 60 * time.Second, Probes: 3, ProbeLease: 10 * time.Second,
		TripMemory: 2 * time.Minute, ConsecutiveFailures: 20,
	}
}

// Validate reports the first unusable threshold, naming it.
func (p BreakerPolicy) Validate() error {
	switch {
	case p.Window < time.Second || p.Window > 10*time.Minute:
		return errors.New("window must be between 1s and 10m")
	case p.MinCalls < 1 || p.MinCalls > 1_000_000:
		return errors.New("min_calls must be between 1 and 1000000")
	case !(p.FailureRate > 0 && p.FailureRate <= 1):
		return errors.New("failure_rate must be above 0 and at most 1")
	case !(p.SlowRate > 0 && p.SlowRate <= 1):
		return errors.New("slow_rate must be above 0 and at most 1")
	case p.SlowCall <= 0 || p.SlowCall > 10*time.Minute:
		return errors.New("slow_call must be between 1ns and 10m")
	case p.OpenWait < 10*time.Millisecond || p.OpenWait > time.Hour:
		return errors.New("open_wait must be between 10ms and 1h")
	case p.MaxOpenWait < p.OpenWait || p.MaxOpenWait > 24*time.Hour:
		return errors.New("max_open_wait must be at least open_wait and at most 24h")
	case p.Probes < 1 || p.Probes > 100:
		return errors.New("probes must be between 1 and 100")
	case p.ProbeLease < 10*time.Millisecond || p.ProbeLease > time.Hour:
		return errors.New("probe_lease must be between 10ms and 1h")
	case p.TripMemory < 0 || p.TripMemory > 24*time.Hour:
		return errors.New("trip_memory must be between 0 and 24h")
	case p.ConsecutiveFailures < 0 || p.ConsecutiveFailures > 1_000_000:
		return errors.New("consecutive_failures must be between 0 (off) and 1000000")
	}
	return nil
}

// Breaker is one dependency's shared breaker, as stored in its row.
// Generation increases with every state change; writers compare-and-swap
// on it, and outcomes are counted per generation so a closed breaker never
// judges calls made before it closed.
type Breaker struct {
	Name       string
	State      BreakerState
	Generation int64
	Since      time.Time
	OpenUntil  time.Time // when open: the earliest moment to probe
	Trips      int       // trips in a row, for the open wait's backoff
	Policy     BreakerPolicy
}

// Counts are a window's outcomes.
type Counts struct {
	Calls    int
	Failures int
	Slow     int
}

// Add returns the sum of c and o.
func (c Counts) Add(o Counts) Counts {
	return Counts{Calls: c.Calls + o.Calls, Failures: c.Failures + o.Failures, Slow: c.Slow + o.Slow}
}

// FailureRate is failures over calls, 0 without calls.
func (c Counts) FailureRate() float64 { return ratio(c.Failures, c.Calls) }

// SlowRate is slow calls over calls, 0 without calls.
func (c Counts) SlowRate() float64 { return ratio(c.Slow, c.Calls) }

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Verdict is what the breaker says about one call.
type Verdict int

const (
	Allow  Verdict = iota // call
	Reject                // don't call: capture or snooze
	Probe                 // call only with a claimed probe permit
)

// Decide says whether a call may go ahead now. It never changes state:
// moving open to half-open is the background loop's job (HalfOpen), so a
// request never pays for a database write to learn it may not call.
func (b Breaker) Decide() Verdict {
	switch b.State {
	case BreakerClosed, BreakerForcedClosed:
		return Allow
	case BreakerHalfOpen:
		return Probe
	}
	return Reject
}

// ShouldTrip reports whether a closed breaker with these counts for its
// generation must open, and why.
func (b Breaker) ShouldTrip(c Counts) (string, bool) {
	if b.State != BreakerClosed || c.Calls < b.Policy.MinCalls {
		return "", false
	}
	if fr := c.FailureRate(); fr > b.Policy.FailureRate {
		return fmt.Sprintf("failure rate %.1f%% of %d calls over %.0f%%", fr*100, c.Calls, b.Policy.FailureRate*100), true
	}
	if sr := c.SlowRate(); sr > b.Policy.SlowRate {
		return fmt.Sprintf("slow-call rate %.1f%% of %d calls over %.0f%%", sr*100, c.Calls, b.Policy.SlowRate*100), true
	}
	return "", false
}

// ShouldTripOnStreak reports whether a closed breaker whose generation has
// had streak failures in a row must open: the fast trigger, for a hard
// outage. It needs no minimum volume: the run is its own.
func (b Breaker) ShouldTripOnStreak(streak int) (string, bool) {
	n := b.Policy.ConsecutiveFailures
	if b.State != BreakerClosed || n <= 0 || streak < n {
		return "", false
	}
	return fmt.Sprintf("%d failures in a row (threshold %d)", streak, n), true
}

// Streak is a run of failures with no success between them, as one
// instance saw it since its last flush, or as the instances together
// have it in the table.
type Streak struct {
	// Reset says a success ended the run before Failures: the run starts
	// again from them.
	Reset    bool
	Failures int
}

// Record returns s after one more call.
func (s Streak) Record(failure bool) Streak {
	if !failure {
		return Streak{Reset: true}
	}
	s.Failures++
	return s
}

// Then returns the run s followed by o: o's success, if any, ends s.
func (s Streak) Then(o Streak) Streak {
	if o.Reset {
		return Streak{Reset: true, Failures: o.Failures}
	}
	return Streak{Reset: s.Reset, Failures: s.Failures + o.Failures}
}

// Trip returns the breaker opened at now. r in [0, 1) jitters the wait by
// ±10 % so instances and dependencies do not probe in lockstep.
func (b Breaker) Trip(now time.Time, r float64) Breaker {
	trips := b.Trips + 1
	if b.State == BreakerClosed && now.Sub(b.Since) >= b.Policy.TripMemory {
		trips = 1 // it stayed healthy long enough: forgive earlier trips
	}
	n := b.next(BreakerOpen, now)
	n.Trips = trips
	n.OpenUntil = now.Add(b.Policy.OpenWaitAfter(trips, r))
	return n
}

// OpenWaitAfter is the wait after the given trip in a row (1-based).
func (p BreakerPolicy) OpenWaitAfter(trips int, r float64) time.Duration {
	d := p.OpenWait
	for i := 1; i < trips && d < p.MaxOpenWait; i++ {
		d *= 2
	}
	d = min(d, p.MaxOpenWait)
	return time.Duration(float64(d) * (0.9 + 0.2*r))
}

// HalfOpen returns the breaker moved to half-open if its wait is over.
func (b Breaker) HalfOpen(now time.Time) (Breaker, bool) {
	if b.State != BreakerOpen || now.Before(b.OpenUntil) {
		return b, false
	}
	return b.next(BreakerHalfOpen, now), true
}

// Close returns the breaker closed after its probes succeeded. Trips are
// kept: only TripMemory of health forgives them.
func (b Breaker) Close(now time.Time) Breaker {
	return b.next(BreakerClosed, now)
}

// Force returns the breaker in an operator's state: forced_open,
// forced_closed, or closed for "back to auto" (which forgets earlier trips,
// since an operator vouched for the dependency).
func (b Breaker) Force(state BreakerState, now time.Time) (Breaker, error) {
	switch state {
	case BreakerForcedOpen, BreakerForcedClosed:
		return b.next(state, now), nil
	case BreakerClosed:
		n := b.next(BreakerClosed, now)
		n.Trips = 0
		return n, nil
	}
	return b, fmt.Errorf("cannot force a breaker to %q", state)
}

// next is b in a new state and generation; trips carry over.
func (b Breaker) next(state BreakerState, now time.Time) Breaker {
	return Breaker{Name: b.Name, State: state, Generation: b.Generation + 1, Since: now, Trips: b.Trips, Policy: b.Policy}
}

// RetryAt is when work rejected by this breaker should come back: its probe
// time when open; soon when half-open (the probes settle it within a call
// or two); a while when forced open, which has no probe time.
func (b Breaker) RetryAt(now time.Time) time.Time {
	switch {
	case b.State == BreakerOpen && b.OpenUntil.After(now):
		return b.OpenUntil
	case b.State == BreakerForcedOpen:
		return now.Add(5 * time.Second)
	}
	return now.Add(time.Second)
}
