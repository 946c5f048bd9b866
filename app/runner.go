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
	// Kinds are the step kinds this runner takes (Submit); StepDeadline
	// bounds an operation's synchronous steps together (ORDER_DEADLINE;
	// zero: DefaultOrderDeadline), and DependencyDeadlines each
	// dependency's synchronous call (a missing one: Deadline).
	Kinds               *Kinds
	StepDeadline        time.Duration
	DependencyDeadlines map[string]time.Duration
	// Backlog refuses captures past the dependency's backlog bound; nil
	// means no bound.
	Backlog *BacklogBounds
	// HighValueReserve is how many of the SyncLimit slots only high-value
	// payments (HighValueAmount and above) may take, so those are the last
	// to be sent async under overload.
	HighValueReserve int
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
	// Now is the wall clock that stamps operations (nil: time.Now). The
	// deadline and the call's latency are measured on the monotonic
	// clock, never on it.
	Now    func() time.Time
	Logger *slog.Logger
}

// Runner tries an operation synchronously within its deadline and, when that
// cannot succeed, captures it as a River job in the same transaction.
type Runner struct {
	cfg    RunnerConfig
	sync   *Admission
	charge ChargeCaller
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
	if cfg.StepDeadline <= 0 {
		cfg.StepDeadline = DefaultOrderDeadline
	}
	cfg.Now = orNow(cfg.Now)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Runner{cfg: cfg, sync: NewAdmission(cfg.SyncLimit, cfg.HighValueReserve),
		charge: ChargeCaller{Provider: cfg.Provider, Dependency: cfg.Dependency, Path: "sync", Metrics: cfg.Metrics}}, nil
}

// Admission is the bulkhead in front of the runner's sync calls, for the
// pages that show it.
func (r *Runner) Admission() *Admission { return r.sync }

// stamp is the time to write on the operation now.
func (r *Runner) stamp() time.Time { return StorageTime(r.cfg.Now()) }

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
//
// The budget: the provider call gets Deadline from the moment it starts;
// everything else the request waits for (the callback check, BEGIN, the
// claim, a probe permit, the job, the final writes and the commit) shares
// CaptureTimeout. So no request waits longer than Deadline +
// CaptureTimeout, and time spent waiting for the database is charged
// neither to the provider's deadline nor to its breaker.
func (r *Runner) SubmitPayment(ctx context.Context, key string, req PaymentRequest) (*Outcome, error) {
	arrival := time.Now() // monotonic: budgets are elapsed time
	ctx, pre, tx, end, err := r.begin(ctx, r.cfg.Deadline, req.CallbackURL)
	if err != nil {
		return nil, err
	}
	defer end()

	fp := req.Fingerprint()
	id := OperationID(scopePayments, key)
	claim, answered, err := r.claim(pre, tx, scopePayments, key, id, fp)
	if answered != nil || err != nil {
		return answered, err
	}

	now := r.stamp()
	op := &Operation{
		ID:        id,
		Kind:      KindPayment,
		Status:    StatusProcessing,
		Mode:      ModeSync,
		Priority:  PaymentPriority(req.Amount, r.cfg.HighValueAmount),
		Payment:   req,
		KeyGen:    claim.RefundedOrphans,
		CreatedAt: now,
		UpdatedAt: now,
	}
	a := attempt{pre: pre, arrival: arrival}
	retryAfter, err := r.attemptOrCapture(ctx, op, &a)
	if err != nil {
		return nil, err
	}
	if a.reason != "" && !a.charged {
		// Nothing has happened downstream, so the request can still be
		// refused rather than queued behind more than we said we would
		// finish. A call that may have taken effect is captured whatever
		// the backlog: its outcome must be tracked.
		if err := r.cfg.Backlog.Admit(r.cfg.Dependency); err != nil {
			return nil, err
		}
	}
	post, cancelPost := context.WithTimeout(ctx, a.postBudget(r.cfg.CaptureTimeout))
	defer cancelPost()
	if err := a.captureTx(post, r, tx, op); err != nil {
		return nil, err
	}
	doc, body, err := r.recordTx(post, tx, &a, op, &IdempotencyRecord{Scope: scopePayments, Key: key, Fingerprint: fp,
		OperationID: op.ID, CreatedAt: now})
	if err != nil {
		return nil, err
	}
	r.cfg.Metrics.Answered(doc)
	r.cfg.Logger.Debug("payment", "operation_id", op.ID, "status", op.Status, "mode", op.Mode,
		"reason", op.Reason, "elapsed", time.Since(arrival))
	return &Outcome{Document: doc, Body: body, RetryAfter: retryAfter}, nil
}

