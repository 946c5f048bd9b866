package app

import (
	"context"
	"errors"
	"fmt"
)

// Charge is what Spillway asks a payment provider to do. IdempotencyKey is
// always the operation id, so a retry of a call that timed out but did take
// effect downstream has no second effect.
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
}

// PaymentProvider charges money. Implementations must honour ctx's deadline
// and return a *ProviderError for every failure that is not a decline.
type PaymentProvider interface {
	Charge(ctx context.Context, c Charge) (ChargeResult, error)
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
)

// ProviderError is a provider call that did not produce a business answer.
type ProviderError struct {
	Kind       FaultKind
	StatusCode int // HTTP status from the provider, 0 when none arrived
	Err        error
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
func (e *ProviderError) Fault() bool { return e != nil && e.Kind != FaultRejected }

// Retryable reports whether repeating the same call could succeed.
func (e *ProviderError) Retryable() bool { return e.Kind != FaultRejected }

// ClassifyProviderError turns any error from a provider call into a
// *ProviderError. A context deadline is a timeout whatever the
// implementation wrapped it in; anything unrecognised counts as unavailable
// so it is retried rather than lost.
func ClassifyProviderError(ctx context.Context, err error) *ProviderError {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		var pe *ProviderError
		if errors.As(err, &pe) && pe.StatusCode != 0 {
			return pe
		}
		return &ProviderError{Kind: FaultTimeout, Err: err}
	}
	var pe *ProviderError
	if errors.As(err, &pe) {
		return pe
	}
	return &ProviderError{Kind: FaultUnavailable, Err: err}
}
