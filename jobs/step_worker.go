package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/tracing"
	"github.com/spillway/spillway/db"
)

// StepWorker carries captured operations on from the step where they
// stand, as app.NextStepAction decides: each call in turn, with lookups of
// outcomes we do not know and, when the operation cannot succeed, the
// compensation of every step that took effect. After every action the
// step's progress is written down, on a context no cancel can take away,
// so a crash or a retry resumes exactly there and no step takes effect
// twice (each carries its own key). One worker type serves every kind,
// payments and orders alike; T is the kind's job (its NewArgs).
//
// Before each call the worker waits its turn at the dependency's drain
// rate and for its breaker: while the breaker is open the job is snoozed
// to the probe time, which spends no attempt; while it is half-open a job
// that got no probe permit waits here for the probes' verdict rather than
// being snoozed, since the jobs workers fetch first are the
// highest-priority ones and a snoozed job would come back behind
// everything fetched meanwhile.
type StepWorker[T app.StepJobArgs] struct {
	river.WorkerDefaults[T]
	pool         *pgxpool.Pool
	kinds        *app.Kinds
	calls        *app.StepCalls
	breakers     *app.Breakers
	drains       map[string]*app.DrainLimiter
	offpeak      app.OffpeakWindow
	channels     map[app.Channel]bool
	timeouts     map[string]time.Duration
	callTimeout  time.Duration
	keyRetention time.Duration
	stopping     <-chan struct{}
	batch        *opBatch
	retryBase    time.Duration
	retryMax     time.Duration
	metrics      *app.Metrics
	now          func() time.Time
	log          *slog.Logger
}

// StepRegistration registers the worker of one step kind.
type StepRegistration func(workers *river.Workers, cfg Config) error

// StepWorkerFor is the registration of the worker for step kind jobs T:
// what a new kind adds beside its declaration in app.
func StepWorkerFor[T app.StepJobArgs]() StepRegistration {
	return func(workers *river.Workers, cfg Config) error {
		return river.AddWorkerSafely(workers, NewStepWorker[T](cfg))
	}
}

