package sim

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// Charge statuses and the decline code the simulator answers with.
const (
	StatusSucceeded = "succeeded"
	StatusDeclined  = "declined"
	StatusRefunded  = "refunded" // a succeeded charge since refunded (listing, control API)
	DeclineCode     = "card_declined"
)

// chargeResponse is the body of a 200 or 402 answer.
type chargeResponse struct {
	ID          string    `json:"id"`
	Status      string    `json:"status"`
	Amount      int64     `json:"amount"`
	Currency    string    `json:"currency"`
	Reference   string    `json:"reference"`
	CreatedAt   time.Time `json:"created_at"`
	DeclineCode string    `json:"decline_code,omitempty"`
}

func (s *Sim) handleCharge(w http.ResponseWriter, r *http.Request) {
	serveKeyedPost(s, w, r, decodeChargeRequest, s.charge)
}

// charge runs one valid charge request through chaos and the ledger and
// returns the answer plus the latency to add before sending it.
func (s *Sim) charge(key string, req chargeRequest) (answer, time.Duration) {
	return s.chargeKeys.post(s, &s.pay, key, func(e *keyedEntry[chargeRecord]) (answer, bool) {
		return s.decideCharge(key, req, e)
	})
}

// decideCharge records the charge under key, the key's first: called
// holding e.mu, as post decides. The answer is to be stored unless it is
// a 500, which recorded nothing.
func (s *Sim) decideCharge(key string, req chargeRequest, e *keyedEntry[chargeRecord]) (answer, bool) {
	rec := &chargeRecord{
		id:        newChargeID(),
		key:       key,
		reference: req.Reference,
		amount:    req.Amount,
		currency:  req.Currency,
		outcome:   StatusSucceeded,
	}
	status := http.StatusOK

	s.mu.Lock()
	defer s.mu.Unlock()
	if req.Amount%100 == 2 || (s.pay.chaos.DeclineRate > 0 && s.rand() < s.pay.chaos.DeclineRate) {
		rec.outcome, rec.declineCode = StatusDeclined, DeclineCode
		status = http.StatusPaymentRequired
	}
	// Stamped under the lock that hands out seq, so with a clock that does
	// not go backwards the listing order and the seq order agree.
	rec.createdAt = s.now().UTC().Round(0)
	body, err := json.Marshal(chargeResponse{
		ID:          rec.id,
		Status:      rec.outcome,
		Amount:      rec.amount,
		Currency:    rec.currency,
		Reference:   rec.reference,
		CreatedAt:   rec.createdAt,
		DeclineCode: rec.declineCode,
	})
	if err != nil {
		// Only an injected clock outside years 0–9999 gets here. Nothing is
		// recorded, so the key can still charge once the clock is sane.
		return problemAnswer(http.StatusInternalServerError, "encode charge: "+err.Error()), false
	}
	e.rec = rec
	if s.chargeKeys.currentLocked(key, e) {
		rec.seq = s.chargeKeys.effectLocked(e)
		s.addChargeLocked(rec)
	}
	return answer{status: status, body: body}, true
}

// newChargeID returns a random id; random rather than a counter so ids stay
// unique across Reset and across simulator restarts.
func newChargeID() string {
	return "ch_" + strings.ToLower(rand.Text())
}

// sleep waits for d, or less if the client goes away: the effect is
// recorded already, and holding the goroutine for a gone client would only
// delay server shutdown.
func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
