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
	"github.com/riverqueue/river/rivertype"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
)

// recordTimeout bounds the writes that record an attempt's outcome. They
// run on a context no cancel can take away (an operator's, a shutdown's):
// once the provider may have acted, what it did must be written down.
const recordTimeout = 15 * time.Second

// PaymentWorker completes captured payments.
type PaymentWorker struct {
	river.WorkerDefaults[app.PaymentArgs]
	pool         *pgxpool.Pool
	provider     app.PaymentProvider
	charge       app.ChargeCaller
	breakers     *app.Breakers
	drain        *app.DrainLimiter
	offpeak      app.OffpeakWindow
	channels     map[app.Channel]bool
	dependency   string
	callTimeout  time.Duration
	keyRetention time.Duration
	retryBase    time.Duration
	retryMax     time.Duration
	stopping     <-chan struct{}
	now          func() time.Time
	log          *slog.Logger
}

// NewPaymentWorker returns the worker for cfg.
func NewPaymentWorker(cfg Config) *PaymentWorker {
	return &PaymentWorker{
		pool: cfg.Pool, provider: cfg.Provider, breakers: cfg.Breakers, drain: cfg.Drain, offpeak: cfg.Offpeak,
		channels: cfg.Channels, dependency: cfg.Dependency,
		callTimeout: cfg.CallTimeout, keyRetention: cfg.KeyRetention, stopping: cfg.Stopping,
		retryBase: cfg.RetryBase, retryMax: cfg.RetryMax, now: cfg.Now, log: cfg.Logger,
		charge: app.ChargeCaller{Provider: cfg.Provider, Dependency: cfg.Dependency, Path: "async", Metrics: cfg.Metrics},
	}
}

// Work makes one attempt. Declines and successes are recorded in the same
// transaction as JobCompleteTx; faults return an error so River retries
// with NextRetry's backoff. An attempt whose outcome we do not know (a
// timeout, a connection lost after sending) leaves the operation
// processing with reason outcome_unknown, on the last attempt too: River
// then discards the job and the reconciler asks the provider what
// happened before anything is concluded.
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
	permit, b, err := w.admit(ctx)
	if err != nil {
		var snooze *rivertype.JobSnoozeError
		if errors.As(err, &snooze) && snooze.Duration > 0 {
			// Held back by an open breaker: keep the job's place for when
			// the gate releases the queue. Losing the note only delays the
			// job to the probe time.
			if herr := db.HoldJobPlace(ctx, w.pool, job.ID); herr != nil {
				w.log.Warn("hold job place", "job_id", job.ID, "error", herr)
			}
		}
		return err
	}
	op, prev, open, err := db.StartAttempt(ctx, w.pool, job.Args.OperationID)
	if app.ErrorCode(err) == app.ENOTFOUND {
		// The job is inserted in the operation's own transaction, so this
		// cannot happen short of manual deletion; retrying will not help.
		permit.Release()
		return river.JobCancel(fmt.Errorf("operation %s does not exist", job.Args.OperationID))
	}
	if err != nil {
		permit.Release()
		return err
	}
	if !open {
		permit.Release()
		return nil // finished elsewhere (an operator, an earlier run); nothing to charge
	}
	rec, cancelRec := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancelRec()

	if op.MayHaveCharged() && w.keyRetention > 0 && w.now().Sub(*op.OutcomeUnknownSince) >= w.keyRetention {
		// The provider may have forgotten the key, so a charge under it
		// could be a second one: ask first.
		done, err := w.lookupFirst(ctx, rec, job, op, prev)
		if done || err != nil {
			permit.Release()
			return err
		}
	}

	timeout := w.callTimeout
	if permit.Probe() {
		// A probe must end within its lease, or another instance could
		// take the permit while this call is still out.
		timeout = min(timeout, b.Policy.ProbeLease)
	}
	// The job's context ends the call early only on a hard stop or a
	// cancel of the job; Call releases the permit unjudged then.
	call := w.charge.Call(ctx, op, permit, timeout)
	res, pe := call.Result, call.Err

	now := w.stamp()
	if pe == nil {
		op.ApplyCharge(res, now)
		return w.finish(rec, job, op)
	}
	w.log.Warn("payment attempt failed", "operation_id", op.ID, "attempt", job.Attempt, "error", pe,
		"outcome_unknown", pe.OutcomeUnknown || op.MayHaveCharged())
	switch {
	case pe.Kind == app.FaultConflict || pe.Kind == app.FaultKeyClosed:
		// Nothing was carried out under this key for this operation: had
		// an earlier attempt of ours charged, the provider would have
		// replayed that answer. (A charge another request left under the
		// key is the orphan sweep's.) The next attempt uses a fresh key.
		op.CloseKey(now)
		op.Status = app.StatusQueued
		op.RecordFault(pe, now)
		if err := w.update(rec, op); err != nil {
			return err
		}
		return pe
	case !pe.Retryable() && op.MayHaveCharged():
		// The provider refuses the request now, but an earlier attempt may
		// have charged: stop trying and let the reconciler ask.
		op.RecordUnknown(pe, now)
		if err := w.update(rec, op); err != nil {
			return err
		}
		return river.JobCancel(pe)
	case !pe.Retryable():
		op.Fail(string(pe.Kind), "the provider rejected the request", now)
		return w.finish(rec, job, op)
	case pe.OutcomeUnknown || op.MayHaveCharged():
		op.RecordUnknown(pe, now)
	case job.Attempt >= job.MaxAttempts:
		// Every attempt got a definite answer, so nothing was charged.
		// Record the failure before River discards the job; if we die in
		// between, the job is rescued, finds the operation terminal and
		// completes without charging.
		op.Fail("attempts_exhausted", fmt.Sprintf("gave up after %d attempts: %s", job.Attempt, pe.Kind), now)
	default:
		op.Status = app.StatusQueued
		op.RecordFault(pe, now)
	}
	if err := w.update(rec, op); err != nil {
		return err
	}
	return pe
}