// NewStepWorker returns the worker of T for cfg.
func NewStepWorker[T app.StepJobArgs](cfg Config) *StepWorker[T] {
	w := &StepWorker[T]{pool: cfg.Pool, kinds: cfg.Kinds, breakers: cfg.Breakers, drains: cfg.Drains, offpeak: cfg.Offpeak,
		channels: cfg.Channels, timeouts: cfg.AsyncTimeouts, callTimeout: cfg.CallTimeout, keyRetention: cfg.KeyRetention, stopping: cfg.Stopping,
		retryBase: cfg.RetryBase, retryMax: cfg.RetryMax, metrics: cfg.Metrics, now: cfg.Now, log: cfg.Logger,
		batch: newOpBatch(cfg.Pool, cfg.Channels)}
	if w.now == nil {
		w.now = time.Now
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	w.calls = &app.StepCalls{Kinds: cfg.Kinds, Breakers: cfg.Breakers, Metrics: cfg.Metrics, Path: "async", Now: w.now,
		Admit: w.admit}
	return w
}

// Work drives the operation as far as it will go now. It returns nil when
// the operation ended (recorded, with its notifications, in one
// transaction; River's batched completer then completes the job), a
// snooze when a step's dependency has its breaker open or its drain rate
// says wait (nothing was tried, no attempt is spent), and the fault
// otherwise, so River retries with NextRetry's backoff from the step where
// it stopped.
func (w *StepWorker[T]) Work(ctx context.Context, job *river.Job[T]) error {
	w.metrics.JobStarted(job.Queue, job.Kind, job.ScheduledAt, job.AttemptedAt)
	if o, ok := any(job.Args).(app.OffpeakOnly); ok && o.OffpeakOnly() {
		if now := w.now(); !w.offpeak.Contains(now) && !runNow(job.Metadata) {
			// The window closed with work left: it continues in the next.
			return river.JobSnooze(w.offpeak.NextStart(now).Sub(now))
		}
	}
	id := job.Args.Operation()
	// Every record this attempt logs names its operation (and, when
	// tracing, its trace).
	ctx = tracing.WithOperationID(ctx, id.String())
	op, err := w.batch.get(ctx, id)
	if app.ErrorCode(err) == app.ENOTFOUND {
		// Inserted in the operation's own transaction: only a manual
		// deletion gets here, and retrying will not help.
		return river.JobCancel(fmt.Errorf("operation %s does not exist", id))
	}
	if err != nil {
		return err
	}
	if op.Status.Terminal() {
		return nil // ended elsewhere (an operator, an earlier run)
	}
	if op.Steps == nil {
		// Recorded without steps (by a version before payments had one):
		// migration 00024 gives every open operation its steps, so this is
		// a row written by hand. Nothing is called for it.
		return river.JobCancel(fmt.Errorf("operation %s has no steps to work", id))
	}
	k, ok := w.kinds.Get(op.Kind)
	if !ok {
		return fmt.Errorf("operation %s: no kind %q is declared here", op.ID, op.Kind)
	}
	rec, cancelRec := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancelRec()
	// exhausted is the fault of a last attempt that failed a step for
	// good (giveUp below).
	var exhausted error
	// A run is kept shorter than River's rescue of stuck jobs, which would
	// otherwise start a second run of the job beside this one: past
	// longestCall it starts no new action and gives the job back (a snooze
	// spends no attempt); the next run resumes from the steps as written.
	started, budget := time.Now(), longestCall(w.callTimeout, w.timeouts)
	// Each action moves a step on or stops; the bound only guards against
	// a step that would neither.
	for range 4*len(op.Steps) + 4 {
		a := app.NextStepAction(op.Steps, op.CancelRequested())
		now := app.StorageTime(w.now())
		if a.Kind != app.ActFinish && time.Since(started) > budget {
			return river.JobSnooze(0)
		}
		if a.Kind == app.ActFinish {
			op.ApplyEnding(k, a.Ending, now)
			if exhausted != nil && op.Status == app.StatusFailed {
				// Out of attempts: the failure is recorded, then River
				// discards the job, its word for work that failed for good,
				// which the admin's Retry takes. If we die in between, the
				// job is rescued, finds the operation ended and completes.
				err := w.record(rec, op)
				if err == nil {
					w.metrics.OperationEnded(op)
				} else if !errors.Is(err, errEndedElsewhere) {
					return err
				}
				return exhausted
			}
			// The ending and its notifications are one transaction; River's
			// batched completer then completes the job. Should we die in
			// between, the job is rescued, finds the operation ended and
			// completes without calling anything.
			err := w.record(rec, op)
			if err == nil {
				w.metrics.OperationEnded(op)
			}
			if !errors.Is(err, errEndedElsewhere) {
				return err
			}
			return nil
		}
		step := &op.Steps[a.Step]
		if a.Kind == app.ActCall && step.OutcomeUnknown && w.keyRetention > 0 && op.OutcomeUnknownSince != nil &&
			now.Sub(*op.OutcomeUnknownSince) >= w.keyRetention {
			// The dependency may have forgotten the key, so calling again
			// under it could act a second time: ask first.
			a.Kind = app.ActLookUp
		}
		dep := step.Dependency
		// Pace the backlog before anything else, so a job waiting for its
		// turn holds no breaker permit and has spent no attempt.
		if ok, wait, err := w.drains[dep].Wait(ctx, 2*time.Second); err != nil && ctx.Err() == nil {
			w.log.WarnContext(ctx, "drain limiter", "dependency", dep, "error", err) // fail open: the breaker still guards it
		} else if !ok {
			return river.JobSnooze(wait)
		}
		err := w.calls.Do(ctx, op, a, w.timeout(dep))
		var snooze *rivertype.JobSnoozeError
		if errors.As(err, &snooze) {
			if snooze.Duration > 0 {
				// Held back by an open breaker: keep the job's place for
				// when the gate releases the queue. Losing the note only
				// delays the job to the probe time.
				if herr := db.HoldJobPlace(ctx, w.pool, job.ID); herr != nil {
					w.log.WarnContext(ctx, "hold job place", "job_id", job.ID, "error", herr)
				}
			}
			return err // nothing was tried, so nothing changed to write down
		}
		now = app.StorageTime(w.now())
		if a.Kind == app.ActCall {
			op.Attempts++
		}
		op.Status, op.Mode, op.UpdatedAt = app.StatusProcessing, app.ModeAsync, now
		op.TrackUnknown(now)
		var pe *app.ProviderError
		giveUp := false
		if errors.As(err, &pe) {
			w.log.WarnContext(ctx, "step failed", "operation_id", op.ID, "kind", op.Kind, "step", step.Name, "action", a.String(),
				"attempt", job.Attempt, "error", pe, "outcome_unknown", step.OutcomeUnknown)
			op.RecordFault(pe, now)
			switch {
			case job.Attempt >= job.MaxAttempts && a.Kind == app.ActCall && step.Status == app.StepPending:
				// The last attempt, and every call of the step got a
				// definite answer, so nothing happened under its key: the
				// step has failed for good, and what came before it is
				// undone in this same run.
				step.Status, step.Code = app.StepFailed, "attempts_exhausted"
				giveUp, exhausted = true, err
			case !step.OutcomeUnknown && step.Status == app.StepPending:
				// Waiting for its next attempt, with nothing out.
				op.Status = app.StatusQueued
			}
		} else if err == nil {
			op.Error = nil
			if app.NextStepAction(op.Steps, op.CancelRequested()).Kind == app.ActFinish {
				// The ending is written next, with this step's outcome, in
				// one write: writing the step first would cost each job a
				// second commit and tell no one anything the ending does
				// not. (The read-back cancel request cannot change an
				// ending NextStepAction already reached: declines and
				// failures outrank it, and a success is kept.) Should we
				// die before it, the step stands as it did, and the rerun
				// calls again under the same key, which replays the
				// answer, as after a crash between a call and any write.
				continue
			}
		}
		if rerr := w.record(rec, op); errors.Is(rerr, errEndedElsewhere) {
			return nil
		} else if rerr != nil {
			return rerr
		}
		switch {
		case err == nil || giveUp:
		case job.Attempt >= job.MaxAttempts:
			// A lookup or a compensation is never given up, nor a call
			// whose outcome we do not know: an unknown outcome must be
			// learnt, and a reservation given back, however long the
			// dependency is down. A snooze spends no attempt.
			return river.JobSnooze(Backoff(job.Attempt, w.retryBase, w.retryMax, rand.Float64()))
		default:
			return err
		}
	}
	return fmt.Errorf("operation %s made no progress", op.ID)
}

// admit gives a call to dependency its breaker permit (app.StepCalls'
// Admit). While the breaker is open the job is snoozed to the probe time;
// while it is half-open a call that got no probe permit waits for the
// probes' verdict, re-asking now and then (a probe whose instance died
// frees its permit when its lease ends), and gives its job back when the
// process begins to stop.
func (w *StepWorker[T]) admit(ctx context.Context, dependency string) (*app.Permit, app.Breaker, error) {
	for {
		changed := w.breakers.Changed(dependency)
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		permit, b := w.breakers.Acquire(cctx, dependency)
		cancel()
		if permit != nil {
			return permit, b, nil
		}
		now := w.now()
		if b.State != app.BreakerHalfOpen {
			return nil, b, river.JobSnooze(max(b.RetryAt(now).Sub(now), 0))
		}
		select {
		case <-changed:
		case <-time.After(max(b.Policy.ProbeLease/4, 50*time.Millisecond)):
		case <-w.stopping:
			return nil, b, river.JobSnooze(0)
		case <-ctx.Done():
			return nil, b, river.JobSnooze(0)
		}
	}
}

// errEndedElsewhere says the operation was ended elsewhere (an operator)
// while this run worked it: what this run learnt is not written over it.
var errEndedElsewhere = errors.New("the operation was ended elsewhere")

// record writes the operation's progress, with its notifications when
// it ended, in one transaction, batched with other workers' (opBatch).
func (w *StepWorker[T]) record(ctx context.Context, op *app.Operation) error {
	return w.batch.write(ctx, op)
}

// timeout bounds one call to dependency.
func (w *StepWorker[T]) timeout(dependency string) time.Duration {
	if d := w.timeouts[dependency]; d > 0 {
		return d
	}
	if w.callTimeout > 0 {
		return w.callTimeout
	}
	return 30 * time.Second
}

// NextRetry backs off from the step where the operation stopped.
func (w *StepWorker[T]) NextRetry(job *river.Job[T]) time.Time {
	return w.now().Add(Backoff(job.Attempt, w.retryBase, w.retryMax, rand.Float64()))
}

// Timeout leaves River's own limit above what one run may spend: it
// starts no action after longestCall has passed (Work), and an action
// takes at most longestCall.
func (w *StepWorker[T]) Timeout(*river.Job[T]) time.Duration {
	return 2*longestCall(w.callTimeout, w.timeouts) + 10*time.Second
}

// longestCall is the longest one action of a worker may take: the longest
// of its dependencies' async timeouts and fallback (30 s when none is set).
func longestCall(fallback time.Duration, timeouts map[string]time.Duration) time.Duration {
	longest := fallback
	for _, d := range timeouts {
		longest = max(longest, d)
	}
	if longest <= 0 {
		return 30 * time.Second
	}
	return longest
}
