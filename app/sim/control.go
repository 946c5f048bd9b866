package sim

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// GET|PUT /control are the payment provider's chaos (they came first, and
// scripts and tests use them); GET|PUT /control/inventory are the
// inventory's, in the same shape.

func (s *Sim) handleGetControl(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.view(&s.pay))
}

func (s *Sim) handleGetInventoryControl(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.view(&s.inv))
}

func (s *Sim) view(cs *chaosState) chaosView {
	s.mu.Lock()
	defer s.mu.Unlock()
	return viewOf(cs.chaos, s.downLocked(cs))
}

func (s *Sim) handlePutControl(w http.ResponseWriter, r *http.Request) {
	s.putControl(w, r, &s.pay)
}

func (s *Sim) handlePutInventoryControl(w http.ResponseWriter, r *http.Request) {
	s.putControl(w, r, &s.inv)
}

// putControl merges a PUT body over cs's chaos.
func (s *Sim) putControl(w http.ResponseWriter, r *http.Request, cs *chaosState) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	patch, err := decodeChaosPatch(body)
	if err != nil {
		writeProblem(w, http.StatusBadRequest, err.Error())
		return
	}

	s.mu.Lock()
	next, err := patch.apply(cs.chaos)
	if err == nil {
		cs.setLocked(next, s.now())
	}
	v := viewOf(cs.chaos, s.downLocked(cs))
	s.mu.Unlock()

	if err != nil {
		writeProblem(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Sim) handleEffects(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	st, ok := s.keyStats(key)
	if !ok {
		writeProblem(w, http.StatusNotFound, "no request has carried this idempotency key")
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Sim) handleInventoryEffects(w http.ResponseWriter, r *http.Request) {
	st, ok := s.InventoryKey(r.PathValue("key"))
	if !ok {
		writeProblem(w, http.StatusNotFound, "no reservation request has carried this idempotency key")
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Sim) handleStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.totals())
}

func (s *Sim) handleInventoryStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.inventoryTotals())
}

// handleReset clears both dependencies and answers the payment's chaos,
// as it always has.
func (s *Sim) handleReset(w http.ResponseWriter, _ *http.Request) {
	s.Reset()
	writeJSON(w, http.StatusOK, s.view(&s.pay))
}

// handlePutStock sets the stock of the SKUs it names ({"sku-tea": 5000}),
// as SetStock does: demos and benchmarks restock without a restart. The
// whole body is checked before anything changes.
func (s *Sim) handlePutStock(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	var stock map[string]int
	if err := json.Unmarshal(body, &stock); err != nil || stock == nil {
		writeProblem(w, http.StatusBadRequest, `the body must be an object of SKU to stock, like {"sku-tea": 5000}`)
		return
	}
	for sku, n := range stock {
		if err := validateSKU(sku); err != nil {
			writeProblem(w, http.StatusBadRequest, err.Error())
			return
		}
		if n < 0 || n > maxStock {
			writeProblem(w, http.StatusBadRequest, fmt.Sprintf("the stock of %s must be 0 to %d, not %d", clip(sku), maxStock, n))
			return
		}
	}
	for sku, n := range stock {
		s.SetStock(sku, n)
	}
	s.handleInventoryStats(w, r)
}

// maxStock bounds what a restock may set.
const maxStock = 1_000_000_000
