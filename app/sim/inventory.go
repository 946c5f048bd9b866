package sim

import (
	"crypto/rand"
	"encoding/json"
	"maps"
	"net/http"
	"strings"
)

// Reservation statuses the inventory answers with.
const (
	StatusReserved   = "reserved"
	StatusReleased   = "released"
	StatusOutOfStock = "out_of_stock"
)

// inventory is the simulated inventory service: stock per SKU, and what
// each reservation key and reservation did. Guarded by Sim.mu, except
// where keyedEntry says otherwise.
type inventory struct {
	stock        map[string]int              // units available now, by SKU
	keys         keyedLedger[reserveOutcome] // by reservation idempotency key; its effects are reservations
	byID         map[string]*reservation     // by reservation id
	outOfStock   int                         // keys first answered out_of_stock
	releases     int                         // releases that gave stock back
	releaseCalls int                         // valid DELETE requests
}

// reserveOutcome is what a reservation key decided: a reservation, or an
// out-of-stock answer. Both are stored (a repeated key must not reserve
// what its first request could not) and both are what a lookup finds.
type reserveOutcome struct {
	res       *reservation // the reservation made; nil when out of stock
	available int          // out of stock: what that answer said was in stock
}

// reservation is one reservation made (an effect).
type reservation struct {
	id        string
	key       string
	sku       string
	quantity  int
	reference string
	seq       int // 1, 2, 3… in the order reservations were made

	// Guarded by Sim.mu.
	releases     int // releases that gave the stock back: 0 or 1
	releaseCalls int // valid DELETE requests for this reservation
}

func (r *reservation) status() string {
	if r.releases > 0 {
		return StatusReleased
	}
	return StatusReserved
}

// clearInventoryLocked forgets every key and reservation and puts the
// stock back to what the simulator was configured with.
func (s *Sim) clearInventoryLocked() {
	s.inventory = inventory{
		stock: maps.Clone(s.stock),
		keys:  newKeyedLedger[reserveOutcome](),
		byID:  make(map[string]*reservation),
	}
}

// newReservationID returns a random id, unique across Reset and restarts.
func newReservationID() string {
	return "rs_" + strings.ToLower(rand.Text())
}

// jsonAnswer encodes v as an answer; only a value holding a time outside
// years 0–9999 (an injected clock gone wild) fails, and that is a 500.
func jsonAnswer(status int, v any) answer {
	b, err := json.Marshal(v)
	if err != nil {
		return problemAnswer(http.StatusInternalServerError, "encode answer: "+err.Error())
	}
	return answer{status: status, body: b}
}

// InventoryKeyStats is what the inventory did under one reservation
// idempotency key: the Go twin of GET /control/inventory/effects/{key}.
type InventoryKeyStats struct {
	Key          string `json:"key"`
	Reservations int    `json:"reservations"` // reservations made under the key: 0 or 1
	Calls        int    `json:"calls"`        // valid POST /reservations with the key, replays and 503s included
	Lookups      int    `json:"lookups"`      // valid lookups of the key, 503s included
	Closed       bool   `json:"closed"`       // a lookup found nothing and closed the key
	// Status is "reserved", "released", "out_of_stock" or "" before any
	// answer was decided.
	Status        string `json:"status"`
	ReservationID string `json:"reservation_id"` // "" before a reservation
	SKU           string `json:"sku"`
	Quantity      int    `json:"quantity"`
	Seq           int    `json:"seq"`           // the reservation's sequence number, 0 before one
	Releases      int    `json:"releases"`      // releases that gave the stock back: 0 or 1
	ReleaseCalls  int    `json:"release_calls"` // valid release requests for the reservation
}

