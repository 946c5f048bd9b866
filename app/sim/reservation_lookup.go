package sim

import (
	"net/http"
	"time"
)

func (s *Sim) handleReservationLookup(w http.ResponseWriter, r *http.Request) {
	s.serveKeyedLookup(w, r, s.reservationLookup)
}

// reservationLookup answers what happened under a reservation key, with
// the ordering of a charge lookup: counted, chaos (503), then under the
// key's lock either the reservation (reserved or, once released,
// released), or the key's out-of-stock answer (200, so "nothing held, and
// never will be" is an answer, not a miss), or else the key is closed and
// the answer is 404 not_found: a reservation still on the wire then finds
// the key closed and holds nothing.
func (s *Sim) reservationLookup(key string) (answer, time.Duration) {
	return s.inventory.keys.lookup(s, &s.inv, key, "simulated reservation lookup failure", reservationFound)
}

// reservationFound answers a lookup that found o; called holding Sim.mu,
// which guards the reservation's releases.
func reservationFound(o *reserveOutcome) answer {
	if r := o.res; r != nil {
		return answer{status: http.StatusOK, body: mustJSON(reservationResponse{
			ID: r.id, Status: r.status(), SKU: r.sku, Quantity: r.quantity, Reference: r.reference,
		})}
	}
	return answer{status: http.StatusOK, body: mustJSON(outOfStockResponse{Status: StatusOutOfStock, Available: o.available})}
}
