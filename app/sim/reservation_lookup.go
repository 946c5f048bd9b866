package sim

import (
	"net/http"
	"time"
)

func (s *Sim) handleReservationLookup(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if !keyValid(w, key) {
		return
	}
	ans, latency := s.reservationLookup(key)
	s.answerHeld(w, r, key, ans, latency)
}

// reservationLookup answers what happened under a reservation key, with
// the ordering of a charge lookup: counted, chaos (503), then under the
// key's lock either the reservation (reserved or, once released,
// released), or the key's out-of-stock answer (200, so "nothing held, and
// never will be" is an answer, not a miss), or else the key is closed and
// the answer is 404 not_found: a reservation still on the wire then finds
// the key closed and holds nothing.
func (s *Sim) reservationLookup(key string) (answer, time.Duration) {
	inv := &s.inventory
	s.mu.Lock()
	e := inv.enterLocked(key)
	e.lookups++
	inv.lookups++
	latency := s.inv.chaos.Latency
	if inv.failNext > 0 {
		inv.failNext--
		s.mu.Unlock()
		return unavailable("simulated reservation lookup failure"), latency
	}
	if ans, failed := s.chaosFailureLocked(&s.inv); failed {
		s.mu.Unlock()
		return ans, latency
	}
	s.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch r := e.res; {
	case r != nil:
		return answer{status: http.StatusOK, body: mustJSON(reservationResponse{
			ID: r.id, Status: r.status(), SKU: r.sku, Quantity: r.quantity, Reference: r.reference,
		})}, latency
	case e.outOfStock:
		return answer{status: http.StatusOK, body: mustJSON(outOfStockResponse{Status: StatusOutOfStock, Available: e.available})}, latency
	}
	e.closed = true
	return answer{status: http.StatusNotFound, body: notFoundBody}, latency
}
