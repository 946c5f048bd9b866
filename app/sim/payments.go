package sim

import (
	"slices"
	"strings"
	"time"
)

// The payment provider's books: its charges and refunds, and what the
// control API reads of them. What is kept per idempotency key is
// Sim.chargeKeys, the keyed ledger of keyed.go that the inventory uses too.

// chargeRecord is one recorded charge (an effect).
type chargeRecord struct {
	id          string
	key         string
	reference   string
	amount      int64
	currency    string
	outcome     string // StatusSucceeded or StatusDeclined, fixed when recorded
	declineCode string
	createdAt   time.Time // wall clock only, UTC, so it orders as it encodes
	seq         int       // 1, 2, 3… in the order charges were recorded

	// Guarded by Sim.mu.
	refunds int
}

// status is the charge's state now: its outcome, or StatusRefunded.
func (c *chargeRecord) status() string {
	if c.refunds > 0 {
		return StatusRefunded
	}
	return c.outcome
}

// compareCharges orders charges as the listing does: by created_at, then id.
func compareCharges(a, b *chargeRecord) int {
	if c := a.createdAt.Compare(b.createdAt); c != 0 {
		return c
	}
	return strings.Compare(a.id, b.id)
}

// refundRecord is the stored answer of one refund idempotency key.
type refundRecord struct {
	chargeID string
	answer   answer
}

// answer is a stored HTTP response, replayed verbatim for a repeated key.
type answer struct {
	status  int
	body    []byte
	problem bool // body is application/problem+json
}

// addChargeLocked records c in the indexes the listing and refunds use.
// Charges almost always arrive in created_at order, so the insertion is
// nearly always an append; the search keeps the order right even when
// the injected clock goes backwards.
func (s *Sim) addChargeLocked(c *chargeRecord) {
	s.charges[c.id] = c
	i, _ := slices.BinarySearchFunc(s.byCreated, c, compareCharges)
	s.byCreated = slices.Insert(s.byCreated, i, c)
}

// Effects returns how many effects (recorded charges) key has caused; 0 or 1
// unless idempotency is broken.
func (s *Sim) Effects(key string) int {
	st, _ := s.keyStats(key)
	return st.Effects
}

// EffectSeq returns the sequence number of key's charge: 1 for the first
// charge the simulator recorded, 2 for the next, and so on; 0 when key
// has none. Tests use it to tell the order in which charges happened.
func (s *Sim) EffectSeq(key string) int {
	st, _ := s.keyStats(key)
	return st.Seq
}

// Calls returns how many valid /charges requests carried key, including
// replays and those answered 503 or 409.
func (s *Sim) Calls(key string) int {
	st, _ := s.keyStats(key)
	return st.Calls
}

// Lookups returns how many valid lookups asked for key, including those
// answered 503.
func (s *Sim) Lookups(key string) int {
	st, _ := s.keyStats(key)
	return st.Lookups
}

// Closed reports whether a lookup closed key (found nothing under it).
func (s *Sim) Closed(key string) bool {
	st, _ := s.keyStats(key)
	return st.Closed
}

// Refunds returns how many refunds the charge with id chargeID has had;
// 0 or 1 unless refund idempotency is broken.
func (s *Sim) Refunds(chargeID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.charges[chargeID]; c != nil {
		return c.refunds
	}
	return 0
}

// TotalEffects returns the number of effects over all keys.
func (s *Sim) TotalEffects() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.chargeKeys.effects
}

// TotalCalls returns the number of valid /charges requests over all keys,
// as Calls counts them.
func (s *Sim) TotalCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.chargeKeys.calls
}

// TotalRefunds returns the number of refunds over all charges.
func (s *Sim) TotalRefunds() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refunded
}

// FailNextLookups makes the next n charge lookups answer 503 whatever the chaos
// settings, so a test can fail exactly the lookups it means to. It is a Go
// hook for tests only; the HTTP control API stays the way to inject
// chaos into a running simulator.
func (s *Sim) FailNextLookups(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chargeKeys.failNext = max(n, 0)
}

// Reset turns all chaos off, for both dependencies, releases every hold,
// forgets every key, charge, refund and reservation, and puts the stock
// back to Config.Stock. A request in flight during Reset completes against
// the forgotten entry and is not counted.
func (s *Sim) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pay.resetLocked(s.now())
	s.inv.resetLocked(s.now())
	s.releaseAllLocked()
	s.clearLocked()
	s.clearInventoryLocked()
}

func (s *Sim) clearLocked() {
	s.chargeKeys = newKeyedLedger[chargeRecord]()
	s.charges = make(map[string]*chargeRecord)
	s.byCreated = nil
	s.refunds = make(map[string]*refundRecord)
	s.refunded = 0
}

// keyStats is the wire shape of GET /control/effects/{key}.
type keyStats struct {
	Key      string `json:"key"`
	Effects  int    `json:"effects"`
	Calls    int    `json:"calls"`
	Lookups  int    `json:"lookups"`
	Closed   bool   `json:"closed"`    // a lookup closed the key
	Status   string `json:"status"`    // "succeeded", "declined", "refunded" or "" before any charge
	ChargeID string `json:"charge_id"` // "" before any charge
	Seq      int    `json:"seq"`       // the charge's sequence number, 0 before any charge
	Refunds  int    `json:"refunds"`   // refunds of the charge
}

func (s *Sim) keyStats(key string) (keyStats, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.chargeKeys.entries[key]
	if e == nil {
		return keyStats{}, false
	}
	st := keyStats{Key: key, Effects: e.effects, Calls: e.calls, Lookups: e.lookups, Closed: e.closed}
	if c := e.rec; c != nil {
		st.Status, st.ChargeID, st.Seq, st.Refunds = c.status(), c.id, c.seq, c.refunds
	}
	return st, true
}

// totals is the wire shape of GET /control/stats.
type totals struct {
	Effects int `json:"effects"`
	Calls   int `json:"calls"`
	Keys    int `json:"keys"` // keys seen by a charge or a lookup
	Lookups int `json:"lookups"`
	Refunds int `json:"refunds"`
}

func (s *Sim) totals() totals {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := &s.chargeKeys
	return totals{Effects: k.effects, Calls: k.calls, Keys: len(k.entries), Lookups: k.lookups, Refunds: s.refunded}
}
