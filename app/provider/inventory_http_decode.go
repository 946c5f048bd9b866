package provider

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/spillway/spillway/app"
)

// reservationAnswer is the wire shape of a 200 reservation or lookup
// answer, and of the 409s (out_of_stock, key_closed).
type reservationAnswer struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

// reservationEcho is what an answer says was asked for under the key,
// when it says. It is decoded apart and on a best-effort basis, like
// chargeMoney: the fields are informative, and a type error in them must
// not turn a reservation that was made into a fault retried for ever.
type reservationEcho struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

func echoOf(body []byte) reservationEcho {
	var e reservationEcho
	_ = json.Unmarshal(body, &e)
	return e
}

// mismatch reports whether an answer's echo names another reservation
// than r: the key was first used for other stock.
func (e reservationEcho) mismatch(r app.Reservation) bool {
	return (e.SKU != "" && e.SKU != r.SKU) || (e.Quantity != 0 && e.Quantity != r.Quantity)
}

// availableOf is the "available" of an out-of-stock answer, best effort:
// 0 ("none, as far as it said") when missing, negative or no integer.
func availableOf(body []byte) int {
	var a struct {
		Available int `json:"available"`
	}
	_ = json.Unmarshal(body, &a)
	return max(a.Available, 0)
}

// Wire statuses of the inventory contract beyond app's.
const (
	statusOutOfStock = string(app.ReservationOutOfStock)
	statusUnknownSKU = "unknown_sku"
)

// decodeReservationAnswer turns a reservation's status and body into a
// result or an *app.ProviderError, never both or neither; a complete
// answer is never OutcomeUnknown.
//
// A 2xx counts only with status "reserved" and an id: a reservation we
// cannot identify could never be released, so it is FaultUnavailable and
// the retry with the same key fetches the stored answer again. A 409 is
// read by its status: out_of_stock is the business answer (a result, like
// a decline), key_closed is FaultKeyClosed (a lookup concluded nothing was
// held, so nothing will be), and any other 409 is a request with this key
// still in flight, retried. An answer that names another SKU or quantity
// than r is FaultConflict: the key was first used for another request,
// and what we asked for was not done.
func decodeReservationAnswer(status int, body []byte, r app.Reservation) (app.ReservationResult, error) {
	switch {
	case status >= 200 && status < 300:
		var a reservationAnswer
		if err := json.Unmarshal(body, &a); err != nil {
			return app.ReservationResult{}, &app.ProviderError{Kind: app.FaultUnavailable, StatusCode: status,
				Err: fmt.Errorf("decode reservation answer: %w", err)}
		}
		if a.Status != string(app.ReservationReserved) || a.ID == "" {
			return app.ReservationResult{}, &app.ProviderError{Kind: app.FaultUnavailable, StatusCode: status,
				Err: fmt.Errorf("unexpected reservation answer: status %q, id %q", clip(a.Status), clip(a.ID))}
		}
		if pe := conflictOf(status, body, r); pe != nil {
			return app.ReservationResult{}, pe
		}
		return app.ReservationResult{ID: a.ID, Status: app.ReservationReserved}, nil

	case status == http.StatusConflict && answerStatus(body) == statusOutOfStock:
		if pe := conflictOf(status, body, r); pe != nil {
			return app.ReservationResult{}, pe
		}
		return app.ReservationResult{Status: app.ReservationOutOfStock, Available: availableOf(body)}, nil

	case status == http.StatusConflict && answerStatus(body) == statusKeyClosed:
		return app.ReservationResult{}, &app.ProviderError{Kind: app.FaultKeyClosed, StatusCode: status,
			Err: fmt.Errorf("inventory answered %d: key closed by an earlier lookup", status)}

	default:
		return app.ReservationResult{}, &app.ProviderError{Kind: statusKind(status), StatusCode: status,
			Err: fmt.Errorf("inventory answered %d: %s", status, excerpt(body))}
	}
}

