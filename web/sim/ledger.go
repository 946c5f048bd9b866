package sim

import "sync"

// entry is everything the simulator knows about one idempotency key.
type entry struct {
	// mu serializes requests for this key, so two concurrent first requests
	// cannot both record an effect. It is never held together with Sim.mu
	// taken first, and never across the latency sleep.
	mu     sync.Mutex
	answer *answer // first stored answer; guarded by mu

	// Guarded by Sim.mu, so the control API can read them without waiting
	// behind a request that holds mu.
	calls    int
	effects  int
	status   string
	chargeID string
}

// answer is a stored HTTP response, replayed verbatim for a repeated key.
type answer struct {
	status int
	body   []byte
}

// enterLocked returns key's entry, creating it, and counts the call.
func (s *Sim) enterLocked(key string) *entry {
	e := s.entries[key]
	if e == nil {
		e = &entry{}
		s.entries[key] = e
	}
	e.calls++
	s.calls++
	return e
}

// Effects returns how many effects (recorded charges) key has caused; 0 or 1
// unless idempotency is broken.
func (s *Sim) Effects(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.entries[key]; e != nil {
		return e.effects
	}
	return 0
}

// Calls returns how many valid /charges requests carried key, including
// replays and those answered 503.
func (s *Sim) Calls(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.entries[key]; e != nil {
		return e.calls
	}
	return 0
}

// TotalEffects returns the number of effects over all keys.
func (s *Sim) TotalEffects() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.effects
}

// Reset turns all chaos off and forgets every key. A request in flight
// during Reset completes against the forgotten entry and is not counted.
func (s *Sim) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chaos = Chaos{}
	s.flapStart = s.now()
	s.entries = make(map[string]*entry)
	s.effects = 0
	s.calls = 0
}

// keyStats is the wire shape of GET /control/effects/{key}.
type keyStats struct {
	Key      string `json:"key"`
	Effects  int    `json:"effects"`
	Calls    int    `json:"calls"`
	Status   string `json:"status"`    // "succeeded", "declined" or "" before any answer
	ChargeID string `json:"charge_id"` // "" before any answer
}

func (s *Sim) keyStats(key string) (keyStats, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[key]
	if e == nil {
		return keyStats{}, false
	}
	return keyStats{Key: key, Effects: e.effects, Calls: e.calls, Status: e.status, ChargeID: e.chargeID}, true
}

// totals is the wire shape of GET /control/stats.
type totals struct {
	Effects int `json:"effects"`
	Calls   int `json:"calls"`
	Keys    int `json:"keys"`
}

func (s *Sim) totals() totals {
	s.mu.Lock()
	defer s.mu.Unlock()
	return totals{Effects: s.effects, Calls: s.calls, Keys: len(s.entries)}
}
