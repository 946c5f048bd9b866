package sim

import (
	"net/http"
	"time"
)

// lookupResponse is the body of a 200 lookup answer.
type lookupResponse struct {
	ID          string    `json:"id"`
	Status      string    `json:"status"`
	Amount      int64     `json:"amount"`
	Currency    string    `json:"currency"`
	Reference   string    `json:"reference"`
	CreatedAt   time.Time `json:"created_at"`
	DeclineCode string    `json:"decline_code,omitempty"`
}

// notFoundBody answers a lookup that found nothing (and closed the key).
var notFoundBody = []byte(`{"status":"not_found"}`)

func (s *Sim) handleLookup(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if !keyValid(w, key) {
		return
	}
	ans, latency := s.lookup(key)
	// As for charges: what the lookup did (closing the key) is recorded
	// before the delay, so a client that gives up has still closed it.
	s.answerHeld(w, r, key, ans, latency)
}

// lookup answers what happened under key. Finding nothing closes the key,
// which is what makes "not found" a final answer: a charge request still
// on the wire finds the key closed and charges nothing.
func (s *Sim) lookup(key string) (answer, time.Duration) {
	s.mu.Lock()
	e := s.enterLocked(key)
	e.lookups++
	s.lookups++
	latency := s.pay.chaos.Latency
	if s.failNext > 0 {
		s.failNext--
		s.mu.Unlock()
		return unavailable("simulated lookup failure"), latency
	}
	if ans, failed := s.chaosFailureLocked(&s.pay); failed {
		s.mu.Unlock()
		return ans, latency
	}
	s.mu.Unlock()

	// The key's lock orders this lookup against its charges: a charge that
	// holds it has recorded its effect before releasing it, so we see that
	// charge; a charge that has not taken it yet will find the key closed.
	e.mu.Lock()
	defer e.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	c := e.charge
	if c == nil {
		e.closed = true
		return answer{status: http.StatusNotFound, body: notFoundBody}, latency
	}
	// The outcome under the key, not its state now: a later refund does
	// not undo the fact that the charge was made (the listing and the
	// control API show refunds).
	return answer{status: http.StatusOK, body: mustJSON(lookupResponse{
		ID:          c.id,
		Status:      c.outcome,
		Amount:      c.amount,
		Currency:    c.currency,
		Reference:   c.reference,
		CreatedAt:   c.createdAt,
		DeclineCode: c.declineCode,
	})}, latency
}
