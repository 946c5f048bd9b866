package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// OperationStore is the storage the runner needs. Every method but BeginTx
// runs inside the caller's transaction.
type OperationStore interface {
	BeginTx(ctx context.Context) (pgx.Tx, error)
	// ClaimKeyTx takes a transaction-scoped lock on an idempotency key
	// without waiting and, if it got it, reads the key's record and whether
	// the operation the request would create already exists (its record
	// expired).
	ClaimKeyTx(ctx context.Context, tx pgx.Tx, scope, key string, opID uuid.UUID) (KeyClaim, error)
	// RecordTx writes a new operation and its key's first answer; it fails
	// if the operation exists.
	RecordTx(ctx context.Context, tx pgx.Tx, op *Operation, rec *IdempotencyRecord) error
	GetOperationTx(ctx context.Context, tx pgx.Tx, id uuid.UUID) (*Operation, error)
}

// JobInserter inserts River jobs; *river.Client[pgx.Tx] is one.
type JobInserter interface {
	InsertTx(ctx context.Context, tx pgx.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
	InsertManyTx(ctx context.Context, tx pgx.Tx, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error)
}

// RunnerConfig holds the runner's dependencies and policy.
type RunnerConfig struct {
	Store    OperationStore
	Jobs     JobInserter
	Provider PaymentProvider
	// Deadline bounds the synchronous provider call, counted from the
	// moment the request reached the runner.
	Deadline time.Duration
	// CaptureTimeout bounds the database work around the call, so a
	// request's worst case is Deadline + CaptureTimeout.
	CaptureTimeout time.Duration
	// SyncLimit caps concurrent synchronous provider calls; a request over
	// it is captured with reason overloaded instead of waiting. It must stay
	// below the pool size, because each sync call holds a connection.
	SyncLimit int
	// Breakers guards the provider; nil means no breaker.
	Breakers *Breakers
	// Dependency names the provider's breaker.
	Dependency      string
	Metrics         *Metrics
	HighValueAmount int64
	MaxAttempts     int
	// Channels are the notification channels this deployment can send
	// on; a terminal operation gets a delivery job for each it asked for.
	Channels map[Channel]bool
	// CheckCallback vets a callback URL before anything is recorded (the
	// webhook sender's address rules); nil accepts any.
	CheckCallback func(ctx context.Context, url string) error
	// Offpeak is the window deferred work runs in; DefaultDefer is
	// DeferOffpeak when payments are deferred unless they say "none".
	Offpeak      OffpeakWindow
	DefaultDefer string
	Now          func() time.Time
	Logger       *slog.Logger
}

// Runner tries an operation synchronously within its deadline and, when that
// cannot succeed, captures it as a River job in the same transaction.
type Runner struct {
	cfg  RunnerConfig
	sync chan struct{}
}

// NewRunner validates cfg and returns a runner.
func NewRunner(cfg RunnerConfig) (*Runner, error) {
	switch {
	case cfg.Store == nil || cfg.Jobs == nil || cfg.Provider == nil:
		return nil, errors.New("runner: Store, Jobs and Provider are required")
	case cfg.Deadline <= 0:
		return nil, errors.New("runner: Deadline must be positive")
	case cfg.SyncLimit <= 0:
		return nil, errors.New("runner: SyncLimit must be positive")
	}
	if cfg.CaptureTimeout <= 0 {
		cfg.CaptureTimeout = time.Second
	}
	cfg.Now = StorageClock(cfg.Now)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Runner{cfg: cfg, sync: make(chan struct{}, cfg.SyncLimit)}, nil
}

// Outcome is the runner's answer to one submission.
type Outcome struct {
	Document OperationDocument
	// Body is the document exactly as first answered; a replay sends it
	// byte for byte.
	Body     json.RawMessage
	Replayed bool
	// RetryAfter is when a captured operation is worth polling again.
	RetryAfter time.Duration
}

// scopePayments namespaces idempotency keys of POST /api/v1/payments.
const scopePayments = "payments"

// SubmitPayment runs one payment request in one transaction: claim the key
// (or replay its answer), call the provider within the deadline or insert
// the River job, write the operation, its notifications and the key's
// answer, and commit. Nothing is acknowledged unless the commit succeeded.
func (r *Runner) SubmitPayment(ctx context.Context, key string, req PaymentRequest) (*Outcome, error) {
	start := r.cfg.Now()
	if req.CallbackURL != "" && r.cfg.CheckCallback != nil {
		cctx, cancel := context.WithTimeout(ctx, r.cfg.CaptureTimeout)
		err := r.cfg.CheckCallback(cctx, req.CallbackURL)
		cancel()
		if err != nil {
			return nil, &Error{Code: EINVALID, Field: "callback_url", Message: "callback_url is not an address we will call: " + err.Error(), Err: err}
		}
	}
	// Once the provider may have been called, the result must be recorded
	// even if the client hangs up; the bounds below still cap the work.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.Deadline+r.cfg.CaptureTimeout)
	defer cancel()

	beginCtx, cancelBegin := context.WithTimeout(ctx, r.cfg.CaptureTimeout)
	tx, err := r.cfg.Store.BeginTx(beginCtx)
	cancelBegin()
	if err != nil {
		return nil, unavailable("begin transaction", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit

	fp := req.Fingerprint()
	id := OperationID(scopePayments, key, fp)
	claim, err := r.cfg.Store.ClaimKeyTx(ctx, tx, scopePayments, key, id)
	if err != nil {
		return nil, unavailable("claim idempotency key", err)
	}
	switch rec := claim.Record; {
	case !claim.Locked:
		return nil, Errorf(ECONFLICT, "a request with this Idempotency-Key is still in flight; retry later")
	case rec != nil && !rec.Matches(fp):
		return nil, Errorf(EKEYREUSED, "this Idempotency-Key was already used with a different request body")
	case rec != nil:
		return replay(rec.Response)
	case claim.OperationExists:
		// The key's record expired but its operation remains: report the
		// operation as it stands rather than charging again.
		cur, err := r.cfg.Store.GetOperationTx(ctx, tx, id)
		if err != nil {
			return nil, unavailable("read operation", err)
		}
		return &Outcome{Document: cur.Document(), Replayed: true}, nil
	}

	now := r.cfg.Now()
	op := &Operation{
		ID:        id,
		Kind:      KindPayment,
		Status:    StatusProcessing,
		Mode:      ModeSync,
		Priority:  PaymentPriority(req.Amount, r.cfg.HighValueAmount),
		Payment:   req,
		CreatedAt: now,
		UpdatedAt: now,
	}
	retryAfter, err := r.attemptOrCapture(ctx, tx, op, start)
	if err != nil {
		return nil, err
	}
	if jobs := NotificationJobs(op, r.cfg.Channels); len(jobs) > 0 {
		if _, err := r.cfg.Jobs.InsertManyTx(ctx, tx, jobs); err != nil {
			return nil, unavailable("enqueue notifications", err)
		}
	}
	doc := op.Document()
	body, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode operation: %w", err)
	}
	// The operation is written once, in its final form for this request,
	// together with the key's answer.
	if err := r.cfg.Store.RecordTx(ctx, tx, op, &IdempotencyRecord{
		Scope: scopePayments, Key: key, Fingerprint: fp, OperationID: op.ID, Response: body, CreatedAt: now,
	}); err != nil {
		return nil, unavailable("record operation", err)
	}
	if err := tx.Commit(ctx); err != nil {
		// The provider may have charged; the client was told nothing and a
		// retry with the same key reuses the same operation id, so the
		// provider replays its first answer instead of charging again.
		return nil, unavailable("commit", err)
	}
	r.cfg.Metrics.Answered(doc)
	r.cfg.Logger.Debug("payment", "operation_id", op.ID, "status", op.Status, "mode", op.Mode,
		"reason", op.Reason, "elapsed", r.cfg.Now().Sub(start))
	return &Outcome{Document: doc, Body: body, RetryAfter: retryAfter}, nil
}

// attemptOrCapture makes the synchronous call when the breaker and a sync
// slot allow it, and captures the operation as a job when the call is not
// allowed or cannot produce an answer. It returns the polling hint for a
// captured operation.
func (r *Runner) attemptOrCapture(ctx context.Context, tx pgx.Tx, op *Operation, start time.Time) (time.Duration, error) {
	now := r.cfg.Now()
	if d := op.Payment.Defer; d == DeferOffpeak || (d == "" && r.cfg.DefaultDefer == DeferOffpeak) {
		at := r.cfg.Offpeak.NextStart(now)
		return max(at.Sub(now), time.Second), r.captureTx(ctx, tx, op, ReasonDeferred, at)
	}
	permit, b := r.cfg.Breakers.Acquire(ctx, r.cfg.Dependency)
	if permit == nil {
		// Known to be failing: skip the call and its wait entirely.
		return b.RetryAt(now).Sub(now), r.captureTx(ctx, tx, op, ReasonBreakerOpen, time.Time{})
	}
	select {
	case r.sync <- struct{}{}:
	default:
		permit.Release(ctx)
		return time.Second, r.captureTx(ctx, tx, op, ReasonOverloaded, time.Time{})
	}
	r.cfg.Metrics.syncStarted()
	callStart := r.cfg.Now()
	callCtx, cancel := context.WithDeadline(ctx, start.Add(r.cfg.Deadline))
	res, err := r.cfg.Provider.Charge(callCtx, Charge{
		IdempotencyKey: op.ID.String(),
		Amount:         op.Payment.Amount,
		Currency:       op.Payment.Currency,
		Reference:      op.ID.String(),
		Description:    op.Payment.Description,
	})
	pe := ClassifyProviderError(callCtx, err)
	cancel()
	<-r.sync
	r.cfg.Metrics.syncEnded()
	now = r.cfg.Now()
	r.cfg.Metrics.Called(r.cfg.Dependency, "sync", now.Sub(callStart).Seconds(), pe)
	permit.Done(ctx, pe.Fault())
	op.Attempts++

	if pe == nil {
		op.ApplyCharge(res, now)
		return 0, nil
	}
	op.RecordFault(pe, now)
	reason := ReasonProviderError
	if pe.Kind == FaultTimeout {
		reason = ReasonTimeout
	}
	r.cfg.Logger.Debug("sync call failed; capturing", "operation_id", op.ID, "error", pe)
	return time.Second, r.captureTx(ctx, tx, op, reason, time.Time{})
}

// captureTx inserts the River job in the request's transaction, so the job
// exists if and only if the 202 that promises it is committed.
// A zero runAt means as soon as a worker is free.
func (r *Runner) captureTx(ctx context.Context, tx pgx.Tx, op *Operation, reason Reason, runAt time.Time) error {
	op.Capture(reason, r.cfg.Now())
	opts := PaymentArgs{}.InsertOpts()
	opts.Priority = op.Priority
	opts.MaxAttempts = r.cfg.MaxAttempts
	opts.ScheduledAt = runAt
	res, err := r.cfg.Jobs.InsertTx(ctx, tx, PaymentArgs{OperationID: op.ID, Offpeak: reason == ReasonDeferred}, &opts)
	if err != nil {
		return unavailable("insert job", err)
	}
	op.JobID = res.Job.ID
	return nil
}

func replay(body json.RawMessage) (*Outcome, error) {
	var doc OperationDocument
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("decode stored response: %w", err)
	}
	return &Outcome{Document: doc, Body: body, Replayed: true}, nil
}

// unavailable marks a failure to capture durably: nothing was acknowledged.
func unavailable(step string, err error) error {
	return &Error{Code: EUNAVAILABLE, Message: "the request could not be recorded; nothing was done, retry later", Err: fmt.Errorf("%s: %w", step, err)}
}