// recordTx finishes a request's transaction: the notifications of an
// operation that ended, the operation itself, written once in its final
// form for this request together with the key's answer (rec, whose
// Response it fills), and the commit. Nothing is acknowledged unless the
// commit succeeded. If it fails, whatever was called may have taken effect
// while the client was told nothing; a retry with the same key derives the
// same keys for every call, so each dependency replays its first answer
// instead of acting again.
func (r *Runner) recordTx(ctx context.Context, tx pgx.Tx, a *attempt, op *Operation, rec *IdempotencyRecord) (OperationDocument, []byte, error) {
	doc := op.Document()
	if jobs := NotificationJobs(op, r.cfg.Channels); len(jobs) > 0 {
		if _, err := r.cfg.Jobs.InsertManyTx(ctx, tx, jobs); err != nil {
			return doc, nil, a.unavailable("enqueue notifications", err)
		}
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return doc, nil, fmt.Errorf("encode operation: %w", err)
	}
	rec.Response = body
	if err := r.cfg.Store.RecordTx(ctx, tx, op, rec); err != nil {
		return doc, nil, a.unavailable("record operation", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return doc, nil, a.unavailable("commit", err)
	}
	return doc, body, nil
}

// begin opens a request: its whole budget (work, the time its calls may
// take, plus CaptureTimeout) on a context no client hang-up cancels, since
// once a call may have taken effect its result must be recorded; the
// capture budget for the steps before the first call (pre); the callback
// check; and the transaction. end rolls back what was not committed, within
// the whole budget (a rollback that cannot reach the database closes the
// connection, which aborts the transaction), and releases the contexts.
func (r *Runner) begin(parent context.Context, work time.Duration, callbackURL string) (
	ctx, pre context.Context, tx pgx.Tx, end func(), err error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), work+r.cfg.CaptureTimeout)
	pre, cancelPre := context.WithTimeout(ctx, r.cfg.CaptureTimeout)
	release := func() { cancelPre(); cancel() }
	if err := r.checkCallback(pre, callbackURL); err != nil {
		release()
		return nil, nil, nil, nil, err
	}
	if tx, err = r.cfg.Store.BeginTx(pre); err != nil {
		release()
		return nil, nil, nil, nil, unavailable("begin transaction", err)
	}
	end = func() {
		_ = tx.Rollback(ctx) // a no-op after commit
		release()
	}
	return ctx, pre, tx, end, nil
}

// checkCallback vets a callback URL before anything is recorded.
func (r *Runner) checkCallback(ctx context.Context, url string) error {
	if url == "" || r.cfg.CheckCallback == nil {
		return nil
	}
	if err := r.cfg.CheckCallback(ctx, url); err != nil {
		if ErrorCode(err) == EUNAVAILABLE {
			return err // a transient lookup failure: nothing was done, retry
		}
		return &Error{Code: EINVALID, Field: "callback_url", Message: "callback_url is not an address we will call: " + err.Error(), Err: err}
	}
	return nil
}

// claim takes the request's idempotency key in tx. It answers the
// request itself (answered, or an error) when the key is in flight, was
// used for another body, or already has an answer to replay; otherwise the
// caller goes on with the claim.
func (r *Runner) claim(ctx context.Context, tx pgx.Tx, scope, key string, id uuid.UUID, fp []byte) (KeyClaim, *Outcome, error) {
	claim, err := r.cfg.Store.ClaimKeyTx(ctx, tx, scope, key, id)
	if err != nil {
		return claim, nil, unavailable("claim idempotency key", err)
	}
	switch rec := claim.Record; {
	case !claim.Locked:
		return claim, nil, Errorf(ECONFLICT, "a request with this Idempotency-Key is still in flight; retry later")
	case rec != nil && !rec.Matches(fp):
		return claim, nil, Errorf(EKEYREUSED, "this Idempotency-Key was already used with a different request body")
	case rec != nil:
		out, err := replay(rec.Response)
		return claim, out, err
	case claim.OperationExists:
		// The key's record expired but its operation remains: report the
		// operation as it stands rather than doing it again.
		cur, err := r.cfg.Store.GetOperationTx(ctx, tx, id)
		if err != nil {
			return claim, nil, unavailable("read operation", err)
		}
		return claim, &Outcome{Document: cur.Document(), Replayed: true}, nil
	}
	return claim, nil, nil
}

// attempt is one request's progress through its budget: how much of the
// capture budget the work before the call used, whether the provider may
// have acted, and the capture decided on.
type attempt struct {
	pre     context.Context // bounded by CaptureTimeout from arrival
	arrival time.Time
	preUsed time.Duration // measured when the call starts (or is skipped)
	// charged: a call was made whose effect is possible (it succeeded, or
	// its outcome is unknown), so a 503 must not say nothing was done.
	charged bool
	// kind names a step kind's request in what a 503 says; "" is a
	// payment.
	kind string
	// capture, when reason is set, is the job to insert.
	reason Reason
	runAt  time.Time
}

// postBudget is what is left of the capture budget after the work before
// the call.
func (a *attempt) postBudget(capture time.Duration) time.Duration {
	if a.preUsed == 0 {
		a.preUsed = time.Since(a.arrival)
	}
	return max(capture-a.preUsed, time.Millisecond)
}

