package app

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// Actor is who does an operator action, for the audit log.
type Actor struct {
	UserID    int64 // 0: no user (the command line, the environment)
	Email     string
	IP        string
	RequestID string
}

// AuditEntry is one operator action in the audit log: who, when, what,
// and the values before and after.
type AuditEntry struct {
	ID         int64
	At         time.Time
	ActorID    int64
	ActorEmail string
	Action     string
	Target     string
	Before     json.RawMessage
	After      json.RawMessage
	Detail     string
	IP         string
	RequestID  string
}

// OperatorStore is the storage operator actions need. Methods ending in
// Tx run in the caller's transaction; the others on their own.
type OperatorStore interface {
	BeginTx(ctx context.Context) (pgx.Tx, error)
	InsertAuditTx(ctx context.Context, tx pgx.Tx, e AuditEntry) error
	JobStore
	QueueStore
	UserStore
}

// JobController is the part of River operator actions use;
// *river.Client[pgx.Tx] is one.
type JobController interface {
	JobCancelTx(ctx context.Context, tx pgx.Tx, id int64) (*rivertype.JobRow, error)
	JobRetryTx(ctx context.Context, tx pgx.Tx, id int64) (*rivertype.JobRow, error)
	InsertManyTx(ctx context.Context, tx pgx.Tx, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error)
	// QueuePauseTx and QueueResumeTx tell every client on commit.
	QueuePauseTx(ctx context.Context, tx pgx.Tx, name string, opts *river.QueuePauseOpts) error
	QueueResumeTx(ctx context.Context, tx pgx.Tx, name string, opts *river.QueuePauseOpts) error
}

// OperatorConfig wires the operator service. Only Store is required: a
// service without Jobs refuses job and queue actions, one without
// Breakers refuses breaker actions (the command line only manages users).
type OperatorConfig struct {
	Store OperatorStore
	Jobs  JobController
	// Breakers is this instance's breakers; forcing one goes through them
	// so every instance hears of it at once.
	Breakers *Breakers
	// Features is the feature switch operators turn features off with;
	// nil refuses those actions.
	Features *FeatureSwitch
	// Provider answers lookups before an action could lose a charge.
	Provider PaymentProvider
	Channels map[Channel]bool
	// GatedQueues maps a queue to the dependency whose breaker pauses and
	// resumes it (jobs.QueueGate). Such a queue is not paused by hand: the
	// gate would undo it within a second; forcing the breaker is how.
	GatedQueues map[string]string
	// Drills starts failover drills by hand; nil refuses them.
	Drills *Drills
	// LookupTimeout bounds one provider lookup; zero means 5 s.
	LookupTimeout time.Duration
	// FilterBatch is how many jobs one transaction of an action on a
	// filter changes; zero means 500: small enough to hold row locks
	// briefly, large enough to be quick.
	FilterBatch int
	// Limits bound sign-in attempts and session life; zero means
	// DefaultSignInLimits.
	Limits SignInLimits
	// SessionIdle ends a session not used for this long; zero means
	// DefaultSessionIdle.
	SessionIdle time.Duration
	Logger      *slog.Logger
	Now         func() time.Time
}

// Operator carries out what operators do: actions on jobs and operations,
// pausing queues, forcing breakers and setting their thresholds, managing
// users and their sessions; each writes its audit entry, in the change's
// own transaction where the change is ours.
//
// Job actions are built on the Operation methods, so a state change exists
// in one place, and never end an operation that may have been charged
// without the provider's word: a running job is not cancelled (its call
// may be charging right now), a waiting one whose earlier attempt may have
// charged is cancelled only when a lookup proves nothing was, and a retry
// of a finished operation looks up first, since the provider may have
// forgotten the key.
type Operator struct {
	cfg OperatorConfig
	// idle ends unused sessions; touchEvery is how stale last_seen_at may
	// get before a request refreshes it (see Session).
	idle, touchEvery time.Duration
}

// NewOperator validates cfg and returns the service.
func NewOperator(cfg OperatorConfig) (*Operator, error) {
	if cfg.Store == nil {
		return nil, errors.New("operator: Store is required")
	}
	if cfg.LookupTimeout <= 0 {
		cfg.LookupTimeout = 5 * time.Second
	}
	if cfg.FilterBatch <= 0 {
		cfg.FilterBatch = 500
	}
	if cfg.Limits == (SignInLimits{}) {
		cfg.Limits = DefaultSignInLimits()
	}
	if cfg.SessionIdle < 0 {
		return nil, errors.New("operator: SessionIdle must not be negative")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.GatedQueues = maps.Clone(cfg.GatedQueues)
	// Every reading of the operator's clock is stored (audit entries,
	// operations, sessions) or compared with what is stored.
	wall := orNow(cfg.Now)
	cfg.Now = func() time.Time { return StorageTime(wall()) }
	idle := cmp.Or(cfg.SessionIdle, DefaultSessionIdle)
	// A tenth of the idle time, so someone who pauses for up to 90% of it
	// is never signed out; at most a minute, so a busy session is not
	// rewritten on every request.
	return &Operator{cfg: cfg, idle: idle, touchEvery: min(time.Minute, idle/10)}, nil
}

// needJobs refuses job and queue actions when this service has no River.
func (o *Operator) needJobs() error {
	if o.cfg.Jobs == nil {
		return errors.New("operator: no River client configured for job and queue actions")
	}
	return nil
}

func (o *Operator) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := o.cfg.Store.BeginTx(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func (o *Operator) audit(a Actor, action, target string, before, after any, detail string, now time.Time) AuditEntry {
	return AuditEntry{At: now, ActorID: a.UserID, ActorEmail: a.Email, Action: action, Target: target,
		Before: jsonOf(before), After: jsonOf(after), Detail: detail, IP: a.IP, RequestID: a.RequestID}
}

func jsonOf(v any) json.RawMessage {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}
