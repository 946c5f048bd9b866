package app

import (
	"context"
	"errors"
	"time"

	"github.com/riverqueue/river"
)

// DefaultOrderDeadline bounds the synchronous steps of an operation of a
// step kind together (ORDER_DEADLINE) when the runner is given none.
const DefaultOrderDeadline = 4 * time.Second

// Submit runs one request of step kind kind in one transaction, as
// SubmitPayment runs a payment: claim the key (or replay its answer), plan
// the steps, then work them synchronously, each within its dependency's
// deadline and all within StepDeadline, as NextStepAction decides them. A
// step that cannot finish in time, or whose dependency's breaker is open,
// is captured where it stands: the River job that carries the operation on
// from that step is inserted in the same transaction that records the
// steps already done. Nothing is acknowledged unless the commit succeeded,
// and every step's call carries its own key, so a retry of the request, or
// the worker, does nothing twice.
func (r *Runner) Submit(ctx context.Context, kind, key string, req StepRequest) (*Outcome, error) {
	k, ok := r.cfg.Kinds.Get(kind)
	if !ok {
		return nil, Errorf(EUNAVAILABLE, "%s requests are not taken here; nothing was done", kind)
	}
	arrival := time.Now() // monotonic: budgets are elapsed time
	budget := r.cfg.StepDeadline
	ctx, pre, tx, end, err := r.begin(ctx, budget, req.Callback())
	if err != nil {
		return nil, err
	}
	defer end()

	fp := req.Fingerprint()
	id := OperationID(k.Scope, key)
	if _, answered, err := r.claim(pre, tx, k.Scope, key, id, fp); answered != nil || err != nil {
		return answered, err
	}
	plan, err := k.Plan(pre, tx, req)
	if err != nil {
		return nil, err
	}
	now := r.stamp()
	op := &Operation{
		ID: id, Kind: k.Name, Status: StatusProcessing, Mode: ModeSync,
		Priority: PaymentPriority(plan.Payment.Amount, r.cfg.HighValueAmount),
		Payment:  plan.Payment, Lines: plan.Lines, Steps: plan.Steps,
		CreatedAt: now, UpdatedAt: now,
	}
	// The deadline counts from the first step, as a payment's from its
	// call: time spent waiting for the database is charged to the capture
	// budget, never to the dependencies. So no request waits longer than
	// StepDeadline + CAPTURE_TIMEOUT.
	a := attempt{pre: pre, arrival: arrival, preUsed: time.Since(arrival), kind: k.Name}
	reason := r.runStepsSync(ctx, k, op, &a, time.Now().Add(budget))
	if reason != "" && !a.charged {
		// Nothing has happened downstream yet: past the backlog bound of
		// the queue it would wait in, the request is refused rather than
		// queued.
		if err := r.cfg.Backlog.AdmitQueue(k.Queue); err != nil {
			return nil, err
		}
	}
	post, cancelPost := context.WithTimeout(ctx, a.postBudget(r.cfg.CaptureTimeout))
	defer cancelPost()
	if reason != "" {
		op.Capture(reason, r.stamp())
		opts := river.InsertOpts{Queue: k.Queue, Priority: op.Priority, MaxAttempts: r.cfg.MaxAttempts}
		res, err := r.cfg.Jobs.InsertTx(post, tx, k.NewArgs(op.ID), &opts)
		if err != nil {
			return nil, a.unavailable("insert job", err)
		}
		op.JobID = res.Job.ID
	}
	doc, body, err := r.recordTx(post, tx, &a, op, &IdempotencyRecord{Scope: k.Scope, Key: key, Fingerprint: fp,
		OperationID: op.ID, CreatedAt: now})
	if err != nil {
		return nil, err
	}
	r.cfg.Metrics.Answered(doc)
	r.cfg.Logger.Debug(k.Name, "operation_id", op.ID, "status", op.Status, "mode", op.Mode, "reason", op.Reason,
		"elapsed", time.Since(arrival))
	var retryAfter time.Duration
	if reason != "" {
		retryAfter = time.Second
	}
	return &Outcome{Document: doc, Body: body, RetryAfter: retryAfter}, nil
}

// runStepsSync works the operation's steps synchronously until it ends, or
// until a step cannot finish in time or now, and returns the capture
// reason then ("" when the operation ended). a.charged is set once any
// step may have taken effect, so a later 503 says to retry with the same
// key.
func (r *Runner) runStepsSync(ctx context.Context, k *StepKind, op *Operation, a *attempt, deadline time.Time) Reason {
	if !r.sync.TryAcquire(op.Payment.Amount >= r.cfg.HighValueAmount) {
		return ReasonOverloaded
	}
	defer r.sync.Release()
	r.cfg.Metrics.syncStarted()
	defer r.cfg.Metrics.syncEnded()
	calls := &StepCalls{Kinds: r.cfg.Kinds, Breakers: r.cfg.Breakers, Metrics: r.cfg.Metrics, Path: "sync", Now: r.cfg.Now}
	// Each action moves a step on or stops; the bound only guards against
	// a step that would neither.
	for range 4*len(op.Steps) + 4 {
		act := NextStepAction(op.Steps, false)
		if act.Kind == ActFinish {
			op.ApplyEnding(k, act.Ending, r.stamp())
			return ""
		}
		dep := op.Steps[act.Step].Dependency
		left := time.Until(deadline)
		if left <= 0 {
			return ReasonTimeout
		}
		err := calls.Do(ctx, op, act, min(r.dependencyDeadline(dep), left))
		now := r.stamp()
		if act.Kind == ActCall && !errors.Is(err, ErrBreakerOpen) {
			op.Attempts++
		}
		op.UpdatedAt = now
		op.TrackUnknown(now)
		a.charged = a.charged || StepsMayHaveActed(op.Steps)
		var pe *ProviderError
		switch {
		case err == nil:
			op.Error = nil
		case errors.Is(err, ErrBreakerOpen):
			return ReasonBreakerOpen
		case errors.As(err, &pe):
			op.RecordFault(pe, now)
			if pe.Kind == FaultTimeout || pe.OutcomeUnknown {
				return ReasonTimeout
			}
			return ReasonProviderError
		default:
			op.Error = &OperationError{Code: "internal", Message: "the request could not go on synchronously"}
			return ReasonProviderError
		}
	}
	return ReasonProviderError
}

// dependencyDeadline bounds one synchronous call to dependency.
func (r *Runner) dependencyDeadline(dependency string) time.Duration {
	if d := r.cfg.DependencyDeadlines[dependency]; d > 0 {
		return d
	}
	return r.cfg.Deadline
}
