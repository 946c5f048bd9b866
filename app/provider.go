package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Charge is what Spillway asks a payment provider to do. IdempotencyKey is
// the operation's provider key (its id, see Operation.ProviderKey), so a
// retry of a call that timed out but did take effect downstream has no
// second effect. Reference is always the operation id: it is how a charge
// found on the provider's side is traced back to us (the orphan sweep).
type Charge struct {
	IdempotencyKey string
	Amount         int64
	Currency       string
	Reference      string
	Description    string
}

// ChargeResult is a provider's business answer: it either took the money
// or declined. Faults are errors, never results.
type ChargeResult struct {
	ProviderRef string // the provider's id for the charge
	Declined    bool
	DeclineCode string // provider's reason when Declined
	// Amount and Currency are what the provider says it charged under the
	// key, when its answer says; zero and "" when it does not. A repeated
	// key replays the first request's answer, so a difference means the
	// key was first used for another request.
	Amount   int64
	Currency string
}

// Matches reports whether the answer is for a charge of amount in
// currency, as far as the provider said.
func (r ChargeResult) Matches(amount int64, currency string) bool {
	return (r.Amount == 0 || r.Amount == amount) && (r.Currency == "" || strings.EqualFold(r.Currency, currency))
}

// PaymentProvider charges money, and answers for what it did under a key.
// Implementations must honour ctx's deadline and return a *ProviderError
// for every failure that is not a business answer.
type PaymentProvider interface {
	Charge(ctx context.Context, c Charge) (ChargeResult, error)
	// Lookup says what happened under an idempotency key. It is how an
	// outcome we do not know (a timeout, a lost connection) becomes known.
	Lookup(ctx context.Context, key string) (ChargeLookup, error)
	// ListCharges pages through the charges created after a moment; after
	// is the previous page's Next ("" for the first). A walk until Next is
	// "" sees each such charge once, in an order of the provider's (the
	// simulator lists oldest first, Stripe newest first).
	ListCharges(ctx context.Context, createdAfter time.Time, after string, limit int) (ChargePage, error)
	// Refund refunds a charge; the same idempotency key refunds once.
	Refund(ctx context.Context, chargeID, idempotencyKey string) (RefundResult, error)
}

// LookupStatus is what a provider says happened under a key.
type LookupStatus string

const (
	LookupSucceeded  LookupStatus = "succeeded"
	LookupDeclined   LookupStatus = "declined"
	LookupProcessing LookupStatus = "processing" // still being decided; ask again later
	LookupNotFound   LookupStatus = "not_found"  // nothing was charged under the key
)

// ChargeLookup is a provider's answer to Lookup.
type ChargeLookup struct {
	Status      LookupStatus
	ProviderRef string
	DeclineCode string
	// KeyClosed is set with LookupNotFound when the answer also closed the
	// key (the generic contract: a later charge with it is refused), so a
	// request still on the wire cannot charge after we concluded it did
	// not. A provider that cannot close keys (Stripe) leaves it false, and
	// callers then conclude "nothing charged" only once the last attempt
	// is older than LookupSettle.
	KeyClosed bool
}

// LookupSettle is how long after an attempt a not-found answer that did
// not close the key is believed: long enough for a request still on the
// wire to have landed and for a provider's search index (Stripe's lags by
// up to a minute) to show it.
const LookupSettle = 2 * time.Minute

// NothingCharged reports whether l proves that nothing was, or will be,
// charged under the key whose last attempt was at lastAttempt.
func (l ChargeLookup) NothingCharged(lastAttempt, now time.Time) bool {
	if l.Status != LookupNotFound {
		return false
	}
	return l.KeyClosed || now.Sub(lastAttempt) >= LookupSettle
}

// ProviderCharge is one charge as the provider lists it.
type ProviderCharge struct {
	ID        string
	Reference string // the operation id the charge was made for
	Amount    int64
	Currency  string
	Status    string // succeeded | declined | processing | refunded
	CreatedAt time.Time
}

// ChargePage is one page of ListCharges; Next is "" on the last page.
type ChargePage struct {
	Charges []ProviderCharge
	Next    string
}

// RefundResult is a provider's answer to Refund.
type RefundResult struct {
	ID     string
	Status string // refunded
}

// FaultKind says why a provider call failed, which decides whether it is
// retried and what reason a 202 reports.
type FaultKind string

const (
	// FaultTimeout: the deadline passed before an answer. The call may still
	// have taken effect downstream.
	FaultTimeout FaultKind = "timeout"
	// FaultUnavailable: connection errors, 5xx, 429, 409 (idempotent request
	// still in progress at the provider). Retried.
	FaultUnavailable FaultKind = "provider_error"
	// FaultRejected: the provider refused the request itself (a 4xx other
	// than a decline). Retrying the same request cannot help.
	FaultRejected FaultKind = "rejected"
	// FaultConflict: the provider holds another request under this key
	// (Stripe's idempotency_error, or an answer for another amount). The
	// request we sent was not carried out.
	FaultConflict FaultKind = "key_conflict"
	// FaultKeyClosed: a lookup closed this key earlier, so nothing was or
	// will be charged under it; a new attempt needs a new key.
	FaultKeyClosed FaultKind = "key_closed"
)

// ProviderError is a provider call that did not produce a business answer.
type ProviderError struct {
	Kind       FaultKind
	StatusCode int // HTTP status from the provider, 0 when none arrived
	// OutcomeUnknown is set when the request may have reached the
	// provider and taken effect: a timeout or a connection lost after the
	// request was sent, or an answer cut short. An operation with such an
	// attempt is never reported failed until a lookup says nothing
	// happened.
	OutcomeUnknown bool
	Err            error
}

func (e *ProviderError) Error() string {
	if e.StatusCode != 0 {
		return fmt.Sprintf("provider %s (HTTP %d): %v", e.Kind, e.StatusCode, e.Err)
	}
	return fmt.Sprintf("provider %s: %v", e.Kind, e.Err)
}

func (e *ProviderError) Unwrap() error { return e.Err }

// Fault reports whether the error counts against a breaker: timeouts and
// unavailability do; a refusal of the request itself says nothing about
// the provider's health. Nil is no fault.
func (e *ProviderError) Fault() bool {
	return e != nil && e.Kind != FaultRejected && e.Kind != FaultConflict && e.Kind != FaultKeyClosed
}

// Retryable reports whether repeating the call could succeed.
func (e *ProviderError) Retryable() bool { return e.Kind != FaultRejected && e.Kind != FaultConflict }

// ClassifyProviderError turns any error from a provider call into a
// *ProviderError. A context deadline is a timeout whatever the
// implementation wrapped it in, and its outcome is unknown unless the
// implementation knew the request was never sent; anything unrecognised
// counts as unavailable with an unknown outcome, so it is retried rather
// than lost and never reported as a failure.
func ClassifyProviderError(ctx context.Context, err error) *ProviderError {
	if err == nil {
		return nil
	}
	var pe *ProviderError
	isPE := errors.As(err, &pe)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		if isPE && (pe.StatusCode != 0 || pe.Kind == FaultTimeout) {
			return pe
		}
		if isPE {
			// A fault the implementation classified otherwise, but the
			// deadline passed: keep what it knew about the outcome.
			return &ProviderError{Kind: FaultTimeout, StatusCode: pe.StatusCode, OutcomeUnknown: pe.OutcomeUnknown, Err: err}
		}
		return &ProviderError{Kind: FaultTimeout, OutcomeUnknown: true, Err: err}
	}
	if isPE {
		return pe
	}
	return &ProviderError{Kind: FaultUnavailable, OutcomeUnknown: true, Err: err}
}