// stamp is the time to write on the operation now.
func (w *PaymentWorker) stamp() time.Time { return app.StorageTime(w.now()) }

// admit asks the breaker for a permit. While it is open the job is snoozed
// to the probe time, which spends no attempt (and Work keeps its place for
// when the queue is released); while it is half-open a job
// that got no probe permit waits here for the probes' verdict rather than
// being snoozed: the jobs workers fetch first are the highest-priority
// ones, and a snoozed job would come back behind everything fetched
// meanwhile.
func (w *PaymentWorker) admit(ctx context.Context) (*app.Permit, app.Breaker, error) {
	for {
		changed := w.breakers.Changed(w.dependency)
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		permit, b := w.breakers.Acquire(cctx, w.dependency)
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
			// Re-ask: a probe whose instance died frees its permit when
			// its lease ends.
		case <-w.stopping:
			return nil, b, river.JobSnooze(0)
		case <-ctx.Done():
			return nil, b, river.JobSnooze(0)
		}
	}
}

// lookupFirst asks the provider what happened under the operation's key
// before a new charge. It reports done when the lookup settled the
// operation (and the job is finished), nil error and not done when a
// charge may go ahead (under a fresh key if the old one is closed), and an
// error to try again later.
func (w *PaymentWorker) lookupFirst(ctx, rec context.Context, job *river.Job[app.PaymentArgs], op *app.Operation, prev *time.Time) (bool, error) {
	lctx, cancel := context.WithTimeout(ctx, w.callTimeout)
	l, err := w.provider.Lookup(lctx, op.ProviderKey())
	cancel()
	if err != nil {
		return false, fmt.Errorf("look up %s before charging again: %w", op.ProviderKey(), err)
	}
	now := w.stamp()
	switch {
	case op.ApplyLookup(l, now):
		return true, w.finish(rec, job, op)
	case l.NothingCharged(deref(prev, op.CreatedAt), now):
		op.CloseKey(now)
		return false, w.update(rec, op)
	}
	return false, fmt.Errorf("the provider has not settled %s yet (%s)", op.ProviderKey(), l.Status)
}

// finish records a terminal outcome, enqueues its notifications and
// completes the job, all in one transaction.
func (w *PaymentWorker) finish(ctx context.Context, job *river.Job[app.PaymentArgs], op *app.Operation) error {
	return w.record(ctx, op, func(tx pgx.Tx) error {
		if _, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job); err != nil {
			return fmt.Errorf("complete job: %w", err)
		}
		return nil
	})
}

// update records an outcome that leaves the job to River (a retry, a
// snooze, an unknown outcome).
func (w *PaymentWorker) update(ctx context.Context, op *app.Operation) error {
	return w.record(ctx, op, func(pgx.Tx) error { return nil })
}

// record writes op and its notifications, then runs also, in one
// transaction.
func (w *PaymentWorker) record(ctx context.Context, op *app.Operation, also func(pgx.Tx) error) error {
	tx, err := w.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	if err := updateOperationTx(ctx, tx, op, w.channels); err != nil {
		return err
	}
	if err := also(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// updateOperationTx writes an open operation's new state and, when that
// state is terminal, enqueues its notifications in the same transaction.
// An operation someone else already closed is left alone.
func updateOperationTx(ctx context.Context, tx pgx.Tx, op *app.Operation, channels map[app.Channel]bool) error {
	updated, err := db.UpdateOpenOperation(ctx, tx, op)
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

// Timeout leaves River's own limit above the provider call's (and a
// lookup's before it).
func (w *PaymentWorker) Timeout(*river.Job[app.PaymentArgs]) time.Duration {
	return 2*w.callTimeout + 10*time.Second
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

func deref(t *time.Time, def time.Time) time.Time {
	if t == nil {
		return def
	}
	return *t
}
