package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
)

// PaymentWorker completes captured payments.
type PaymentWorker struct {
	river.WorkerDefaults[app.PaymentArgs]
	pool        *pgxpool.Pool
	provider    app.PaymentProvider
	breakers    *app.Breakers
	drain       *app.DrainLimiter
	offpeak     app.OffpeakWindow
	channels    map[app.Channel]bool
	dependency  string
	metrics     *app.Metrics
	callTimeout time.Duration
	retryBase   time.Duration
	retryMax    time.Duration
	now         func() time.Time
	log         *slog.Logger
}

// NewPaymentWorker returns the worker for cfg.
func NewPaymentWorker(cfg Config) *PaymentWorker {
	return &PaymentWorker{
		pool: cfg.Pool, provider: cfg.Provider, breakers: cfg.Breakers, drain: cfg.Drain, offpeak: cfg.Offpeak,
		channels: cfg.Channels, dependency: cfg.Dependency, metrics: cfg.Metrics,
		callTimeout: cfg.CallTimeout,
		retryBase:   cfg.RetryBase, retryMax: cfg.RetryMax, now: cfg.Now, log: cfg.Logger,
	}
}

// Work makes one attempt. Declines and successes are recorded in the same
// transaction as JobCompleteTx; faults return an error so River retries
// with NextRetry's backoff, and the last allowed attempt fails the operation.
func (w *PaymentWorker) Work(ctx context.Context, job *river.Job[app.PaymentArgs]) error {
	if now := w.now(); job.Args.Offpeak && !w.offpeak.Contains(now) && !runNow(job.Metadata) {
		// The window closed with work left: it continues in the next one.
		return river.JobSnooze(w.offpeak.NextStart(now).Sub(now))
	}
	// Pace the backlog before anything else, so a job waiting for its
	// turn holds no breaker permit and has spent no attempt.
	ok, wait, err := w.drain.Wait(ctx, 2*time.Second)
	if err != nil && ctx.Err() == nil {
		w.log.Warn("drain limiter", "error", err) // fail open: the breaker still guards the provider
	} else if !ok {
		return river.JobSnooze(wait)
	}
	permit, b := w.breakers.Acquire(ctx, w.dependency)
	if permit == nil {
		// The provider is known to be failing: come back after the next
		// probe time without spending an attempt. (The QueueGate pauses the
		// queue while the breaker is open, so this is the rarer path of a
		// job fetched just before the pause or while half-open.) The jitter
		// spreads a backlog's return over an open wait, not one instant.
		now := w.now()
		spread := time.Duration(rand.Float64() * float64(max(b.Policy.OpenWait, time.Second)))
		return river.JobSnooze(b.RetryAt(now).Sub(now) + spread)
	}
	op, open, err := db.StartAttempt(ctx, w.pool, job.Args.OperationID)
	if errors.Is(err, db.ErrNotFound) {
		// The job is inserted in the operation's own transaction, so this
		// cannot happen short of manual deletion; retrying will not help.
		permit.Release(ctx)
		return river.JobCancel(fmt.Errorf("operation %s does not exist", job.Args.OperationID))
	}
	if err != nil {
		permit.Release(ctx)
		return err
	}
	if !open {
		permit.Release(ctx)
		return nil // finished elsewhere (an operator, an earlier run); nothing to charge
	}

	timeout := w.callTimeout
	if permit.Probe() {
		// A probe must end within its lease, or another instance could
		// take the permit while this call is still out.
		timeout = min(timeout, b.Policy.ProbeLease)
	}
	callStart := w.now()
	callCtx, cancel := context.WithTimeout(ctx, timeout)
	res, err := w.provider.Charge(callCtx, app.Charge{
		IdempotencyKey: op.ID.String(),
		Amount:         op.Payment.Amount,
		Currency:       op.Payment.Currency,
		Reference:      op.ID.String(),
		Description:    op.Payment.Description,
	})
	pe := app.ClassifyProviderError(callCtx, err)
	cancel()
	permit.Done(ctx, pe.Fault())

	now := w.now()
	w.metrics.Called(w.dependency, "async", now.Sub(callStart).Seconds(), pe)
	if pe == nil {
		op.ApplyCharge(res, now)
		return w.finish(ctx, job, op)
	}

	w.log.Warn("payment attempt failed", "operation_id", op.ID, "attempt", job.Attempt, "error", pe)
	if !pe.Retryable() {
		op.Fail(string(pe.Kind), "the provider rejected the request", now)
		return w.finish(ctx, job, op)
	}
	if job.Attempt >= job.MaxAttempts {
		// Record the failure before River discards the job; if we die in
		// between, the job is rescued, finds the operation terminal and
		// completes without charging.
		op.Fail("attempts_exhausted", fmt.Sprintf("gave up after %d attempts: %s", job.Attempt, pe.Kind), now)
		if err := w.update(ctx, op); err != nil {
			return err
		}
		return pe
	}
	op.Status = app.StatusQueued
	op.RecordFault(pe, now)
	if err := w.update(ctx, op); err != nil {
		return err
	}
	return pe
}

