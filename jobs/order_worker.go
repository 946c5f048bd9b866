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

// OrderWorker carries captured orders on from the step where they stand,
// as app.NextOrderAction decides: each reservation, then the charge, with
// lookups of outcomes we do not know and, when the order cannot succeed,
// the release of every reservation made. After every action the step's
// progress is written down, on a context no cancel can take away, so a
// crash or a retry resumes exactly there and no step takes effect twice
// (each carries its own key).
type OrderWorker struct {
	river.WorkerDefaults[app.OrderArgs]
	pool      *pgxpool.Pool
	calls     *app.OrderCalls
	breakers  *app.Breakers
	channels  map[app.Channel]bool
	timeouts  map[string]time.Duration
	retryBase time.Duration
	retryMax  time.Duration
	now       func() time.Time
	log       *slog.Logger
}

// NewOrderWorker returns the worker for cfg.
func NewOrderWorker(cfg Config) *OrderWorker {
	return &OrderWorker{pool: cfg.Pool, breakers: cfg.Breakers, channels: cfg.Channels, timeouts: cfg.AsyncTimeouts,
		retryBase: cfg.RetryBase, retryMax: cfg.RetryMax, now: cfg.Now, log: cfg.Logger,
		calls: &app.OrderCalls{Inventory: cfg.Inventory, Payments: cfg.Provider, Breakers: cfg.Breakers,
			Metrics: cfg.Metrics, Path: "async", Now: cfg.Now}}
}

// Work drives the order as far as it will go now. It returns nil when the
// order ended (recorded in the transaction that completes the job), a
// snooze when a step's dependency has its breaker open (nothing was
// tried, no attempt is spent), and the fault otherwise, so River retries
// with NextRetry's backoff from the step where it stopped.
func (w *OrderWorker) Work(ctx context.Context, job *river.Job[app.OrderArgs]) error {
	op, err := db.GetOperation(ctx, w.pool, job.Args.OperationID)
	if app.ErrorCode(err) == app.ENOTFOUND {
		// Inserted in the order's own transaction: only a manual deletion
		// gets here, and retrying will not help.
		return river.JobCancel(fmt.Errorf("order %s does not exist", job.Args.OperationID))
	}
	if err != nil {
		return err
	}
	if op.Status.Terminal() || op.Order == nil {
		return nil // ended elsewhere (an operator, an earlier run)
	}
	rec, cancelRec := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancelRec()
	// Each action moves a step on or stops; the bound only guards against
	// a step that would neither.
	for range 4*len(op.Order.Steps) + 4 {
		a := app.NextOrderAction(op.Order.Steps, false)
		now := app.StorageTime(w.now())
		if a.Kind == app.OrderFinish {
			op.ApplyOrderEnding(a.Ending, now)
			if err := w.record(rec, op, job); !errors.Is(err, errOrderEnded) {
				return err
			}
			return nil
		}
		dep := op.Order.Steps[a.Step].Dependency
		err := w.calls.Do(ctx, op, a, w.timeout(dep))
		if errors.Is(err, app.ErrBreakerOpen) {
			// Nothing was tried, so nothing changed to write down.
			b, _ := w.breakers.Get(dep)
			return river.JobSnooze(max(time.Second, b.RetryAt(w.now()).Sub(w.now())))
		}
		now = app.StorageTime(w.now())
		if a.Kind == app.OrderCall {
			op.Attempts++
		}
		op.Status, op.Mode, op.UpdatedAt = app.StatusProcessing, app.ModeAsync, now
		op.TrackUnknown(now)
		var pe *app.ProviderError
		if errors.As(err, &pe) {
			op.RecordFault(pe, now)
		} else if err == nil {
			op.Error = nil
		}
		if rerr := w.record(rec, op, nil); errors.Is(rerr, errOrderEnded) {
			return nil
		} else if rerr != nil {
			return rerr
		}
		if err != nil {
			return err
		}
	}
	return fmt.Errorf("order %s made no progress", op.ID)
}

// errOrderEnded says the order was ended elsewhere (an operator) while
// this run worked it: what this run learnt is not written over it.
var errOrderEnded = errors.New("the order was ended elsewhere")

// record writes the order's progress, and when job is set (the order is
// over) completes the job with the notifications in the same transaction.
func (w *OrderWorker) record(ctx context.Context, op *app.Operation, job *river.Job[app.OrderArgs]) error {
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
		return errOrderEnded
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
func (w *OrderWorker) timeout(dependency string) time.Duration {
	if d := w.timeouts[dependency]; d > 0 {
		return d
	}
	return 30 * time.Second
}

// NextRetry backs off from the step where the order stopped.
func (w *OrderWorker) NextRetry(job *river.Job[app.OrderArgs]) time.Time {
	return w.now().Add(Backoff(job.Attempt, w.retryBase, w.retryMax, rand.Float64()))
}

// Timeout leaves River's own limit above what one run may spend: a call
// per step, and as many lookups and releases, each within its timeout.
func (w *OrderWorker) Timeout(job *river.Job[app.OrderArgs]) time.Duration {
	longest := 30 * time.Second
	for _, d := range w.timeouts {
		longest = max(longest, d)
	}
	return 2*(app.MaxOrderLines+1)*longest + 10*time.Second
}
