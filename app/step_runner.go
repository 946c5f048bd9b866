package app

import (
	"context"
	"errors"
	"time"

	"github.com/riverqueue/river"
	"go.opentelemetry.io/otel/attribute"
)

// DefaultOrderDeadline bounds the synchronous steps of an operation of a
// step kind together (ORDER_DEADLINE) when the runner is given none.
const DefaultOrderDeadline = 4 * time.Second

// Submit runs one request of kind kind in one transaction: claim the key
// (or replay its answer), plan the steps, then work them synchronously,
// each within its dependency's deadline and all within the operation's
// budget, as NextStepAction decides them. A step that cannot finish in
// time, or whose dependency's breaker is open, is captured where it
// stands: the River job that carries the operation on from that step is
// inserted in the same transaction that records the steps already done,
// together with the operation's notifications and the key's answer.
// Nothing is acknowledged unless the commit succeeded, and every step's
// call carries its own key, so a retry of the request, or the worker, does
// nothing twice.
//
// The budget: the steps get the operation's budget (opBudget) from the
// moment the first starts; everything else the request waits for (the
// callback check, BEGIN, the claim, the plan, a probe permit, the job,
// the final writes and the commit) shares CaptureTimeout. So no request
// waits longer than its budget + CaptureTimeout, and time spent waiting
// for the database is charged neither to a dependency's deadline nor to
// its breaker.
//
// With tracing on, the request is one span (runner.submit), and a capture
// a child of it (runner.capture) whose context is stored with the job.
func (r *Runner) Submit(ctx context.Context, kind, key string, req StepRequest) (*Outcome, error) {
	ctx, span := startSpan(ctx, r.cfg.Tracer, "runner.submit")
	out, err := r.submit(ctx, kind, key, req)
	if span.IsRecording() {
		endSpan(span, err, attribute.String("spillway.kind", kind))
		if out != nil {
			d := out.Document
			span.SetAttributes(attribute.String("spillway.operation_id", d.ID),
				attribute.String("spillway.status", string(d.Status)), attribute.String("spillway.mode", string(d.Mode)),
				attribute.String("spillway.reason", string(d.Reason)))
		}
	}
	span.End()
	return out, err
}

