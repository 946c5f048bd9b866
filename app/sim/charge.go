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

// keyClosedBody answers a charge whose key a lookup closed.
var keyClosedBody = []byte(`{"status":"key_closed"}`)

func (s *Sim) handleCharge(w http.ResponseWriter, r *http.Request) {
	serveKeyedPost(s, w, r, decodeChargeRequest, s.charge)
}

// serveKeyedPost serves a POST under an Idempotency-Key: the key and the
// body checked (400 otherwise), the request carried out by do, and its
// answer sent after the key's hold and the latency. The effect, if any, is
// recorded before the answer is delayed: that is what lets a timed-out
// client have caused an effect it never heard of.
func serveKeyedPost[T any](s *Sim, w http.ResponseWriter, r *http.Request, decode func([]byte) (T, error),
	do func(key string, req T) (answer, time.Duration)) {
	key := r.Header.Get("Idempotency-Key")
	if !keyValid(w, key) {
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	req, err := decode(body)
	if err != nil {
		writeProblem(w, http.StatusBadRequest, err.Error())
		return
	}
	ans, latency := do(key, req)
	s.answerHeld(w, r, key, ans, latency)
}

// charge runs one valid charge request through chaos and the ledger and
// returns the answer plus the latency to add before sending it.
func (s *Sim) charge(key string, req chargeRequest) (answer, time.Duration) {
	s.mu.Lock()
	e := s.enterLocked(key)
	e.calls++
	s.calls++
	latency := s.pay.chaos.Latency
	if ans, failed := s.chaosFailureLocked(&s.pay); failed {
		s.mu.Unlock()
		return ans, latency
	}
	s.mu.Unlock()

	// Per-key critical section: a concurrent request for the same key waits
	// here and then finds the stored answer, and a concurrent lookup
	// either ran before (and closed the key) or runs after (and finds the
	// charge).
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.answer != nil {
		return *e.answer, latency
	}
	if e.closed {
		// Not stored as the key's answer: nothing happened, and the key
		// stays closed for good anyway.
		return answer{status: http.StatusConflict, body: keyClosedBody}, latency
	}

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
		s.mu.Unlock()
		return problemAnswer(http.StatusInternalServerError, "encode charge: "+err.Error()), latency
	}
	e.charge = rec
	// After a Reset the entry is orphaned; its effect belongs to the old
	// generation and must not leak into the new counters.
	if s.entries[key] == e {
		e.effects++
		s.effects++
		s.seq++
		rec.seq = s.seq
		s.addChargeLocked(rec)
	}
	s.mu.Unlock()

	e.answer = &answer{status: status, body: body}
	return *e.answer, latency
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