// finish records a terminal outcome, enqueues its notifications and
// completes the job, all in one transaction.
func (w *PaymentWorker) finish(ctx context.Context, job *river.Job[app.PaymentArgs], op *app.Operation) error {
	tx, err := w.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	if err := updateOperationTx(ctx, tx, op, w.channels); err != nil {
		return err
	}
	if _, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job); err != nil {
		return fmt.Errorf("complete job: %w", err)
	}
	return tx.Commit(ctx)
}

func (w *PaymentWorker) update(ctx context.Context, op *app.Operation) error {
	tx, err := w.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	if err := updateOperationTx(ctx, tx, op, w.channels); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// updateOperationTx writes an open operation's new state and, when that
// state is terminal, enqueues its notifications in the same transaction.
// An operation someone else already closed is left alone.
func updateOperationTx(ctx context.Context, tx pgx.Tx, op *app.Operation, channels map[app.Channel]bool) error {
	updated, err := db.UpdateOpenOperationTx(ctx, tx, op)
	if err != nil || !updated {
		return err
	}
	return enqueueNotificationsTx(ctx, tx, op, channels)
}

// enqueueNotificationsTx inserts the delivery jobs of a terminal operation
// in the transaction that made it terminal.
func enqueueNotificationsTx(ctx context.Context, tx pgx.Tx, op *app.Operation, channels map[app.Channel]bool) error {
	jobs := app.NotificationJobs(op, channels)
	if len(jobs) == 0 {
		return nil
	}
	client, err := river.ClientFromContextSafely[pgx.Tx](ctx)
	if err != nil {
		return fmt.Errorf("enqueue notifications: %w", err)
	}
	if _, err := client.InsertManyTx(ctx, tx, jobs); err != nil {
		return fmt.Errorf("enqueue notifications: %w", err)
	}
	return nil
}

// runNow reports whether an operator asked for the job to run at once,
// outside its window.
func runNow(metadata []byte) bool {
	var m struct {
		RunNow bool `json:"run_now"`
	}
	_ = json.Unmarshal(metadata, &m)
	return m.RunNow
}

// NextRetry is exponential backoff with jitter over the second half of the
// interval: retries from many workers spread out instead of hitting a
// recovering provider together, yet never come sooner than half the step.
func (w *PaymentWorker) NextRetry(job *river.Job[app.PaymentArgs]) time.Time {
	return w.now().Add(Backoff(job.Attempt, w.retryBase, w.retryMax, rand.Float64()))
}

// Timeout leaves River's own limit above the provider call's.
func (w *PaymentWorker) Timeout(*river.Job[app.PaymentArgs]) time.Duration {
	return w.callTimeout + 10*time.Second
}

// Backoff returns the wait after the given attempt (1-based): base·2^(n-1)
// capped at max, scaled into [½, 1) of that by r in [0, 1).
func Backoff(attempt int, base, max time.Duration, r float64) time.Duration {
	d := base
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	if d > max || d <= 0 {
		d = max
	}
	return d/2 + time.Duration(r*float64(d/2))
}