func (r *Runner) submit(ctx context.Context, kind, key string, req StepRequest) (*Outcome, error) {
	k, ok := r.cfg.Kinds.Get(kind)
	if !ok {
		return nil, Errorf(EUNAVAILABLE, "%s requests are not taken here; nothing was done", kind)
	}
	arrival := time.Now() // monotonic: budgets are elapsed time
	// The plan is not known before the transaction, so the whole budget
	// is bounded by the longest an operation may be given.
	ctx, pre, tx, end, err := r.begin(ctx, max(r.cfg.StepDeadline, r.longestDeadline()), req.Callback())
	if err != nil {
		return nil, err
	}
	defer end()

	fp := req.Fingerprint()
	id := OperationID(k.Scope, key)
	claim, answered, err := r.claim(pre, tx, k.Scope, key, id, fp)
	if answered != nil || err != nil {
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
		// Keys an orphan refund spent are not used again.
		KeyGen:    claim.RefundedOrphans,
		CreatedAt: now, UpdatedAt: now,
	}
	a := attempt{pre: pre, arrival: arrival, kind: k.Name}
	var c capture
	if d := op.Payment.Defer; k.Deferrable && (d == DeferOffpeak || (d == "" && r.cfg.DefaultDefer == DeferOffpeak)) {
		at := r.cfg.Offpeak.NextStart(now)
		c = capture{reason: ReasonDeferred, runAt: at, hint: max(at.Sub(now), time.Second)}
	} else if at, ok := asyncOnly(req); ok {
		// A drill's shadow canary: the async path is what it tests.
		c = capture{reason: ReasonDrill, runAt: at, hint: max(at.Sub(now), time.Second)}
	} else {
		// The deadline counts from the first step: time spent waiting for
		// the database is charged to the capture budget, never to the
		// dependencies.
		c, err = r.runStepsSync(ctx, k, op, &a, r.opBudget(op))
		if err != nil {
			return nil, err
		}
	}
	if c.reason != "" && !a.charged {
		// Nothing has happened downstream yet: past the backlog bound of
		// the queue it would wait in, the request is refused rather than
		// queued. Work that may have taken effect is captured whatever the
		// backlog: its outcome must be tracked.
		if err := r.cfg.Backlog.AdmitQueue(k.Queue); err != nil {
			return nil, err
		}
	}
	post, cancelPost := context.WithTimeout(ctx, a.postBudget(r.cfg.CaptureTimeout))
	defer cancelPost()
	if c.reason != "" {
		op.Capture(c.reason, r.stamp())
		opts := river.InsertOpts{Queue: k.Queue, Priority: op.Priority, MaxAttempts: r.cfg.MaxAttempts, ScheduledAt: c.runAt}
		cctx, span := startSpan(post, r.cfg.Tracer, "runner.capture")
		res, err := r.cfg.Jobs.InsertTx(cctx, tx, k.NewArgs(op), &opts)
		if span.IsRecording() {
			endSpan(span, err, attribute.String("spillway.reason", string(c.reason)), attribute.String("spillway.queue", k.Queue))
		}
		span.End()
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
	r.cfg.Logger.DebugContext(ctx, k.Name, "operation_id", op.ID, "status", op.Status, "mode", op.Mode, "reason", op.Reason,
		"elapsed", time.Since(arrival))
	return &Outcome{Document: doc, Body: body, RetryAfter: c.hint}, nil
}

// capture is the runner's decision to hand an operation to a worker: why,
// when the job may run (zero: as soon as a worker is free), and when the
// client may poll again.
type capture struct {
	reason Reason
	runAt  time.Time
	hint   time.Duration
}

// opBudget is how long an operation's synchronous steps may take
// together: a step's own dependency deadline for an operation of one
// step, StepDeadline (ORDER_DEADLINE) shared by the steps of one of
// several.
func (r *Runner) opBudget(op *Operation) time.Duration {
	if len(op.Steps) == 1 {
		return r.dependencyDeadline(op.Steps[0].Dependency)
	}
	return r.cfg.StepDeadline
}

// longestDeadline is the longest deadline of one synchronous call.
func (r *Runner) longestDeadline() time.Duration {
	d := r.cfg.Deadline
	for _, dd := range r.cfg.DependencyDeadlines {
		d = max(d, dd)
	}
	return d
}

// runStepsSync works the operation's steps synchronously until it ends, or
// until a step cannot finish in time or now, and returns the capture then
// (a zero one when the operation ended), or the error that refuses the
// request when nothing was done. a.charged is set once any step may have
// taken effect, so a later 503 says to retry with the same key.
func (r *Runner) runStepsSync(ctx context.Context, k *StepKind, op *Operation, a *attempt, budget time.Duration) (capture, error) {
	a.preUsed = time.Since(a.arrival)
	if a.preUsed > r.cfg.CaptureTimeout/2 {
		// The database is slow: calling now could leave too little of the
		// budget to record the answer. Capture while there is time.
		return capture{reason: ReasonOverloaded, hint: time.Second}, nil
	}
	if !r.sync.TryAcquire(op.Payment.Amount >= r.cfg.HighValueAmount) {
		return capture{reason: ReasonOverloaded, hint: time.Second}, nil
	}
	defer r.sync.Release()
	r.cfg.Metrics.syncStarted()
	defer r.cfg.Metrics.syncEnded()
	deadline := time.Now().Add(budget)
	calls := &StepCalls{Kinds: r.cfg.Kinds, Breakers: r.cfg.Breakers, Metrics: r.cfg.Metrics, Path: "sync", Now: r.cfg.Now}
	retry := capture{hint: time.Second}
	// Each action moves a step on or stops; the bound only guards against
	// a step that would neither.
	for range 4*len(op.Steps) + 4 {
		act := NextStepAction(op.Steps, false)
		if act.Kind == ActFinish {
			op.ApplyEnding(k, act.Ending, r.stamp())
			return capture{}, nil
		}
		dep := op.Steps[act.Step].Dependency
		left := time.Until(deadline)
		if left <= 0 {
			retry.reason = ReasonTimeout
			return retry, nil
		}
		err := calls.Do(ctx, op, act, min(r.dependencyDeadline(dep), left))
		now := r.stamp()
		if act.Kind == ActCall && !errors.Is(err, ErrBreakerOpen) {
			op.Attempts++
		}
		op.UpdatedAt = now
		op.TrackUnknown(now)
		acted := a.charged
		a.charged = a.charged || StepsMayHaveActed(op.Steps)
		var pe *ProviderError
		switch {
		case err == nil:
			op.Error = nil
		case errors.Is(err, ErrBreakerOpen):
			// Known to be failing: skip the call and its wait entirely.
			b, _ := r.cfg.Breakers.Get(dep)
			return capture{reason: ReasonBreakerOpen, hint: b.RetryAt(now).Sub(now)}, nil
		case errors.As(err, &pe) && pe.Kind == FaultConflict && !acted:
			// The key was first used for another request whose answer was
			// lost to us; what it did is found by the orphan sweep. This
			// one was not carried out, and nothing else was.
			return capture{}, &Error{Code: EKEYREUSED, Err: pe,
				Message: "this Idempotency-Key was already used with a different request body"}
		case pe != nil:
			op.RecordFault(pe, now)
			r.cfg.Logger.DebugContext(ctx, "sync call failed; capturing", "operation_id", op.ID, "error", pe)
			retry.reason = ReasonProviderError
			if pe.Kind == FaultTimeout {
				retry.reason = ReasonTimeout
			}
			return retry, nil
		default:
			op.Error = &OperationError{Code: "internal", Message: "the request could not go on synchronously"}
			retry.reason = ReasonProviderError
			return retry, nil
		}
	}
	retry.reason = ReasonProviderError
	return retry, nil
}

// dependencyDeadline bounds one synchronous call to dependency.
func (r *Runner) dependencyDeadline(dependency string) time.Duration {
	if d := r.cfg.DependencyDeadlines[dependency]; d > 0 {
		return d
	}
	return r.cfg.Deadline
}
