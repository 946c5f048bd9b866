package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/spillway/spillway/app"
)

// maxStockSKUs is the most SKUs one Stock call reads: what the generic
// contract's GET /stock?skus= must accept (the simulator's bound), and
// more than any cart.
const maxStockSKUs = 100

// InventoryHTTPConfig configures the generic HTTP inventory adapter.
type InventoryHTTPConfig struct {
	// BaseURL is the inventory's absolute http(s) URL (INVENTORY_URL):
	// reservations go to {BaseURL}/reservations, stock reads to
	// {BaseURL}/stock, health checks to {BaseURL}/health. The simulator
	// serves it at its own URL plus sim.InventoryPath.
	BaseURL string
	// Client sends the requests. nil → a pooled client with no overall
	// timeout (ctx deadlines rule) that does not follow redirects.
	Client *http.Client
	// WrapTransport, when set, wraps the pooled client's transport (the
	// tracing instruments the calls there); it is not applied to a given
	// Client.
	WrapTransport func(http.RoundTripper) http.RoundTripper
}

// InventoryHTTP is an app.InventoryService speaking the generic JSON
// inventory contract. Like HTTP it never retries on its own, sends the
// reservation's key as Idempotency-Key, and decides OutcomeUnknown the
// same way (see the package doc). It is safe for concurrent use.
type InventoryHTTP struct {
	caller
	reservationsURL string // {BaseURL}/reservations: reserve, release, lookups
	stockURL        string // {BaseURL}/stock
	healthURL       string // {BaseURL}/health
}

var _ app.InventoryService = (*InventoryHTTP)(nil)

// NewInventoryHTTP validates cfg and returns an inventory adapter.
func NewInventoryHTTP(cfg InventoryHTTPConfig) (*InventoryHTTP, error) {
	u, err := parseBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("http inventory: %w", err)
	}
	return &InventoryHTTP{
		caller:          newCaller(cfg.Client, cfg.WrapTransport),
		reservationsURL: u.JoinPath("reservations").String(),
		stockURL:        u.JoinPath("stock").String(),
		healthURL:       u.JoinPath("health").String(),
	}, nil
}

// reservationRequestBody is the wire shape of POST /reservations.
type reservationRequestBody struct {
	SKU       string `json:"sku"`
	Quantity  int    `json:"quantity"`
	Reference string `json:"reference"`
}

// Reserve posts r to {BaseURL}/reservations. Out of stock is a result;
// every other failure is an *app.ProviderError.
func (p *InventoryHTTP) Reserve(ctx context.Context, r app.Reservation) (app.ReservationResult, error) {
	if pe := checkReservation(r); pe != nil {
		return app.ReservationResult{}, pe
	}
	payload, err := json.Marshal(reservationRequestBody{SKU: r.SKU, Quantity: r.Quantity, Reference: r.Reference})
	if err != nil {
		return app.ReservationResult{}, rejected("encode reservation: %w", err)
	}
	status, body, pe := p.exchange(ctx, http.MethodPost, p.reservationsURL, r.IdempotencyKey, payload, "reservation")
	if pe != nil {
		return app.ReservationResult{}, pe
	}
	return decodeReservationAnswer(status, body, r)
}

// Release sends DELETE {BaseURL}/reservations/{id}. The contract makes it
// idempotent by the id, so it carries no Idempotency-Key; a release that
// timed out may have released (OutcomeUnknown), and repeating it is safe.
func (p *InventoryHTTP) Release(ctx context.Context, reservationID string) (app.ReleaseResult, error) {
	if reservationID == "" {
		return app.ReleaseResult{}, rejected("release has no reservation id")
	}
	status, body, pe := p.exchange(ctx, http.MethodDelete, p.reservationsURL+"/"+url.PathEscape(reservationID), "", nil, "release")
	if pe != nil {
		return app.ReleaseResult{}, pe
	}
	return decodeReleaseAnswer(status, body, reservationID)
}

