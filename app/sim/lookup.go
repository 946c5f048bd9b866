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

func (s *Sim) handleLookup(w http.ResponseWriter, r *http.Request) {
	s.serveKeyedLookup(w, r, s.lookup)
}

// lookup answers what happened under a charge key; see keyedLedger.lookup
// for why "not found" closes it.
func (s *Sim) lookup(key string) (answer, time.Duration) {
	return s.chargeKeys.lookup(s, &s.pay, key, "simulated lookup failure", chargeFound)
}

// chargeFound answers a lookup with the outcome under the key, not the
// charge's state now: a later refund does not undo the fact that the
// charge was made (the listing and the control API show refunds).
func chargeFound(c *chargeRecord) answer {
	return answer{status: http.StatusOK, body: mustJSON(lookupResponse{
		ID:          c.id,
		Status:      c.outcome,
		Amount:      c.amount,
		Currency:    c.currency,
		Reference:   c.reference,
		CreatedAt:   c.createdAt,
		DeclineCode: c.declineCode,
	})}
}
