package app

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrBreakerOpen says a step was not tried because its dependency's
// breaker is open: nothing happened, and the order waits.
var ErrBreakerOpen = errors.New("the dependency's breaker is open")

// OrderCalls carries out an order's actions, as NextOrderAction decides
// them: the reservations and the charge, the lookups of outcomes we do not
// know, and the releases. Each call carries its step's own key and goes
// through its dependency's breaker. The sync runner and the order worker
// both drive orders with it, so a step is carried out one way whatever
// path the order takes.
type OrderCalls struct {
	Inventory InventoryService
	Payments  PaymentProvider
	Breakers  *Breakers // nil: no breakers
	Metrics   *Metrics
	// Path labels the latency metric: "sync" or "async".
	Path string
	Now  func() time.Time
}

// Do carries out action a (a call, a lookup or a release) of order op
// within timeout and writes what came of it into the step. It returns nil
// when the step advanced; ErrBreakerOpen when nothing was tried; and a
// *ProviderError for a fault, after marking the step's outcome unknown
// when the call may have taken effect. A fault is worth trying again
// later: the order stays where it is.
func (c *OrderCalls) Do(ctx context.Context, op *Operation, a OrderAction, timeout time.Duration) error {
	if op.Order == nil || a.Step < 0 || a.Step >= len(op.Order.Steps) {
		return fmt.Errorf("order %s has no step %d", op.ID, a.Step)
	}
	s := &op.Order.Steps[a.Step]
	switch a.Kind {
	case OrderCall:
		return c.call(ctx, op, s, timeout)
	case OrderLookUp:
		return c.lookUp(ctx, op, s, timeout)
	case OrderRelease:
		return c.release(ctx, op, s, timeout)
	}
	return fmt.Errorf("order %s: %s is not a call", op.ID, a)
}

func (c *OrderCalls) call(ctx context.Context, op *Operation, s *OrderStep, timeout time.Duration) error {
	permit, _ := c.Breakers.Acquire(ctx, s.Dependency)
	if permit == nil {
		return ErrBreakerOpen
	}
	now := StorageTime(orNow(c.Now)())
	s.Attempts++
	s.AttemptedAt = &now
	// A step's mode is its latest attempt's path.
	s.Mode = ModeSync
	if c.Path == "async" {
		s.Mode = ModeAsync
	}
	key := StepKey(op.ID, s.Name)
	if s.IsReserve() {
		line, ok := orderLine(op, s)
		if !ok {
			return fmt.Errorf("order %s has no line for step %s", op.ID, s.Name)
		}
		var res ReservationResult
		pe, _ := guardedCall(ctx, permit, timeout, c.Metrics, s.Dependency, c.Path, func(ctx context.Context) error {
			var err error
			res, err = c.Inventory.Reserve(ctx, Reservation{IdempotencyKey: key, SKU: line.SKU, Quantity: line.Quantity,
				Reference: op.ID.String()})
			return err
		})
		if pe != nil {
			return c.fault(s, pe)
		}
		if res.OutOfStock() {
			s.Status = StepDeclined
		} else {
			s.Status, s.Ref = StepSucceeded, res.ID
		}
		s.OutcomeUnknown = false
		return nil
	}
	var res ChargeResult
	pe, _ := guardedCall(ctx, permit, timeout, c.Metrics, s.Dependency, c.Path, func(ctx context.Context) error {
		var err error
		res, err = c.Payments.Charge(ctx, Charge{IdempotencyKey: key, Amount: op.Payment.Amount,
			Currency: op.Payment.Currency, Reference: op.ID.String()})
		return err
	})
	if pe == nil && !res.Matches(op.Payment.Amount, op.Payment.Currency) {
		pe = &ProviderError{Kind: FaultConflict,
			Err: fmt.Errorf("the provider holds a charge of %d %s under this key", res.Amount, res.Currency)}
	}
	if pe != nil {
		return c.fault(s, pe)
	}
	s.Status, s.Ref, s.OutcomeUnknown = StepSucceeded, res.ProviderRef, false
	if res.Declined {
		s.Status = StepDeclined
	}
	return nil
}

