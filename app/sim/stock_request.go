package sim

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// maxStockSKUs bounds one GET /stock?skus= read: a cart's worth and more.
const maxStockSKUs = 100

// parseStockQuery validates the raw query of GET /stock and returns the
// SKUs asked for, each once, in the order first asked; nil (no skus
// parameter) asks for every SKU. Unknown and repeated parameters are
// refused, as on the charge listing: a misspelt "sku=" silently reading
// the whole inventory is worse than an error.
func parseStockQuery(raw string) ([]string, error) {
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return nil, fmt.Errorf("malformed query: %w", err)
	}
	// Sorted so the error names the same parameter every time.
	for _, name := range slices.Sorted(maps.Keys(vals)) {
		vs := vals[name]
		switch {
		case name != "skus":
			return nil, fmt.Errorf("unknown parameter %s (want skus)", strconv.Quote(clip(name)))
		case len(vs) != 1:
			return nil, fmt.Errorf("skus must be given at most once")
		}
	}
	vs, ok := vals["skus"]
	if !ok {
		return nil, nil
	}
	parts := strings.Split(vs[0], ",")
	if len(parts) > maxStockSKUs {
		return nil, fmt.Errorf("skus must name at most %d SKUs, got %d", maxStockSKUs, len(parts))
	}
	skus := make([]string, 0, len(parts))
	seen := make(map[string]bool, len(parts))
	for _, sku := range parts {
		if err := validateSKU(sku); err != nil {
			return nil, fmt.Errorf("skus: %w", err)
		}
		if !seen[sku] {
			seen[sku] = true
			skus = append(skus, sku)
		}
	}
	return skus, nil
}