func conflictOf(status int, body []byte, r app.Reservation) *app.ProviderError {
	e := echoOf(body)
	if !e.mismatch(r) {
		return nil
	}
	return &app.ProviderError{Kind: app.FaultConflict, StatusCode: status,
		Err: fmt.Errorf("key first used for %d of sku %q, not %d of %q", e.Quantity, clip(e.SKU), r.Quantity, clip(r.SKU))}
}

// decodeReleaseAnswer turns a release's status and body into a result or
// an *app.ProviderError, never both. Only a 200 saying "released" for this
// very reservation is a release; any other 200 is FaultUnavailable (asked
// again: releasing is idempotent). A 404 is FaultRejected, final: the
// inventory never issued the id, and no retry changes that.
func decodeReleaseAnswer(status int, body []byte, reservationID string) (app.ReleaseResult, error) {
	if status != http.StatusOK {
		return app.ReleaseResult{}, &app.ProviderError{Kind: statusKind(status), StatusCode: status,
			Err: fmt.Errorf("release answered %d: %s", status, excerpt(body))}
	}
	var a reservationAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return app.ReleaseResult{}, &app.ProviderError{Kind: app.FaultUnavailable, StatusCode: status,
			Err: fmt.Errorf("decode release answer: %w", err)}
	}
	if a.Status != string(app.ReservationReleased) || a.ID != reservationID {
		return app.ReleaseResult{}, &app.ProviderError{Kind: app.FaultUnavailable, StatusCode: status,
			Err: fmt.Errorf("unexpected release answer: status %q, id %q", clip(a.Status), clip(a.ID))}
	}
	return app.ReleaseResult{ID: a.ID, Status: app.ReservationReleased}, nil
}

// decodeReservationLookup turns a lookup's status and body into an answer
// or an *app.ProviderError, never both or neither.
//
// As for charge lookups, "nothing reserved, key closed" comes only from a
// 404 whose body says {"status":"not_found"}: a bare 404 (a proxy, a wrong
// base URL) says nothing about the reservation and is FaultRejected. A 200
// must be reserved or released with an id, or out_of_stock (the key's
// first answer); anything else is FaultUnavailable, asked again later.
func decodeReservationLookup(status int, body []byte) (app.ReservationLookup, error) {
	switch status {
	case http.StatusOK:
		var a reservationAnswer
		if err := json.Unmarshal(body, &a); err != nil {
			return app.ReservationLookup{}, &app.ProviderError{Kind: app.FaultUnavailable, StatusCode: status,
				Err: fmt.Errorf("decode reservation lookup: %w", err)}
		}
		switch st := app.ReservationStatus(a.Status); st {
		case app.ReservationReserved, app.ReservationReleased:
			if a.ID != "" {
				return app.ReservationLookup{Status: st, ID: a.ID}, nil
			}
		case app.ReservationOutOfStock:
			return app.ReservationLookup{Status: st, Available: availableOf(body)}, nil
		}
		return app.ReservationLookup{}, &app.ProviderError{Kind: app.FaultUnavailable, StatusCode: status,
			Err: fmt.Errorf("unexpected reservation lookup: status %q, id %q", clip(a.Status), clip(a.ID))}

	case http.StatusNotFound:
		if answerStatus(body) == string(app.ReservationNotFound) {
			return app.ReservationLookup{Status: app.ReservationNotFound, KeyClosed: true}, nil
		}
		return app.ReservationLookup{}, &app.ProviderError{Kind: app.FaultRejected, StatusCode: status,
			Err: fmt.Errorf("reservation lookup answered 404 without status not_found (is it served at this URL?): %s", excerpt(body))}

	default:
		return app.ReservationLookup{}, &app.ProviderError{Kind: statusKind(status), StatusCode: status,
			Err: fmt.Errorf("reservation lookup answered %d: %s", status, excerpt(body))}
	}
}

// stockLevelAnswer is one SKU's stock on the wire. Available is a pointer
// so a missing count is told apart from zero stock.
type stockLevelAnswer struct {
	SKU       string    `json:"sku"`
	Available *int      `json:"available"`
	AsOf      time.Time `json:"as_of"`
}