// fault records a failed call in its step: an outcome we may not know
// stays open until a lookup settles it; a refusal of the request itself
// (the dependency will never do it) fails the step for good; anything else
// leaves the step to be tried again.
func (c *OrderCalls) fault(s *OrderStep, pe *ProviderError) error {
	switch {
	case pe.OutcomeUnknown || s.OutcomeUnknown:
		s.Status, s.OutcomeUnknown = StepProcessing, true
	case !pe.Retryable():
		s.Status = StepFailed
	default:
		s.Status = StepPending
	}
	return pe
}

func (c *OrderCalls) lookUp(ctx context.Context, op *Operation, s *OrderStep, timeout time.Duration) error {
	key := StepKey(op.ID, s.Name)
	lctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	now := StorageTime(orNow(c.Now)())
	last := op.CreatedAt
	if s.AttemptedAt != nil {
		last = *s.AttemptedAt
	}
	if s.IsReserve() {
		l, err := c.Inventory.LookupReservation(lctx, key)
		if err != nil {
			return ClassifyProviderError(lctx, err)
		}
		switch {
		case l.Status == ReservationReserved:
			s.Status, s.Ref = StepSucceeded, l.ID
		case l.Status == ReservationReleased:
			s.Status, s.Ref = StepReleased, l.ID
		case l.NothingReserved(last, now):
			s.Status = StepFailed
			if l.Status == ReservationOutOfStock {
				s.Status = StepDeclined
			}
		default:
			return &ProviderError{Kind: FaultUnavailable, OutcomeUnknown: true,
				Err: fmt.Errorf("the inventory has not settled %s yet (%s)", key, l.Status)}
		}
		s.OutcomeUnknown = false
		return nil
	}
	l, err := c.Payments.Lookup(lctx, key)
	if err != nil {
		return ClassifyProviderError(lctx, err)
	}
	switch {
	case l.Status == LookupSucceeded:
		s.Status, s.Ref = StepSucceeded, l.ProviderRef
	case l.Status == LookupDeclined:
		s.Status, s.Ref = StepDeclined, l.ProviderRef
	case l.NothingCharged(last, now):
		s.Status = StepFailed
	default:
		return &ProviderError{Kind: FaultUnavailable, OutcomeUnknown: true,
			Err: fmt.Errorf("the provider has not settled %s yet (%s)", key, l.Status)}
	}
	s.OutcomeUnknown = false
	return nil
}

func (c *OrderCalls) release(ctx context.Context, op *Operation, s *OrderStep, timeout time.Duration) error {
	if !s.IsReserve() || s.Ref == "" {
		return fmt.Errorf("order %s: step %s holds no reservation to release", op.ID, s.Name)
	}
	permit, _ := c.Breakers.Acquire(ctx, s.Dependency)
	if permit == nil {
		return ErrBreakerOpen
	}
	pe, _ := guardedCall(ctx, permit, timeout, c.Metrics, s.Dependency, c.Path, func(ctx context.Context) error {
		_, err := c.Inventory.Release(ctx, s.Ref)
		return err
	})
	if pe != nil {
		// A release is idempotent by the reservation's id: a lost answer
		// is settled by releasing again, so the step stays as it is.
		return pe
	}
	s.Status = StepReleased
	return nil
}

// orderLine is the line a reserve step is for.
func orderLine(op *Operation, s *OrderStep) (PricedLine, bool) {
	for _, l := range op.Order.Lines {
		if ReserveStepName(l.SKU) == s.Name {
			return l, true
		}
	}
	return PricedLine{}, false
}

// guardedCall makes one call to a dependency within timeout and finishes
// its breaker permit with the outcome: a fault counts against the breaker
// (refusals do not), and a slow call as slow. A call we cut ourselves, by
// cancelling ctx before any answer, says nothing about the dependency's
// health, so its permit is released unjudged. It records the latency
// metric and returns the call's error, classified, and how long the call
// took on the monotonic clock.
func guardedCall(ctx context.Context, permit *Permit, timeout time.Duration, m *Metrics, dependency, path string,
	call func(context.Context) error) (*ProviderError, time.Duration) {
	start := time.Now()
	callCtx, cancel := context.WithTimeout(ctx, timeout)
	pe := ClassifyProviderError(callCtx, call(callCtx))
	cut := pe != nil && errors.Is(ctx.Err(), context.Canceled) && pe.StatusCode == 0
	cancel()
	elapsed := time.Since(start)
	if cut {
		permit.Release()
	} else {
		permit.Done(pe.Fault(), elapsed)
	}
	m.Called(dependency, path, elapsed.Seconds(), pe)
	return pe, elapsed
}
