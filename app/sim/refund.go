package sim

import (
	"crypto/rand"
	"net/http"
	"strings"
	"time"
)

// refundResponse is the body of a 200 refund answer.
type refundResponse struct {
	ID       string `json:"id"`
	Status   string `json:"status"` // always "refunded"
	ChargeID string `json:"charge_id"`
}

func (s *Sim) handleRefund(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Idempotency-Key")
	if err := validateKey(key); err != nil {
		writeProblem(w, http.StatusBadRequest, err.Error())
		return
	}
	id := r.PathValue("id")
	if err := validateChargeID(id); err != nil {
		writeProblem(w, http.StatusBadRequest, err.Error())
		return
	}
	// The body carries nothing the simulator needs (a refund is always of
	// the whole amount); it is still bounded and drained.
	if _, ok := readBody(w, r); !ok {
		return
	}
	ans, latency := s.refund(id, key)
	sleep(r.Context(), latency)
	writeAnswer(w, ans)
}

// refund refunds the whole charge id under the idempotency key. It runs
// entirely under Sim.mu: nothing in it waits, and that makes "replay or
// refund" one atomic step for concurrent requests with the same key.
//
//   - down or error_rate → 503, nothing refunded;
//   - the key seen before for this charge → its first answer, again;
//   - the key seen before for another charge → 422, nothing refunded;
//   - an unknown charge → 404; a declined or already refunded one → 409.
//
// Only a 200 is stored under the key: the refusals change nothing, and
// asking again gets the same refusal anyway.
func (s *Sim) refund(id, key string) (answer, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	latency := s.pay.chaos.Latency
	if ans, failed := s.chaosFailureLocked(&s.pay); failed {
		return ans, latency
	}
	if prev := s.refunds[key]; prev != nil {
		if prev.chargeID != id {
			return problemAnswer(http.StatusUnprocessableEntity, "Idempotency-Key was first used to refund another charge"), latency
		}
		return prev.answer, latency
	}
	c := s.charges[id]
	switch {
	case c == nil:
		return problemAnswer(http.StatusNotFound, "no such charge"), latency
	case c.outcome == StatusDeclined:
		return problemAnswer(http.StatusConflict, "a declined charge cannot be refunded"), latency
	case c.refunds > 0:
		return problemAnswer(http.StatusConflict, "charge is already refunded"), latency
	}
	c.refunds++
	s.refunded++
	ans := answer{status: http.StatusOK, body: mustJSON(refundResponse{
		ID:       "re_" + strings.ToLower(rand.Text()),
		Status:   StatusRefunded,
		ChargeID: c.id,
	})}
	s.refunds[key] = &refundRecord{chargeID: id, answer: ans}
	return ans, latency
}
