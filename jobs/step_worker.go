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
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
)

// StepWorker carries captured operations of a step kind on from the step
// where they stand, as app.NextStepAction decides: each call in turn, with
// lookups of outcomes we do not know and, when the operation cannot
// succeed, the compensation of every step that took effect. After every
// action the step's progress is written down, on a context no cancel can
// take away, so a crash or a retry resumes exactly there and no step takes
// effect twice (each carries its own key). One worker type serves every
// step kind; T is the kind's job (its NewArgs).
type StepWorker[T app.StepJobArgs] struct {
	river.WorkerDefaults[T]
	pool      *pgxpool.Pool
	kinds     *app.Kinds
	calls     *app.StepCalls
	breakers  *app.Breakers
	channels  map[app.Channel]bool
	timeouts  map[string]time.Duration
	retryBase time.Duration
	retryMax  time.Duration
	now       func() time.Time
	log       *slog.Logger
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
	return &StepWorker[T]{pool: cfg.Pool, kinds: cfg.Kinds, breakers: cfg.Breakers, channels: cfg.Channels,
		timeouts: cfg.AsyncTimeouts, retryBase: cfg.RetryBase, retryMax: cfg.RetryMax, now: cfg.Now, log: cfg.Logger,
		calls: &app.StepCalls{Kinds: cfg.Kinds, Breakers: cfg.Breakers, Metrics: cfg.Metrics, Path: "async", Now: cfg.Now}}
}

// Work drives the operation as far as it will go now. It returns nil when
// the operation ended (recorded in the transaction that completes the
// job), a snooze when a step's dependency has its breaker open (nothing
// was tried, no attempt is spent), and the fault otherwise, so River
// retries with NextRetry's backoff from the step where it stopped.
func (w *StepWorker[T]) Work(ctx context.Context, job *river.Job[T]) error {
	id := job.Args.Operation()
	op, err := db.GetOperation(ctx, w.pool, id)
	if app.ErrorCode(err) == app.ENOTFOUND {
		// Inserted in the operation's own transaction: only a manual
		// deletion gets here, and retrying will not help.
		return river.JobCancel(fmt.Errorf("operation %s does not exist", id))
	}
	if err != nil {
		return err
	}
	if op.Status.Terminal() || op.Steps == nil {
		return nil // ended elsewhere (an operator, an earlier run)
	}
	k, ok := w.kinds.Get(op.Kind)
	if !ok {
		return fmt.Errorf("operation %s: no step kind %q is declared here", op.ID, op.Kind)
	}
	rec, cancelRec := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancelRec()
	// Each action moves a step on or stops; the bound only guards against
	// a step that would neither.
	for range 4*len(op.Steps) + 4 {
		a := app.NextStepAction(op.Steps, op.CancelRequested())
		now := app.StorageTime(w.now())
		if a.Kind == app.ActFinish {
			op.ApplyEnding(k, a.Ending, now)
			if err := w.record(rec, op, job); !errors.Is(err, errEndedElsewhere) {
				return err
			}
			return nil
		}
		dep := op.Steps[a.Step].Dependency
		err := w.calls.Do(ctx, op, a, w.timeout(dep))
		if errors.Is(err, app.ErrBreakerOpen) {
			// Nothing was tried, so nothing changed to write down.
			b, _ := w.breakers.Get(dep)
			return river.JobSnooze(max(time.Second, b.RetryAt(w.now()).Sub(w.now())))
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
			op.RecordFault(pe, now)
			if job.Attempt >= job.MaxAttempts && a.Kind == app.ActCall && pe.Retryable() && !op.Steps[a.Step].OutcomeUnknown {
				// The last attempt, and every call of the step got a
				// definite answer, so nothing happened under its key: the
				// step has failed for good, and what came before it is
				// undone in this same run.
				op.Steps[a.Step].Status = app.StepFailed
				giveUp = true
			}
		} else if err == nil {
			op.Error = nil
		}
		if rerr := w.record(rec, op, nil); errors.Is(rerr, errEndedElsewhere) {
			return nil
		} else if rerr != nil {
			return rerr
		}
		switch {
		case err == nil || giveUp:
		case job.Attempt >= job.MaxAttempts:
			// A lookup or a compensation is never given up: an unknown
			// outcome must be learnt, and a reservation given back, however
			// long the dependency is down. A snooze spends no attempt.
			return river.JobSnooze(Backoff(job.Attempt, w.retryBase, w.retryMax, rand.Float64()))
		default:
			return err
		}
	}
	return fmt.Errorf("operation %s made no progress", op.ID)
}

// errEndedElsewhere says the operation was ended elsewhere (an operator)
// while this run worked it: what this run learnt is not written over it.
var errEndedElsewhere = errors.New("the operation was ended elsewhere")

// record writes the operation's progress, and when job is set (the
// operation is over) completes the job with the notifications in the same
// transaction.
func (w *StepWorker[T]) record(ctx context.Context, op *app.Operation, job *river.Job[T]) error {
	tx, err := w.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	updated, err := db.UpdateOpenOperation(ctx, tx, op)
	if err != nil {
		return err
	}
	if !updated {
		return errEndedElsewhere
	}
	if job != nil {
		if err := enqueueNotificationsTx(ctx, tx, op, w.channels); err != nil {
			return err
		}
		if _, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job); err != nil {
			return fmt.Errorf("complete job: %w", err)
		}
	}
	return tx.Commit(ctx)
}

// timeout bounds one call to dependency.
func (w *StepWorker[T]) timeout(dependency string) time.Duration {
	if d := w.timeouts[dependency]; d > 0 {
		return d
	}
	return 30 * time.Second
}

// NextRetry backs off from the step where the operation stopped.
func (w *StepWorker[T]) NextRetry(job *river.Job[T]) time.Time {
	return w.now().Add(Backoff(job.Attempt, w.retryBase, w.retryMax, rand.Float64()))
}

// Timeout leaves River's own limit above what one run may spend: a call
// per step, and as many lookups and compensations, each within its
// timeout.
func (w *StepWorker[T]) Timeout(*river.Job[T]) time.Duration {
	longest := 30 * time.Second
	for _, d := range w.timeouts {
		longest = max(longest, d)
	}
	return 2*(app.MaxOrderLines+1)*longest + 10*time.Second
}
