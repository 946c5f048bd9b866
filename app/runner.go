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
	"go.opentelemetry.io/otel/trace"
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
	Store OperationStore
	Jobs  JobInserter
	// Deadline bounds one synchronous call to a dependency
	// DependencyDeadlines does not name.
	Deadline time.Duration
	// CaptureTimeout bounds the database work around the call, so a
	// request's worst case is Deadline + CaptureTimeout.
	CaptureTimeout time.Duration
	// SyncLimit caps concurrent synchronous provider calls; a request over
	// it is captured with reason overloaded instead of waiting. It must stay
	// below the pool size, because each sync call holds a connection.
	SyncLimit int
	// Kinds are the operation kinds this runner takes (Submit): payments,
	// orders, and any other declared. StepDeadline bounds the synchronous
	// steps of an operation of several together (ORDER_DEADLINE; zero:
	// DefaultOrderDeadline), and DependencyDeadlines each dependency's
	// synchronous call (a missing one: Deadline), which is also the budget
	// of an operation of one step.
	Kinds               *Kinds
	StepDeadline        time.Duration
	DependencyDeadlines map[string]time.Duration
	// Backlog refuses captures past the dependency's backlog bound; nil
	// means no bound.
	Backlog *BacklogBounds
	// HighValueReserve is how many of the SyncLimit slots only high-value
	// operations (HighValueAmount and above) may take, so those are the
	// last to be sent async under overload.
	HighValueReserve int
	// Breakers guards the dependencies; nil means no breakers.
	Breakers        *Breakers
	Metrics         *Metrics
	HighValueAmount int64
	MaxAttempts     int
	// Channels are the notification channels this deployment can send
	// on; a terminal operation gets a delivery job for each it asked for.
	Channels map[Channel]bool
	// CheckCallback vets a callback URL before anything is recorded (the
	// webhook sender's address rules); nil accepts any.
	CheckCallback func(ctx context.Context, url string) error
	// KeyTTL is how long a key's first answer is replayed (IDEMPOTENCY_TTL;
	// zero: forever). Past it a request with the key is answered with its
	// operation as it stands, never done again.
	KeyTTL time.Duration
	// Offpeak is the window deferred work runs in; DefaultDefer is
	// DeferOffpeak when requests of deferrable kinds (payments) are
	// deferred unless they say "none".
	Offpeak      OffpeakWindow
	DefaultDefer string
	// Now is the wall clock that stamps operations (nil: time.Now). The
	// deadline and the call's latency are measured on the monotonic
	// clock, never on it.
	Now    func() time.Time
	Logger *slog.Logger
	// Tracer records each request as spans; nil (tracing off) records
	// nothing and costs nothing.
	Tracer trace.Tracer
}

// Runner tries an operation synchronously within its deadline and, when that
// cannot succeed, captures it as a River job in the same transaction.
type Runner struct {
	cfg  RunnerConfig
	sync *Admission
}

// NewRunner validates cfg and returns a runner.
func NewRunner(cfg RunnerConfig) (*Runner, error) {
	switch {
	case cfg.Store == nil || cfg.Jobs == nil:
		return nil, errors.New("runner: Store and Jobs are required")
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
	return &Runner{cfg: cfg, sync: NewAdmission(cfg.SyncLimit, cfg.HighValueReserve)}, nil
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
		return doc, nil, a.unconfirmed(err)
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
	if rec := claim.Record; rec != nil && r.cfg.KeyTTL > 0 && rec.CreatedAt.Before(r.cfg.Now().Add(-r.cfg.KeyTTL)) {
		claim.Record, claim.OperationExists = nil, true
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
		// The key's answer expired (or the operation has none): report
		// the operation as it stands rather than doing it again.
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
	// kind names the request's kind in what a 503 says.
	kind string
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
	case a.charged && a.kind != KindPayment:
		e.Message = "the " + a.kind + " may have taken effect in part but could not be recorded; " +
			"retry with the same Idempotency-Key to learn its outcome (no step will be done twice)"
	case a.charged:
		e.Message = "the payment may have been made but could not be recorded; " +
			"retry with the same Idempotency-Key to learn its outcome (it will not be charged twice)"
	}
	return e
}

// unconfirmed is a commit that failed without saying whether it was
// applied: the connection can die, or the budget run out, after COMMIT
// reached Postgres and before its answer came back (a half-open socket).
// The operation may then be recorded and its job run, so even a request
// that called nothing must not be told nothing was done: a client that
// believed it could retry under a fresh key and be charged twice. The same
// key tells it which it was.
func (a *attempt) unconfirmed(err error) error {
	e := unavailable("commit", err)
	e.Message = "the " + a.kind + " may have been recorded (its commit was not confirmed) and may take effect; " +
		"retry with the same Idempotency-Key to learn its outcome (nothing will be done twice)"
	return e
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
