package app

import (
	"context"
	"time"
)

// Reservation is what Spillway asks an inventory service to hold for an
// order line. IdempotencyKey is the step's own key (derived from the
// operation and the step), so a retry of a reservation that timed out but
// did take effect holds the stock once. Reference is the operation id, so
// a reservation found on the service's side is traced back to us.
type Reservation struct {
	IdempotencyKey string
	SKU            string
	Quantity       int
	Reference      string
}

// ReservationStatus is the state of a reservation, or of a key, as an
// inventory service reports it.
type ReservationStatus string

const (
	// ReservationReserved: the stock is held under the reservation's id.
	ReservationReserved ReservationStatus = "reserved"
	// ReservationOutOfStock: the service had too little stock and held
	// nothing. A business answer, like a decline: never retried, never
	// counted against the breaker.
	ReservationOutOfStock ReservationStatus = "out_of_stock"
	// ReservationReleased: the reservation was made and has been released;
	// its stock is back.
	ReservationReleased ReservationStatus = "released"
	// ReservationNotFound: nothing was reserved under the key (lookups).
	ReservationNotFound ReservationStatus = "not_found"
)

// ReservationResult is an inventory service's business answer to Reserve:
// reserved (ID set) or out of stock (Available says how many it had).
// Faults are errors, never results.
type ReservationResult struct {
	ID     string // the service's id for the reservation; "" when out of stock
	Status ReservationStatus
	// Available is the stock the service had, when it answered out of
	// stock; 0 otherwise.
	Available int
}

// OutOfStock reports whether the service refused for want of stock.
func (r ReservationResult) OutOfStock() bool { return r.Status == ReservationOutOfStock }

// ReleaseResult is an inventory service's answer to Release.
type ReleaseResult struct {
	ID     string
	Status ReservationStatus // released
}

// ReservationLookup is an inventory service's answer to LookupReservation.
type ReservationLookup struct {
	// Status is reserved, released, out_of_stock (the key's first answer
	// was out of stock: nothing was, or will be, held under it) or
	// not_found.
	Status ReservationStatus
	ID     string // the reservation's id when reserved or released
	// Available is what an out_of_stock answer said was in stock.
	Available int
	// KeyClosed is set with ReservationNotFound when the answer also
	// closed the key, so a reservation still on the wire cannot hold
	// stock after we concluded it did not (the generic contract).
	KeyClosed bool
}

// NothingReserved reports whether l proves that no stock was, or will be,
// held under the key whose last attempt was at lastAttempt: an out-of-stock
// answer is final, and a not-found one is once it closed the key or is
// older than LookupSettle (as for charges).
func (l ReservationLookup) NothingReserved(lastAttempt, now time.Time) bool {
	switch l.Status {
	case ReservationOutOfStock:
		return true
	case ReservationNotFound:
		return l.KeyClosed || now.Sub(lastAttempt) >= LookupSettle
	}
	return false
}

// StockLevel is one SKU's stock as the service reported it at AsOf.
type StockLevel struct {
	SKU       string
	Available int
	AsOf      time.Time
}

// InventoryService holds and releases stock, and answers for what it did
// under a key. It is the second dependency beside PaymentProvider and
// fails the same way: implementations must honour ctx's deadline and
// return a *ProviderError for every failure that is not a business answer
// (ClassifyProviderError applies unchanged), with OutcomeUnknown set when
// a request that may have taken effect went unanswered.
type InventoryService interface {
	// Reserve holds r.Quantity of r.SKU under r.IdempotencyKey; the same
	// key holds once and answers what it first answered. Out of stock is
	// a result (Status ReservationOutOfStock), not an error.
	Reserve(ctx context.Context, r Reservation) (ReservationResult, error)
	// Release gives a reservation's stock back. It is idempotent by the
	// reservation's id, which is why it needs no idempotency key: a retry
	// after a timeout, or a second compensation, releases nothing more.
	Release(ctx context.Context, reservationID string) (ReleaseResult, error)
	// LookupReservation says what happened under an idempotency key. It is
	// how a reservation whose outcome we do not know becomes known; a
	// not-found answer closes the key.
	LookupReservation(ctx context.Context, key string) (ReservationLookup, error)
	// Stock reads the stock of skus. A SKU the service does not know is
	// absent from the answer; the order of the answer is the service's.
	// A read has no effect, so its faults are never OutcomeUnknown.
	Stock(ctx context.Context, skus []string) ([]StockLevel, error)
}