// unavailable is a failure to record durably, worded by what may have
// happened: before any possible effect nothing was done; after one, the
// client must come back with the same key to learn the outcome.
func (a *attempt) unavailable(step string, err error) error {
	e := unavailable(step, err)
	switch {
	case a.charged && a.kind != "":
		e.Message = "the " + a.kind + " may have taken effect in part but could not be recorded; " +
			"retry with the same Idempotency-Key to learn its outcome (no step will be done twice)"
	case a.charged:
		e.Message = "the payment may have been made but could not be recorded; " +
			"retry with the same Idempotency-Key to learn its outcome (it will not be charged twice)"
	}
	return e
}

// captureTx inserts the River job in the request's transaction, so the job
// exists if and only if the 202 that promises it is committed. A zero
// runAt means as soon as a worker is free.
func (a *attempt) captureTx(ctx context.Context, r *Runner, tx pgx.Tx, op *Operation) error {
	if a.reason == "" {
		return nil
	}
	op.Capture(a.reason, r.stamp())
	opts := PaymentArgs{}.InsertOpts()
	opts.Priority = op.Priority
	opts.MaxAttempts = r.cfg.MaxAttempts
	opts.ScheduledAt = a.runAt
	res, err := r.cfg.Jobs.InsertTx(ctx, tx, PaymentArgs{OperationID: op.ID, Offpeak: a.reason == ReasonDeferred}, &opts)
	if err != nil {
		return a.unavailable("insert job", err)
	}
	op.JobID = res.Job.ID
	return nil
}

// attemptOrCapture makes the synchronous call when the breaker, a sync slot
// and the capture budget allow it, and otherwise decides the capture (the
// job is inserted after). It returns the polling hint for a captured
// operation.
func (r *Runner) attemptOrCapture(ctx context.Context, op *Operation, a *attempt) (time.Duration, error) {
	now := r.stamp()
	capture := func(reason Reason, runAt time.Time, hint time.Duration) (time.Duration, error) {
		a.reason, a.runAt = reason, runAt
		return hint, nil
	}
	if d := op.Payment.Defer; d == DeferOffpeak || (d == "" && r.cfg.DefaultDefer == DeferOffpeak) {
		at := r.cfg.Offpeak.NextStart(now)
		return capture(ReasonDeferred, at, max(at.Sub(now), time.Second))
	}
	permit, b := r.cfg.Breakers.Acquire(a.pre, r.cfg.Dependency)
	if permit == nil {
		// Known to be failing: skip the call and its wait entirely.
		return capture(ReasonBreakerOpen, time.Time{}, b.RetryAt(now).Sub(now))
	}
	a.preUsed = time.Since(a.arrival)
	if a.preUsed > r.cfg.CaptureTimeout/2 {
		// The database is slow: calling now could leave too little of the
		// budget to record the answer. Capture while there is time.
		permit.Release()
		return capture(ReasonOverloaded, time.Time{}, time.Second)
	}
	if !r.sync.TryAcquire(op.Payment.Amount >= r.cfg.HighValueAmount) {
		permit.Release()
		return capture(ReasonOverloaded, time.Time{}, time.Second)
	}
	r.cfg.Metrics.syncStarted()
	attemptedAt := r.stamp()
	op.AttemptedAt = &attemptedAt
	call := r.charge.Call(ctx, op, permit, r.cfg.Deadline)
	r.sync.Release()
	r.cfg.Metrics.syncEnded()
	now = r.stamp()
	op.Attempts++

	res, pe := call.Result, call.Err
	switch {
	case pe == nil:
		a.charged = true
		op.ApplyCharge(res, now)
		return 0, nil
	case pe.Kind == FaultConflict:
		// The key was first used for another request whose answer was
		// lost to us; that charge is found by the orphan sweep. This one
		// was not carried out.
		return 0, &Error{Code: EKEYREUSED, Err: pe,
			Message: "this Idempotency-Key was already used with a different request body"}
	}
	op.RecordFault(pe, now)
	if pe.OutcomeUnknown {
		a.charged = true
		op.OutcomeUnknownSince = &now
	}
	reason := ReasonProviderError
	if pe.Kind == FaultTimeout {
		reason = ReasonTimeout
	}
	r.cfg.Logger.Debug("sync call failed; capturing", "operation_id", op.ID, "error", pe)
	return capture(reason, time.Time{}, time.Second)
}

func replay(body json.RawMessage) (*Outcome, error) {
	var doc OperationDocument
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("decode stored response: %w", err)
	}
	return &Outcome{Document: doc, Body: body, Replayed: true}, nil
}

// unavailable marks a failure to capture durably before anything could
// have taken effect: nothing was acknowledged and nothing was done.
func unavailable(step string, err error) *Error {
	return &Error{Code: EUNAVAILABLE, Message: "the request could not be recorded; nothing was done, retry later", Err: fmt.Errorf("%s: %w", step, err)}
}