// InventoryKey returns what the inventory did under key, and false when no
// reservation or lookup has carried it.
func (s *Sim) InventoryKey(key string) (InventoryKeyStats, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.inventory.keys.entries[key]
	if e == nil {
		return InventoryKeyStats{}, false
	}
	st := InventoryKeyStats{Key: key, Reservations: e.effects, Calls: e.calls, Lookups: e.lookups, Closed: e.closed}
	if o := e.rec; o != nil {
		st.Status = StatusOutOfStock
		if r := o.res; r != nil {
			st.Status, st.ReservationID, st.SKU, st.Quantity, st.Seq = r.status(), r.id, r.sku, r.quantity, r.seq
			st.Releases, st.ReleaseCalls = r.releases, r.releaseCalls
		}
	}
	return st, true
}

// InventoryEffects returns how many reservations key has made; 0 or 1
// unless idempotency is broken.
func (s *Sim) InventoryEffects(key string) int {
	st, _ := s.InventoryKey(key)
	return st.Reservations
}

// InventoryCalls returns how many valid POST /reservations requests
// carried key, including replays and those answered 503 or 409.
func (s *Sim) InventoryCalls(key string) int {
	st, _ := s.InventoryKey(key)
	return st.Calls
}

// InventoryLookups returns how many valid lookups asked for key,
// including those answered 503.
func (s *Sim) InventoryLookups(key string) int {
	st, _ := s.InventoryKey(key)
	return st.Lookups
}

// InventoryClosed reports whether a lookup closed the reservation key.
func (s *Sim) InventoryClosed(key string) bool {
	st, _ := s.InventoryKey(key)
	return st.Closed
}

// ReservationID returns the id of the reservation made under key, "" when
// none was.
func (s *Sim) ReservationID(key string) string {
	st, _ := s.InventoryKey(key)
	return st.ReservationID
}

// Releases returns how many times the reservation with id reservationID
// gave its stock back; 0 or 1 unless release idempotency is broken. (Not
// to be confused with Release, which ends a test's Hold.)
func (s *Sim) Releases(reservationID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.inventory.byID[reservationID]; r != nil {
		return r.releases
	}
	return 0
}

// Available returns the units of sku in stock now, and false for a SKU
// the inventory does not know.
func (s *Sim) Available(sku string) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.inventory.stock[sku]
	return n, ok
}

// SetStock sets the units of sku in stock now, adding the SKU if it is
// new; a negative n is taken as 0. It is a Go hook for tests; Reset puts
// the configured stock back.
func (s *Sim) SetStock(sku string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inventory.stock[sku] = max(n, 0)
}

// FailNextReservationLookups makes the next n reservation lookups answer
// 503 whatever the inventory's chaos, as FailNextLookups does for charge
// lookups. It is a Go hook for tests only.
func (s *Sim) FailNextReservationLookups(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inventory.keys.failNext = max(n, 0)
}

// TotalReservations returns the number of reservations made over all keys.
func (s *Sim) TotalReservations() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inventory.keys.effects
}

// TotalReleases returns the number of releases that gave stock back.
func (s *Sim) TotalReleases() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inventory.releases
}

// inventoryTotals is the wire shape of GET /control/inventory/stats.
type inventoryTotals struct {
	Reservations int            `json:"reservations"`
	OutOfStock   int            `json:"out_of_stock"`
	Calls        int            `json:"calls"`
	Keys         int            `json:"keys"` // keys seen by a reservation or a lookup
	Lookups      int            `json:"lookups"`
	Releases     int            `json:"releases"`
	ReleaseCalls int            `json:"release_calls"`
	Stock        map[string]int `json:"stock"` // units in stock now, chaos or not
}

func (s *Sim) inventoryTotals() inventoryTotals {
	s.mu.Lock()
	defer s.mu.Unlock()
	inv := &s.inventory
	return inventoryTotals{
		Reservations: inv.keys.effects,
		OutOfStock:   inv.outOfStock,
		Calls:        inv.keys.calls,
		Keys:         len(inv.keys.entries),
		Lookups:      inv.keys.lookups,
		Releases:     inv.releases,
		ReleaseCalls: inv.releaseCalls,
		Stock:        maps.Clone(inv.stock),
	}
}
