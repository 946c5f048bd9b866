package sim

import (
	"context"
	"net/http"
	"time"
)

// hold is a test's hold on the answers under one key.
type hold struct {
	// gate is closed by Release; nil while the key's answers are not
	// being held.
	gate chan struct{}
	// held counts the answers that reached the hold, released or not.
	held int
}

// Hold makes the simulator keep back its answers to charges, reservations
// and their lookups under key, and to releases of the reservation whose id
// is key, until Release(key), or until the client gives up. An answer
// is held only once everything its request does has been recorded: the
// call or lookup counted, a charge or reservation made or replayed, a
// release given back, a key closed, chaos applied. So a test can keep a
// call in flight for exactly as long as it needs (the call is still out
// while it acts), or time a client out at the moment the downstream has
// acted (see Held), without a latency that races a deadline. Charge and
// reservation keys share the holds: a key used for both is held for both. It is a Go hook for tests only, like
// FailNextLookups; the HTTP contract has no hold. Holding a key already
// held changes nothing.
func (s *Sim) Hold(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.holds[key]
	if h == nil {
		h = &hold{}
		s.holds[key] = h
	}
	if h.gate == nil {
		h.gate = make(chan struct{})
	}
}

// Release sends every answer held under key and stops holding new ones.
// Releasing a key not held changes nothing.
func (s *Sim) Release(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.holds[key]; h != nil && h.gate != nil {
		close(h.gate)
		h.gate = nil
	}
}

// Held returns how many answers under key have reached a hold since the
// last Reset, including those since released or given up on. An answer
// counts once its request's work is recorded and before the client can
// hear it, so "Held went up" means "the provider has acted on this
// request and its caller is still waiting".
func (s *Sim) Held(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.holds[key]; h != nil {
		return h.held
	}
	return 0
}

// awaitRelease keeps the answer to a request under key back while the key
// is held, until Release or the client goes away.
func (s *Sim) awaitRelease(ctx context.Context, key string) {
	s.mu.Lock()
	h := s.holds[key]
	if h == nil || h.gate == nil {
		s.mu.Unlock()
		return
	}
	h.held++
	gate := h.gate
	s.mu.Unlock()
	select {
	case <-gate:
	case <-ctx.Done():
	}
}

// releaseAllLocked ends every hold; Reset forgets them with the keys.
func (s *Sim) releaseAllLocked() {
	for _, h := range s.holds {
		if h.gate != nil {
			close(h.gate)
		}
	}
	s.holds = make(map[string]*hold)
}

// answerHeld sends a keyed request's answer once the key is no longer held
// and the chaos latency has passed. Whatever the request did is recorded
// before this, so a client that gives up meanwhile may have caused an
// effect it never heard of: the case idempotency keys exist for.
func (s *Sim) answerHeld(w http.ResponseWriter, r *http.Request, key string, ans answer, latency time.Duration) {
	s.awaitRelease(r.Context(), key)
	sleep(r.Context(), latency)
	writeAnswer(w, ans)
}
