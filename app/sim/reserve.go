package sim

import (
	"net/http"
	"time"
)

// reservationResponse is the body of a 200 reservation answer, and of a
// 200 lookup of a reservation (with its status now).
type reservationResponse struct {
	ID        string `json:"id"`
	Status    string `json:"status"` // reserved | released
	SKU       string `json:"sku"`
	Quantity  int    `json:"quantity"`
	Reference string `json:"reference"`
}

// outOfStockResponse is the body of a 409 out-of-stock answer, and of a
// 200 lookup of a key first answered so.
type outOfStockResponse struct {
	Status    string `json:"status"` // out_of_stock
	Available int    `json:"available"`
	SKU       string `json:"sku,omitempty"`
	Quantity  int    `json:"quantity,omitempty"`
}

// As for charges, the stock is held before the answer is delayed, so a
// client that gave up may have reserved.
func (s *Sim) handleReserve(w http.ResponseWriter, r *http.Request) {
	serveKeyedPost(s, w, r, decodeReservationRequest, s.reserve)
}

// reserve runs one valid reservation request through the inventory's
// chaos and the stock, and returns the answer plus the latency to add.
//
// Ordering, as for a charge: counted as a call; 503 with no effect when
// down or on an error_rate draw; then, holding the key's lock, the stored
// answer replayed, or 409 key_closed if a lookup closed the key, or — under
// Sim.mu, so stock never goes negative however many keys race — 422 for an
// SKU the inventory does not know (not stored: nothing was decided), 409
// out_of_stock when the quantity exceeds the stock or a decline_rate draw
// says so, else the stock taken and the reservation recorded. Out of stock
// is stored as the key's answer like a reservation: it is a business
// answer, and a repeated key must not reserve what its first request
// could not.
func (s *Sim) reserve(key string, req reservationRequest) (answer, time.Duration) {
	return s.inventory.keys.post(s, &s.inv, key, func(e *keyedEntry[reserveOutcome]) (answer, bool) {
		return s.decideReservation(key, req, e)
	})
}

// decideReservation answers key's first reservation, called holding e.mu
// as post decides. The answer is to be stored unless it is the 422.
func (s *Sim) decideReservation(key string, req reservationRequest, e *keyedEntry[reserveOutcome]) (answer, bool) {
	inv := &s.inventory
	s.mu.Lock()
	defer s.mu.Unlock()
	// After a Reset the entry is orphaned: its answer is still given, but
	// it must not take the new generation's stock or show in its counts.
	current := inv.keys.currentLocked(key, e)
	avail, known := inv.stock[req.SKU]
	if !known {
		return problemAnswer(http.StatusUnprocessableEntity, "unknown sku "+clip(req.SKU)), false
	}
	if req.Quantity > avail || (s.inv.chaos.DeclineRate > 0 && s.rand() < s.inv.chaos.DeclineRate) {
		e.rec = &reserveOutcome{available: avail}
		if current {
			inv.outOfStock++
		}
		return answer{status: http.StatusConflict, body: mustJSON(outOfStockResponse{
			Status: StatusOutOfStock, Available: avail, SKU: req.SKU, Quantity: req.Quantity,
		})}, true
	}
	rec := &reservation{id: newReservationID(), key: key, sku: req.SKU, quantity: req.Quantity, reference: req.Reference}
	e.rec = &reserveOutcome{res: rec}
	if current {
		inv.stock[req.SKU] = avail - req.Quantity
		rec.seq = inv.keys.effectLocked(e)
		inv.byID[rec.id] = rec
	}
	return answer{status: http.StatusOK, body: mustJSON(reservationResponse{
		ID: rec.id, Status: StatusReserved, SKU: rec.sku, Quantity: rec.quantity, Reference: rec.reference,
	})}, true
}
