package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
)

// ReconcileArgs is the periodic job that settles operations River gave up on.
type ReconcileArgs struct{}

func (ReconcileArgs) Kind() string { return "reconcile_operations" }

func (ReconcileArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: 30 * time.Second}}
}

// ReconcileWorker is the safety net for the paths a worker cannot close
// itself: a job that River discarded or cancelled while its operation is
// still open — its last attempt's outcome unknown, a job rescued after a
// crash with no attempts left, a job a worker stopped because the
// provider refused it after an earlier attempt may have charged. Such an
// operation must not stay open forever, and its client must still hear
// how it ended; but an outcome we do not know is never reported as a
// failure, so the provider is asked first. What the provider cannot
// settle stays open, and is flagged for an operator once it has been so
// for RECONCILE_AFTER.
type ReconcileWorker struct {
	river.WorkerDefaults[ReconcileArgs]
	pool     *pgxpool.Pool
	provider app.PaymentProvider
	timeout  time.Duration
	channels map[app.Channel]bool
	metrics  *app.Metrics
	after    time.Duration
	now      func() time.Time
	log      *slog.Logger
}

// NewReconcileWorker returns the worker for cfg.
func NewReconcileWorker(cfg Config) *ReconcileWorker {
	return &ReconcileWorker{pool: cfg.Pool, provider: cfg.Provider, timeout: cfg.CallTimeout, channels: cfg.Channels,
		metrics: cfg.Metrics, after: cfg.ReconcileAfter, now: cfg.Now, log: cfg.Logger}
}

func (w *ReconcileWorker) Work(ctx context.Context, _ *river.Job[ReconcileArgs]) error {
	stuck, err := db.OperationsWithEndedJobs(ctx, w.pool, 1000)
	if err != nil {
		return err
	}
	for _, s := range stuck {
		if err := w.reconcile(ctx, s.OperationID, s.JobID, s.JobState); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			// One operation the provider cannot settle now must not hold
			// up the others; it is tried again next time.
			w.log.Warn("reconcile operation", "operation_id", s.OperationID, "error", err)
		}
	}
	if w.metrics != nil {
		n, err := db.CountUnresolved(ctx, w.pool, w.now().Add(-w.after))
		if err != nil {
			return err
		}
		w.metrics.Unresolved.Set(float64(n))
	}
	return nil
}

// reconcile settles one open operation whose job ended without closing it.
func (w *ReconcileWorker) reconcile(ctx context.Context, id uuid.UUID, jobID int64, jobState string) error {
	op, err := db.GetOperation(ctx, w.pool, id)
	if err != nil {
		return err
	}
	if op.Composite() {
		return w.resume(ctx, jobID)
	}
	now := app.StorageTime(w.now())
	if op.Attempts > 0 || op.MayHaveCharged() {
		// Some call may have reached the provider: only its answer decides.
		lctx, cancel := context.WithTimeout(ctx, w.timeout)
		l, err := w.provider.Lookup(lctx, op.ProviderKey())
		cancel()
		if err != nil {
			return fmt.Errorf("look up %s: %w", op.ProviderKey(), err)
		}
		now = app.StorageTime(w.now())
		switch {
		case op.ApplyLookup(l, now):
		case l.NothingCharged(deref(op.AttemptedAt, op.CreatedAt), now):
			if l.KeyClosed {
				op.CloseKey(now)
			}
			op.OutcomeUnknownSince = nil
		default:
			return nil // processing, or not settled yet: ask again next time
		}
	}
	if !op.Status.Terminal() {
		if jobState == string(rivertype.JobStateCancelled) {
			op.Cancel("the job was cancelled", now)
		} else {
			op.Fail("attempts_exhausted", "the job ended without completing the operation", now)
		}
	}
	wrote := false
	err = w.whileEnded(ctx, jobID, func(tx pgx.Tx) error {
		wrote = true
		return updateOperationTx(ctx, tx, op, w.channels)
	})
	if err == nil && wrote {
		w.metrics.OperationEnded(op) // committed: the job was still ended
	}
	return err
}

// whileEnded runs do in a transaction that commits only if job jobID is
// still ended: an operator may have retried it meanwhile, and then its
// worker, not the reconciler, carries the operation on.
func (w *ReconcileWorker) whileEnded(ctx context.Context, jobID int64, do func(pgx.Tx) error) error {
	tx, err := w.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	if ended, err := db.JobEndedTx(ctx, tx, jobID); err != nil || !ended {
		return err
	}
	if err := do(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// resume makes the ended job of an open operation of a step kind available
// again: its worker asks each step's dependency about an outcome we do not
// know and carries the operation on from where its steps stand, so a
// compensation is never skipped because a job ran out of attempts. (The
// step worker snoozes rather than give up, so this is for a job that ended
// some other way.) A payment is settled by the lookup above, as it was
// before payments had steps: its one step is its charge, under the
// operation's provider key.
func (w *ReconcileWorker) resume(ctx context.Context, jobID int64) error {
	client, err := river.ClientFromContextSafely[pgx.Tx](ctx)
	if err != nil {
		return err
	}
	return w.whileEnded(ctx, jobID, func(tx pgx.Tx) error {
		if _, err := client.JobRetryTx(ctx, tx, jobID); err != nil {
			return fmt.Errorf("resume job %d: %w", jobID, err)
		}
		return nil
	})
}
