package sim

import (
	"maps"
	"net/http"
	"slices"
	"time"
)

// stockLevel is one SKU in a stock answer.
type stockLevel struct {
	SKU       string    `json:"sku"`
	Available int       `json:"available"`
	AsOf      time.Time `json:"as_of"`
}

// stockResponse is the body of a 200 GET /stock answer.
type stockResponse struct {
	Stock []stockLevel `json:"stock"`
}

// unknownSKUResponse is the body of a 404 GET /stock/{sku}: the status
// says the inventory does not know the SKU, which a bare 404 from a wrong
// URL would not.
type unknownSKUResponse struct {
	Status string `json:"status"` // unknown_sku
	SKU    string `json:"sku"`
}

// StatusUnknownSKU is the status of a 404 stock read of an unknown SKU.
const StatusUnknownSKU = "unknown_sku"

func (s *Sim) handleStock(w http.ResponseWriter, r *http.Request) {
	sku := r.PathValue("sku")
	if err := validateSKU(sku); err != nil {
		writeProblem(w, http.StatusBadRequest, err.Error())
		return
	}
	ans, latency := s.stockOf(sku)
	sleep(r.Context(), latency)
	writeAnswer(w, ans)
}

func (s *Sim) stockOf(sku string) (answer, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	latency := s.inv.chaos.Latency
	if ans, failed := s.chaosFailureLocked(&s.inv); failed {
		return ans, latency
	}
	n, ok := s.inventory.stock[sku]
	if !ok {
		return jsonAnswer(http.StatusNotFound, unknownSKUResponse{Status: StatusUnknownSKU, SKU: sku}), latency
	}
	return jsonAnswer(http.StatusOK, stockLevel{SKU: sku, Available: n, AsOf: s.now().UTC().Round(0)}), latency
}

func (s *Sim) handleStockList(w http.ResponseWriter, r *http.Request) {
	skus, err := parseStockQuery(r.URL.RawQuery)
	if err != nil {
		writeProblem(w, http.StatusBadRequest, err.Error())
		return
	}
	ans, latency := s.stockList(skus)
	sleep(r.Context(), latency)
	writeAnswer(w, ans)
}

// stockList reads the SKUs asked for (nil: all of them, sorted); one the
// inventory does not know is left out, so a cart with a retired SKU still
// reads the rest.
func (s *Sim) stockList(skus []string) (answer, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	latency := s.inv.chaos.Latency
	if ans, failed := s.chaosFailureLocked(&s.inv); failed {
		return ans, latency
	}
	if skus == nil {
		skus = slices.Sorted(maps.Keys(s.inventory.stock))
	}
	asOf := s.now().UTC().Round(0)
	levels := make([]stockLevel, 0, len(skus))
	for _, sku := range skus {
		if n, ok := s.inventory.stock[sku]; ok {
			levels = append(levels, stockLevel{SKU: sku, Available: n, AsOf: asOf})
		}
	}
	return jsonAnswer(http.StatusOK, stockResponse{Stock: levels}), latency
}
