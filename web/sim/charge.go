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
	DeclineCode     = "card_declined"
)

// chargeResponse is the body of a 200 or 402 answer.
type chargeResponse struct {
	ID          string `json:"id"`
	Status      string `json:"status"`
	Amount      int64  `json:"amount"`
	Currency    string `json:"currency"`
	Reference   string `json:"reference"`
	DeclineCode string `json:"decline_code,omitempty"`
}

func (s *Sim) handleCharge(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Idempotency-Key")
	if err := validateKey(key); err != nil {
		writeProblem(w, http.StatusBadRequest, err.Error())
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	req, err := decodeChargeRequest(body)
	if err != nil {
		writeProblem(w, http.StatusBadRequest, err.Error())
		return
	}

	ans, latency := s.charge(key, req)
	// The effect (if any) is already recorded: delaying only the answer is
	// what lets a timed-out client have caused a charge it never heard of.
	sleep(r.Context(), latency)
	contentType := "application/json"
	if ans.status == http.StatusServiceUnavailable {
		contentType = "application/problem+json"
		w.Header().Set("Retry-After", "1")
	}
	writeRaw(w, ans.status, contentType, ans.body)
}

// charge runs one valid charge request through chaos and the ledger and
// returns the answer plus the latency to add before sending it.
func (s *Sim) charge(key string, req chargeRequest) (answer, time.Duration) {
	s.mu.Lock()
	e := s.enterLocked(key)
	latency := s.chaos.Latency
	if s.downLocked() {
		s.mu.Unlock()
		return answer{http.StatusServiceUnavailable, problemBody(http.StatusServiceUnavailable, "simulated outage: provider is down")}, latency
	}
	if s.chaos.ErrorRate > 0 && s.rand() < s.chaos.ErrorRate {
		s.mu.Unlock()
		return answer{http.StatusServiceUnavailable, problemBody(http.StatusServiceUnavailable, "simulated transient error")}, latency
	}
	s.mu.Unlock()

	// Per-key critical section: a concurrent request for the same key waits
	// here and then finds the stored answer.
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.answer != nil {
		return *e.answer, latency
	}

	resp := chargeResponse{
		ID:        newChargeID(),
		Status:    StatusSucceeded,
		Amount:    req.Amount,
		Currency:  req.Currency,
		Reference: req.Reference,
	}
	status := http.StatusOK

	s.mu.Lock()
	if req.Amount%100 == 2 || (s.chaos.DeclineRate > 0 && s.rand() < s.chaos.DeclineRate) {
		resp.Status, resp.DeclineCode = StatusDeclined, DeclineCode
		status = http.StatusPaymentRequired
	}
	// After a Reset the entry is orphaned; its effect belongs to the old
	// generation and must not leak into the new counters.
	if s.entries[key] == e {
		e.effects++
		s.effects++
		e.status, e.chargeID = resp.Status, resp.ID
	}
	s.mu.Unlock()

	body, err := json.Marshal(resp)
	if err != nil {
		// A struct of strings and ints always marshals.
		panic(err)
	}
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
