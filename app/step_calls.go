package app

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrBreakerOpen says a step was not tried because its dependency's
// breaker is open: nothing happened, and the operation waits.
var ErrBreakerOpen = errors.New("the dependency's breaker is open")

// StepCalls carries out the actions of operations of step kinds, as
// NextStepAction decides them: the calls, the lookups of outcomes we do
// not know, and the compensations, each by the handler its kind declares
// for the step. Each call carries its step's own key and goes through its
// dependency's breaker. The sync runner and the step worker both drive
// operations with it, so a step is carried out one way whatever path the
// operation takes.
type StepCalls struct {
	Kinds    *Kinds
	Breakers *Breakers // nil: no breakers
	Metrics  *Metrics
	// Path labels the latency metric: "sync" or "async".
	Path string
	Now  func() time.Time
	// Admit gives the breaker permit a call or a compensation of
	// dependency needs, or an error to stop with (the worker's waits for a
	// half-open breaker's probes and snoozes while it is open). Nil: take
	// a permit now if there is one, else ErrBreakerOpen.
	Admit func(ctx context.Context, dependency string) (*Permit, Breaker, error)
}

// admit is Admit, or a permit now.
func (c *StepCalls) admit(ctx context.Context, dependency string) (*Permit, Breaker, error) {
	if c.Admit != nil {
		return c.Admit(ctx, dependency)
	}
	permit, b := c.Breakers.Acquire(ctx, dependency)
	if permit == nil {
		return nil, b, ErrBreakerOpen
	}
	return permit, b, nil
}

// Do carries out action a (a call, a lookup or a compensation) of op
// within timeout and writes what came of it into the step. It returns nil
// when the step advanced; ErrBreakerOpen when nothing was tried; and a
// *ProviderError for a fault, after marking the step's outcome unknown
// when the call may have taken effect. A fault is worth trying again
// later: the operation stays where it is.
func (c *StepCalls) Do(ctx context.Context, op *Operation, a StepAction, timeout time.Duration) error {
	if a.Step < 0 || a.Step >= len(op.Steps) {
		return fmt.Errorf("operation %s has no step %d", op.ID, a.Step)
	}
	k, ok := c.Kinds.Get(op.Kind)
	if !ok {
		return fmt.Errorf("operation %s: no step kind %q is declared here", op.ID, op.Kind)
	}
	s := &op.Steps[a.Step]
	h, err := k.Handler(s)
	if err != nil {
		return err
	}
	key := k.key(op, s)
	switch a.Kind {
	case ActCall:
		return c.call(ctx, k, op, s, h, key, timeout)
	case ActLookUp:
		return c.lookUp(ctx, op, s, h, key, timeout)
	case ActCompensate:
		return c.compensate(ctx, op, s, h, timeout)
	}
	return fmt.Errorf("operation %s: %s is not a call", op.ID, a)
}

func (c *StepCalls) call(ctx context.Context, k *StepKind, op *Operation, s *Step, h StepHandler, key string, timeout time.Duration) error {
	permit, b, err := c.admit(ctx, s.Dependency)
	if err != nil {
		return err
	}
	if permit.Probe() {
		// A probe must end within its lease, or another instance could
		// take the permit while this call is still out.
		timeout = min(timeout, b.Policy.ProbeLease)
	}
	now := StorageTime(orNow(c.Now)())
	s.Attempts++
	s.AttemptedAt = &now
	op.AttemptedAt = &now
	// A step's mode is its latest attempt's path.
	s.Mode = ModeSync
	if c.Path == "async" {
		s.Mode = ModeAsync
	}
	var res StepResult
	pe, _ := guardedCall(ctx, permit, timeout, c.Metrics, s.Dependency, c.Path, func(ctx context.Context) error {
		var err error
		res, err = h.Call(ctx, op, s, key)
		return err
	})
	if pe == nil && res.Status != StepSucceeded && res.Status != StepDeclined {
		// The dependency answered something its handler could not read:
		// the call may have acted, so only a lookup may say it did not.
		pe = &ProviderError{Kind: FaultRejected, OutcomeUnknown: true,
			Err: fmt.Errorf("step %s: a call answered %q", s.Name, res.Status)}
	}
	if pe != nil {
		return c.fault(k, op, s, pe)
	}
	s.Status, s.Ref, s.Code, s.OutcomeUnknown = res.Status, res.Ref, res.Code, false
	return nil
}

// fault records a failed call in its step: an outcome we may not know
// stays open until a lookup (or a replay) settles it; for a kind whose
// keys have generations, a key the dependency says holds nothing of ours
// (a conflict, a closed key) is closed and the step waits to be called
// under the next; a refusal of the request itself (the dependency will
// never do it) fails the step for good; anything else leaves the step to
// be tried again.
func (c *StepCalls) fault(k *StepKind, op *Operation, s *Step, pe *ProviderError) error {
	switch {
	case k.KeyGenerations && (pe.Kind == FaultConflict || pe.Kind == FaultKeyClosed):
		// Had an earlier call of ours acted under the key, the dependency
		// would have replayed that answer: nothing was done under it for
		// this operation. (What another request left under it is the
		// orphan sweep's.)
		op.CloseKey(StorageTime(orNow(c.Now)()))
		s.Status, s.OutcomeUnknown = StepPending, false
	case pe.OutcomeUnknown || s.OutcomeUnknown:
		s.Status, s.OutcomeUnknown = StepProcessing, true
	case !pe.Retryable():
		s.Status, s.Code = StepFailed, codeRejected
	default:
		s.Status = StepPending
	}
	return pe
}

func (c *StepCalls) lookUp(ctx context.Context, op *Operation, s *Step, h StepHandler, key string, timeout time.Duration) error {
	lctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := op.CreatedAt
	if s.AttemptedAt != nil {
		last = *s.AttemptedAt
	}
	res, err := h.LookUp(lctx, op, s, key, last, StorageTime(orNow(c.Now)()))
	if err != nil {
		return ClassifyProviderError(lctx, err)
	}
	// Pending is settled too: nothing happened, and the step may be
	// called again under its key (a step without effect says so).
	if res.Status == "" || res.Status == StepProcessing {
		return &ProviderError{Kind: FaultUnavailable, OutcomeUnknown: true,
			Err: fmt.Errorf("%s has not settled %s yet", s.Dependency, key)}
	}
	s.Status, s.OutcomeUnknown = res.Status, false
	if res.Ref != "" {
		s.Ref = res.Ref
	}
	if res.Code != "" {
		s.Code = res.Code
	}
	return nil
}

func (c *StepCalls) compensate(ctx context.Context, op *Operation, s *Step, h StepHandler, timeout time.Duration) error {
	if !s.Compensable || s.Ref == "" {
		return fmt.Errorf("operation %s: step %s holds nothing to undo", op.ID, s.Name)
	}
	permit, _, err := c.admit(ctx, s.Dependency)
	if err != nil {
		return err
	}
	pe, _ := guardedCall(ctx, permit, timeout, c.Metrics, s.Dependency, c.Path, func(ctx context.Context) error {
		return h.Compensate(ctx, op, s)
	})
	if pe != nil {
		// A compensation is idempotent by what it names: a lost answer is
		// settled by undoing again, so the step stays as it is.
		return pe
	}
	s.Status = StepReleased
	return nil
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
