package sim

import (
	"errors"
	"fmt"
	"strings"
)

const (
	// maxQuantity bounds one reservation: more than any order line, and
	// far from overflowing stock arithmetic.
	maxQuantity = 1_000_000
	// maxSKULen bounds a SKU, in a body, a path or a query.
	maxSKULen = 255
)

// reservationRequest is the POST /reservations body. Unknown fields are
// ignored, as for charges, so the contract can grow.
type reservationRequest struct {
	SKU       string `json:"sku"`
	Quantity  int    `json:"quantity"`
	Reference string `json:"reference"`
}

// decodeReservationRequest parses and validates a reservation body.
func decodeReservationRequest(body []byte) (reservationRequest, error) {
	var req reservationRequest
	if err := decodeBody(body, &req, "reservation"); err != nil {
		return reservationRequest{}, err
	}
	if err := validateSKU(req.SKU); err != nil {
		return reservationRequest{}, err
	}
	if req.Quantity <= 0 || req.Quantity > maxQuantity {
		return reservationRequest{}, fmt.Errorf("quantity must be an integer from 1 to %d, got %d", maxQuantity, req.Quantity)
	}
	if len(req.Reference) > maxReferenceLen {
		return reservationRequest{}, fmt.Errorf("reference must be at most %d bytes, got %d", maxReferenceLen, len(req.Reference))
	}
	return req, nil
}

// validateSKU bounds a SKU. A comma is refused because GET /stock?skus=
// separates SKUs with it: a SKU that cannot be read back is no SKU.
func validateSKU(sku string) error {
	switch {
	case sku == "":
		return errors.New("sku is required")
	case len(sku) > maxSKULen:
		return fmt.Errorf("sku must be at most %d bytes, got %d", maxSKULen, len(sku))
	case strings.Contains(sku, ","):
		return fmt.Errorf("sku must not contain a comma, got %q", clip(sku))
	}
	return nil
}