// LookupReservation asks {BaseURL}/reservations/by-key/{key} what happened
// under key. A not-found answer also closes the key, so like a charge
// lookup it is not free of effects, and one that timed out is
// OutcomeUnknown: the next lookup will say.
func (p *InventoryHTTP) LookupReservation(ctx context.Context, key string) (app.ReservationLookup, error) {
	if key == "" {
		return app.ReservationLookup{}, rejected("reservation lookup has no idempotency key")
	}
	status, body, pe := p.exchange(ctx, http.MethodGet, p.reservationsURL+"/by-key/"+url.PathEscape(key), "", nil, "reservation lookup")
	if pe != nil {
		return app.ReservationLookup{}, pe
	}
	return decodeReservationLookup(status, body)
}

// Stock reads the stock of skus: GET {BaseURL}/stock/{sku} for one SKU,
// GET {BaseURL}/stock?skus=a,b for several (each asked once). No SKU asks
// nothing and returns nil. A SKU the inventory does not know is absent
// from the answer.
func (p *InventoryHTTP) Stock(ctx context.Context, skus []string) ([]app.StockLevel, error) {
	skus, pe := checkSKUs(skus)
	if pe != nil {
		return nil, pe
	}
	var levels []app.StockLevel
	var err error
	switch len(skus) {
	case 0:
		return nil, nil
	case 1:
		status, body, pe := p.exchange(ctx, http.MethodGet, p.stockURL+"/"+url.PathEscape(skus[0]), "", nil, "stock read")
		if pe != nil {
			return nil, readFault(pe)
		}
		levels, err = decodeStockLevel(status, body, skus[0])
	default:
		// Each SKU escaped, the commas between them literal: the contract's
		// ?skus=a,b as written, for a server that splits before unescaping.
		escaped := make([]string, len(skus))
		for i, sku := range skus {
			escaped[i] = url.QueryEscape(sku)
		}
		target := p.stockURL + "?skus=" + strings.Join(escaped, ",")
		status, body, pe := p.exchange(ctx, http.MethodGet, target, "", nil, "stock read")
		if pe != nil {
			return nil, readFault(pe)
		}
		levels, err = decodeStockList(status, body, skus)
	}
	if err != nil {
		return nil, err
	}
	return levels, nil
}

// readFault clears OutcomeUnknown on a read's transport fault: a stock
// read changes nothing downstream, so there is no outcome to be unknown,
// and nothing must wait on a lookup for it.
func readFault(pe *app.ProviderError) *app.ProviderError {
	pe.OutcomeUnknown = false
	return pe
}

// Health asks {BaseURL}/health whether the inventory is up: nil for a 200,
// an *app.ProviderError otherwise. Drills' canaries use it.
func (p *InventoryHTTP) Health(ctx context.Context) error { return p.health(ctx, p.healthURL) }

// checkReservation refuses, before any network call, a reservation no
// inventory could take; above all one without a key, whose retry after a
// timeout could hold the stock twice.
func checkReservation(r app.Reservation) *app.ProviderError {
	var err error
	switch {
	case r.IdempotencyKey == "":
		err = errors.New("reservation has no idempotency key")
	case r.Quantity <= 0:
		err = fmt.Errorf("reservation quantity must be positive, got %d", r.Quantity)
	default:
		err = checkSKU(r.SKU)
	}
	if err != nil {
		return &app.ProviderError{Kind: app.FaultRejected, Err: err}
	}
	return nil
}

// checkSKU refuses a SKU the contract cannot carry: an empty one, or one
// with a comma, which GET /stock?skus= would read as two.
func checkSKU(sku string) error {
	switch {
	case sku == "":
		return errors.New("empty sku")
	case strings.Contains(sku, ","):
		return fmt.Errorf("sku %q contains a comma", clip(sku))
	}
	return nil
}

// checkSKUs returns skus with repeats dropped (first order kept), or a
// rejection when one cannot be carried or there are too many.
func checkSKUs(skus []string) ([]string, *app.ProviderError) {
	seen := make(map[string]bool, len(skus))
	out := make([]string, 0, len(skus))
	for _, sku := range skus {
		if err := checkSKU(sku); err != nil {
			return nil, &app.ProviderError{Kind: app.FaultRejected, Err: fmt.Errorf("stock read: %w", err)}
		}
		if !seen[sku] {
			seen[sku] = true
			out = append(out, sku)
		}
	}
	if len(out) > maxStockSKUs {
		return nil, rejected("stock read: %d SKUs, at most %d per read", len(out), maxStockSKUs)
	}
	return out, nil
}