// level checks one answered level: for a SKU we asked about, a count of
// zero or more, and a time. A stock figure without its time could not be
// shown with its age, so it is not one.
func (a stockLevelAnswer) level() (app.StockLevel, error) {
	switch {
	case a.Available == nil || *a.Available < 0:
		return app.StockLevel{}, fmt.Errorf("sku %q: available missing or negative", clip(a.SKU))
	case a.AsOf.IsZero():
		return app.StockLevel{}, fmt.Errorf("sku %q: as_of missing", clip(a.SKU))
	}
	return app.StockLevel{SKU: a.SKU, Available: *a.Available, AsOf: a.AsOf}, nil
}

// decodeStockLevel decodes GET /stock/{sku}: one level, or none for a 404
// saying unknown_sku (a bare 404 is FaultRejected, as for lookups). It
// returns a non-nil slice or an error, never both or neither.
func decodeStockLevel(status int, body []byte, sku string) ([]app.StockLevel, error) {
	switch status {
	case http.StatusOK:
		var a stockLevelAnswer
		if err := json.Unmarshal(body, &a); err != nil {
			return nil, &app.ProviderError{Kind: app.FaultUnavailable, StatusCode: status, Err: fmt.Errorf("decode stock answer: %w", err)}
		}
		if a.SKU != sku {
			return nil, &app.ProviderError{Kind: app.FaultUnavailable, StatusCode: status,
				Err: fmt.Errorf("stock answer for sku %q, asked for %q", clip(a.SKU), clip(sku))}
		}
		l, err := a.level()
		if err != nil {
			return nil, &app.ProviderError{Kind: app.FaultUnavailable, StatusCode: status, Err: fmt.Errorf("unexpected stock answer: %w", err)}
		}
		return []app.StockLevel{l}, nil
	case http.StatusNotFound:
		if answerStatus(body) == statusUnknownSKU {
			return []app.StockLevel{}, nil
		}
		return nil, &app.ProviderError{Kind: app.FaultRejected, StatusCode: status,
			Err: fmt.Errorf("stock read answered 404 without status unknown_sku (is it served at this URL?): %s", excerpt(body))}
	default:
		return nil, &app.ProviderError{Kind: statusKind(status), StatusCode: status,
			Err: fmt.Errorf("stock read answered %d: %s", status, excerpt(body))}
	}
}

// decodeStockList decodes GET /stock?skus=: a level per SKU the inventory
// knows, each one we asked about and once. An answer naming a SKU twice or
// one we did not ask about is not a reading of our SKUs, and the whole of
// it is FaultUnavailable. It returns a non-nil slice or an error.
func decodeStockList(status int, body []byte, skus []string) ([]app.StockLevel, error) {
	if status != http.StatusOK {
		return nil, &app.ProviderError{Kind: statusKind(status), StatusCode: status,
			Err: fmt.Errorf("stock read answered %d: %s", status, excerpt(body))}
	}
	var a struct {
		Stock []stockLevelAnswer `json:"stock"`
	}
	bad := func(err error) ([]app.StockLevel, error) {
		return nil, &app.ProviderError{Kind: app.FaultUnavailable, StatusCode: status, Err: err}
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return bad(fmt.Errorf("decode stock answer: %w", err))
	}
	if a.Stock == nil {
		return bad(fmt.Errorf("stock answer has no stock list: %s", excerpt(body)))
	}
	asked := make(map[string]bool, len(skus))
	for _, sku := range skus {
		asked[sku] = true
	}
	levels := make([]app.StockLevel, 0, len(a.Stock))
	for _, la := range a.Stock {
		if !asked[la.SKU] {
			return bad(fmt.Errorf("stock answer names sku %q, not asked for or repeated", clip(la.SKU)))
		}
		asked[la.SKU] = false
		l, err := la.level()
		if err != nil {
			return bad(fmt.Errorf("unexpected stock answer: %w", err))
		}
		levels = append(levels, l)
	}
	return levels, nil
}
