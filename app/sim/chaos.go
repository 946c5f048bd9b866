package sim

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// MaxDuration bounds Latency and FlapPeriod: anything longer is a typo, and
// an unbounded latency would pin server goroutines for good.
const MaxDuration = 10 * time.Minute

// Chaos is the fault injection currently applied to one dependency's
// routes: the payment provider's charges, lookups, listings and refunds
// alike, or the inventory's reservations, lookups, releases and stock
// reads, because a dependency in trouble cannot answer any of them. Its
// health route follows Down and flapping only. The zero value is a
// perfectly healthy dependency.
type Chaos struct {
	// Latency is added to every answer, after any effect (a charge, a
	// refund, a reservation, a release, a lookup closing a key) has been
	// recorded.
	Latency time.Duration
	// ErrorRate is the fraction (0..1) of requests answered 503 with no
	// effect.
	ErrorRate float64
	// Down answers every request 503 with no effect.
	Down bool
	// DeclineRate is the fraction (0..1) of new charges declined; on the
	// inventory, of new reservations answered out_of_stock.
	DeclineRate float64
	// FlapPeriod, when > 0, alternates up/down every period, starting up at
	// the moment the period was last changed.
	FlapPeriod time.Duration
}

// Validate reports whether every field is in range.
func (c Chaos) Validate() error {
	var errs []error
	if c.Latency < 0 || c.Latency > MaxDuration {
		errs = append(errs, fmt.Errorf("latency must be between 0 and %v, got %v", MaxDuration, c.Latency))
	}
	if c.FlapPeriod < 0 || c.FlapPeriod > MaxDuration {
		errs = append(errs, fmt.Errorf("flap period must be between 0 and %v, got %v", MaxDuration, c.FlapPeriod))
	}
	// The negated comparisons also reject NaN.
	if !(c.ErrorRate >= 0 && c.ErrorRate <= 1) {
		errs = append(errs, fmt.Errorf("error rate must be between 0 and 1, got %v", c.ErrorRate))
	}
	if !(c.DeclineRate >= 0 && c.DeclineRate <= 1) {
		errs = append(errs, fmt.Errorf("decline rate must be between 0 and 1, got %v", c.DeclineRate))
	}
	return errors.Join(errs...)
}

// clamped forces every field into range. SetChaos uses it because the Go API
// has no error to return and a test asking for ErrorRate 2 clearly means
// "always".
func (c Chaos) clamped() Chaos {
	c.Latency = min(max(c.Latency, 0), MaxDuration)
	c.FlapPeriod = min(max(c.FlapPeriod, 0), MaxDuration)
	c.ErrorRate = clampRate(c.ErrorRate)
	c.DeclineRate = clampRate(c.DeclineRate)
	return c
}

func clampRate(r float64) float64 {
	switch {
	case r != r: // NaN
		return 0
	case r < 0:
		return 0
	case r > 1:
		return 1
	}
	return r
}

// chaosState is one dependency's chaos and its flap clock. The simulator
// keeps one per dependency it serves, so a test can take the payment
// provider down while the inventory stays up, and each flaps on its own
// schedule.
type chaosState struct {
	name      string // what a 503 says is down: "provider", "inventory"
	chaos     Chaos
	flapStart time.Time
}

// setLocked replaces the settings; the flap clock restarts when FlapPeriod
// changes.
func (cs *chaosState) setLocked(c Chaos, now time.Time) {
	if c.FlapPeriod != cs.chaos.FlapPeriod {
		cs.flapStart = now
	}
	cs.chaos = c
}

// resetLocked turns chaos off and restarts the flap clock.
func (cs *chaosState) resetLocked(now time.Time) {
	cs.chaos = Chaos{}
	cs.flapStart = now
}

// SetChaos replaces the payment provider's chaos settings. Out-of-range
// values are clamped (rates into 0..1, durations into 0..MaxDuration); use
// Chaos.Validate first to reject them instead. The flap clock restarts
// when FlapPeriod changes.
func (s *Sim) SetChaos(c Chaos) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pay.setLocked(c.clamped(), s.now())
}

// Chaos returns the payment provider's current chaos settings.
func (s *Sim) Chaos() Chaos {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pay.chaos
}

// SetInventoryChaos is SetChaos for the inventory routes, which have chaos
// of their own. DeclineRate there is the fraction of new reservations
// answered out_of_stock whatever the stock.
func (s *Sim) SetInventoryChaos(c Chaos) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inv.setLocked(c.clamped(), s.now())
}

// InventoryChaos returns the inventory's current chaos settings.
func (s *Sim) InventoryChaos() Chaos {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inv.chaos
}

// downLocked reports whether cs's dependency is down right now, either
// hard down or in the down half of a flap cycle.
func (s *Sim) downLocked(cs *chaosState) bool {
	if cs.chaos.Down {
		return true
	}
	p := cs.chaos.FlapPeriod
	if p <= 0 {
		return false
	}
	elapsed := s.now().Sub(cs.flapStart)
	if elapsed < 0 {
		return false // clock went backwards: stay up rather than guess
	}
	return (elapsed/p)%2 == 1
}

// chaosFailureLocked decides whether the request arriving now for cs's
// dependency fails with a 503 because of Down, flapping or ErrorRate. It
// draws from rand only when ErrorRate is set, so a test's draw sequence is
// not disturbed by settings it did not ask for.
func (s *Sim) chaosFailureLocked(cs *chaosState) (answer, bool) {
	if s.downLocked(cs) {
		return unavailable("simulated outage: " + cs.name + " is down"), true
	}
	if cs.chaos.ErrorRate > 0 && s.rand() < cs.chaos.ErrorRate {
		return unavailable("simulated transient error"), true
	}
	return answer{}, false
}

func unavailable(detail string) answer {
	return problemAnswer(http.StatusServiceUnavailable, detail)
}
