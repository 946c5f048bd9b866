package sim

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// releaseResponse is the body of a 200 release answer.
type releaseResponse struct {
	ID     string `json:"id"`
	Status string `json:"status"` // always "released"
}

func (s *Sim) handleRelease(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := validateReservationID(id); err != nil {
		writeProblem(w, http.StatusBadRequest, err.Error())
		return
	}
	ans, latency := s.release(id)
	// Held under the reservation id, the only name a release has.
	s.answerHeld(w, r, id, ans, latency)
}

// release gives a reservation's stock back, once. It runs entirely under
// Sim.mu, which makes "release or answer released again" one step for
// concurrent requests. Chaos first (503, nothing released), then 404 for
// an id the inventory never issued; every other request answers 200
// released, and only the first gives the stock back. Idempotent by the
// id, so it needs no Idempotency-Key.
func (s *Sim) release(id string) (answer, time.Duration) {
	inv := &s.inventory
	s.mu.Lock()
	defer s.mu.Unlock()
	latency := s.inv.chaos.Latency
	rec := inv.byID[id]
	inv.releaseCalls++
	if rec != nil {
		rec.releaseCalls++
	}
	if ans, failed := s.chaosFailureLocked(&s.inv); failed {
		return ans, latency
	}
	if rec == nil {
		return problemAnswer(http.StatusNotFound, "no such reservation"), latency
	}
	if rec.releases == 0 {
		rec.releases++
		inv.releases++
		inv.stock[rec.sku] += rec.quantity
	}
	return answer{status: http.StatusOK, body: mustJSON(releaseResponse{ID: rec.id, Status: StatusReleased})}, latency
}

// validateReservationID bounds an id taken from a path; an unknown one is
// the ledger's 404.
func validateReservationID(id string) error {
	if id == "" {
		return errors.New("reservation id is required")
	}
	if len(id) > maxKeyLen {
		return fmt.Errorf("reservation id must be at most %d bytes, got %d", maxKeyLen, len(id))
	}
	return nil
}
