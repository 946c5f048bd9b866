package sim

import (
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// InventoryPath is where the simulator serves the inventory contract: the
// INVENTORY_URL of a Spillway using it is the simulator's URL followed by
// InventoryPath, so {INVENTORY_URL}/reservations, /stock and /health are
// the inventory's while /health at the root stays the payment provider's.
const InventoryPath = "/inventory"

// Config injects the sources of randomness and time so tests can make the
// simulator deterministic, and the inventory's stock. Zero values use the
// real sources and DefaultStock.
type Config struct {
	// Rand returns a float in [0,1); it decides error_rate and decline_rate
	// draws. It is always called under the simulator's lock, so it need not
	// be safe for concurrent use. nil → math/rand/v2.Float64.
	Rand func() float64
	// Now drives the flapping schedule and stamps each charge's
	// created_at and each stock reading's as_of. nil → time.Now.
	Now func() time.Time
	// Stock is the inventory's SKUs and their units in stock at start and
	// after every Reset; negative counts are taken as 0. nil →
	// DefaultStock(); an empty map is an inventory that knows no SKU.
	Stock map[string]int
}

// DefaultStock is the inventory `spillway sim` and the embedded simulator
// start with: a few SKUs with enough stock for a demo, one with very
// little so a second order runs it out, and one sold out so an order can
// be declined out_of_stock on purpose. It returns a new map each time.
func DefaultStock() map[string]int {
	return map[string]int{
		"sku-tea":      1000,
		"sku-mug":      200,
		"sku-kettle":   50,
		"sku-teapot":   3,
		"sku-sold-out": 0,
	}
}

// Sim is the simulator. It is an http.Handler and safe for concurrent use.
type Sim struct {
	rand  func() float64
	now   func() time.Time
	stock map[string]int // Config.Stock as given: what Reset restores
	mux   *http.ServeMux

	mu         sync.Mutex                // guards everything below
	pay        chaosState                // the payment provider's chaos
	inv        chaosState                // the inventory's chaos
	chargeKeys keyedLedger[chargeRecord] // by idempotency key; its effects are charges, see keyed.go
	charges    map[string]*chargeRecord  // by charge id
	byCreated  []*chargeRecord           // every charge, oldest first (created_at, then id)
	refunds    map[string]*refundRecord  // by refund idempotency key
	refunded   int                       // refunds recorded
	holds      map[string]*hold          // by idempotency key, see Hold
	inventory  inventory                 // stock and reservations, see inventory.go
}

// New builds a simulator with all chaos off and the stock of cfg.Stock.
func New(cfg Config) *Sim {
	s := &Sim{
		rand:  cfg.Rand,
		now:   cfg.Now,
		holds: make(map[string]*hold),
		pay:   chaosState{name: "provider"},
		inv:   chaosState{name: "inventory"},
	}
	if cfg.Stock == nil {
		s.stock = DefaultStock()
	} else {
		s.stock = make(map[string]int, len(cfg.Stock))
		for sku, n := range cfg.Stock {
			s.stock[sku] = max(n, 0)
		}
	}
	s.clearLocked()
	s.clearInventoryLocked()
	if s.rand == nil {
		s.rand = rand.Float64
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST /charges", s.handleCharge)
	s.mux.HandleFunc("GET /charges", s.handleList)
	// {key...} so keys containing "/" (escaped or not) still resolve. The
	// refund route does not clash with it: it is another method.
	s.mux.HandleFunc("GET /charges/{key...}", s.handleLookup)
	s.mux.HandleFunc("POST /charges/{id}/refunds", s.handleRefund)
	s.mux.HandleFunc("GET /health", s.handleHealth)

	s.mux.HandleFunc("POST "+InventoryPath+"/reservations", s.handleReserve)
	s.mux.HandleFunc("GET "+InventoryPath+"/reservations/by-key/{key...}", s.handleReservationLookup)
	s.mux.HandleFunc("DELETE "+InventoryPath+"/reservations/{id}", s.handleRelease)
	s.mux.HandleFunc("GET "+InventoryPath+"/stock", s.handleStockList)
	s.mux.HandleFunc("GET "+InventoryPath+"/stock/{sku}", s.handleStock)
	s.mux.HandleFunc("GET "+InventoryPath+"/health", s.handleInventoryHealth)

	s.mux.HandleFunc("GET /control", s.handleGetControl)
	s.mux.HandleFunc("PUT /control", s.handlePutControl)
	s.mux.HandleFunc("GET /control/effects/{key...}", s.handleEffects)
	s.mux.HandleFunc("GET /control/stats", s.handleStats)
	s.mux.HandleFunc("POST /control/reset", s.handleReset)
	s.mux.HandleFunc("GET /control/inventory", s.handleGetInventoryControl)
	s.mux.HandleFunc("PUT /control/inventory", s.handlePutInventoryControl)
	s.mux.HandleFunc("GET /control/inventory/effects/{key...}", s.handleInventoryEffects)
	s.mux.HandleFunc("GET /control/inventory/stats", s.handleInventoryStats)
	s.mux.HandleFunc("PUT /control/inventory/stock", s.handlePutStock)
	return s
}

// ServeHTTP implements http.Handler.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}
