package app

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
)

// A failover drill proves, on a schedule or by hand, that a dependency's
// async path still works: it sends canary operations of a zero-effect kind
// (they ask the dependency's GET /health, no money moves) down the async
// path and checks that every one completes after the drill ends, within
// DRILL_DURATION + DrillGrace of its start (DESIGN.md, "Operating and
// scaling contracts"). The async path is the one customers rely on when a
// provider fails, and the one least exercised while it does not: a drill
// finds its hidden breakage before an outage does.

// DrillMode says what a drill touches.
type DrillMode string

const (
	// DrillShadow forces only the canaries down the async path; customers
	// are untouched. The default.
	DrillShadow DrillMode = "shadow"
	// DrillLive really opens the dependency's breaker on every instance
	// for the drill's duration, so customers' requests go async too.
	DrillLive DrillMode = "live"
)

// DrillStatus is where a drill stands.
type DrillStatus string

const (
	// DrillRunning: the drill has started and its duration has not passed.
	DrillRunning DrillStatus = "running"
	// DrillDraining: the duration is over (a live drill's breaker is back
	// to automatic); its canaries are expected to complete.
	DrillDraining DrillStatus = "draining"
	DrillPassed   DrillStatus = "passed"
	DrillFailed   DrillStatus = "failed"
)

// Ended reports a finished drill, passed or failed.
func (s DrillStatus) Ended() bool { return s == DrillPassed || s == DrillFailed }

// Drill triggers.
const (
	DrillManual    = "manual"
	DrillScheduled = "schedule"
)

// DrillGrace is how long past its duration a drill's canaries may take to
// complete: the contract's 60 s.
const DrillGrace = 60 * time.Second

// Drill is one drill's record.
type Drill struct {
	ID         int64
	Dependency string
	Mode       DrillMode
	// Trigger is DrillManual or DrillScheduled; Actor who started a manual
	// one. Slot is a scheduled drill's schedule slot, which the database
	// keeps unique per dependency so no slot is drilled twice.
	Trigger string
	Actor   string
	Slot    *time.Time
	Status  DrillStatus
	// Duration is DRILL_DURATION when the drill started.
	Duration  time.Duration
	StartedAt time.Time
	// EndedAt is when its duration was over and, live, the breaker was
	// returned to automatic; zero before.
	EndedAt time.Time
	// Canaries is how many it means to send; Sent how many were captured
	// for the async path, Completed how many have succeeded.
	Canaries, Sent, Completed int
	// DrainTime is from EndedAt to the last canary's completion, once all
	// have completed; nil before (or when they did not).
	DrainTime *time.Duration
	// Reason says why the drill passed or failed, in words.
	Reason     string
	FinishedAt time.Time
}

// EndsAt is when the drill's duration is over.
func (d Drill) EndsAt() time.Time { return d.StartedAt.Add(d.Duration) }

// Deadline is when every canary must have completed for the drill to pass.
func (d Drill) Deadline() time.Time { return d.StartedAt.Add(d.Duration + DrillGrace) }

// DrillSettings are the drills' configuration (DRILL_*).
type DrillSettings struct {
	// Schedule is how often every drillable dependency is drilled
	// (DRILL_SCHEDULE, a Go duration such as 168h); zero is off. Slots
	// are aligned on multiples of Schedule since Go's zero time, so every
	// instance agrees on them.
	Schedule time.Duration
	// Duration is how long a drill lasts (DRILL_DURATION, default 60s).
	Duration time.Duration
	// Mode is the scheduled drills' mode (DRILL_MODE, default shadow).
	Mode DrillMode
	// Canaries is how many canaries a drill sends (DRILL_CANARIES).
	Canaries int
}

// DefaultDrillDuration is DRILL_DURATION's default.
const DefaultDrillDuration = 60 * time.Second

// drills reads the DRILL_* variables.
func (l *loader) drills() DrillSettings {
	d := DrillSettings{
		Duration: l.duration("DRILL_DURATION", DefaultDrillDuration, time.Second, time.Hour),
		Mode:     DrillMode(l.oneOf("DRILL_MODE", string(DrillShadow), string(DrillShadow), string(DrillLive))),
		Canaries: l.integer("DRILL_CANARIES", 5, 1, 100),
	}
	if v := l.getenv("DRILL_SCHEDULE"); v != "" && v != "off" {
		every, err := time.ParseDuration(v)
		switch {
		case err != nil:
			l.fail("DRILL_SCHEDULE", fmt.Sprintf("%q is not a Go duration like 168h (weekly), or empty for off", v))
		case every < time.Hour:
			l.fail("DRILL_SCHEDULE", "must be at least 1h: a drill lasts DRILL_DURATION and may drain for a minute more")
		default:
			d.Schedule = every
		}
	}
	return d
}

// ParseDrillMode reads a mode from a form: "" is shadow.
func ParseDrillMode(s string) (DrillMode, error) {
	switch DrillMode(s) {
	case "", DrillShadow:
		return DrillShadow, nil
	case DrillLive:
		return DrillLive, nil
	}
	return "", Errorf(EINVALID, "A drill's mode is shadow or live, not %q.", s)
}

// The canary kind: one step that asks a dependency's health endpoint. A
// health check has no effect downstream, so a canary moves no money and
// holds no stock, and a lost answer is settled by asking again.
const (
	KindCanary   = "canary"
	QueueCanary  = "canaries"
	scopeCanary  = "canaries"
	stepHealth   = "health"
	canaryPrefix = "drill-"
)

// HealthChecker asks a dependency whether it is up (GET {url}/health): nil
// for a 200, a *ProviderError otherwise. provider.HTTP and
// provider.InventoryHTTP are ones.
type HealthChecker interface {
	Health(ctx context.Context) error
}

// CanaryArgs is a captured canary's River job.
type CanaryArgs struct {
	OperationID uuid.UUID `json:"operation_id"`
}

func (CanaryArgs) Kind() string                 { return KindCanary }
func (a CanaryArgs) Operation() uuid.UUID       { return a.OperationID }
func (CanaryArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: QueueCanary} }

// CanaryRequest is one canary of a drill. In a shadow drill it is captured
// without a synchronous try (CaptureAt), to run when the drill ends; in a
// live drill it takes the path a customer's request takes, and the open
// breaker captures it.
type CanaryRequest struct {
	Drill      int64
	N          int
	Dependency string
	// Shadow captures it for the async path, to run from RunAt.
	Shadow bool
	RunAt  time.Time
}

// Fingerprint identifies the canary (StepRequest).
func (r CanaryRequest) Fingerprint() []byte {
	sum := sha256.Sum256([]byte("canary\x00" + r.Dependency + "\x00" + strconv.FormatInt(r.Drill, 10) + "\x00" + strconv.Itoa(r.N)))
	return sum[:]
}

// Callback is none: a canary notifies nobody.
func (CanaryRequest) Callback() string { return "" }

// CaptureAt says a shadow canary goes straight to the async path, to run
// from RunAt (AsyncRequest).
func (r CanaryRequest) CaptureAt() (time.Time, bool) { return r.RunAt, r.Shadow }

// Key is the canary's idempotency key: sending it again (a drill job run
// twice) records nothing twice.
func (r CanaryRequest) Key() string { return fmt.Sprintf("%s%d-%d", canaryPrefix, r.Drill, r.N) }

// CanaryID is the operation id of canary n of drill id.
func CanaryID(drill int64, n int) uuid.UUID {
	return OperationID(scopeCanary, CanaryRequest{Drill: drill, N: n}.Key())
}

// ReasonDrill is why a shadow canary was captured: the drill sent it down
// the async path.
const ReasonDrill Reason = "drill"

// asyncOnly is when req, an AsyncRequest that asks to skip the
// synchronous try, may run; ok false for every other request.
func asyncOnly(req StepRequest) (time.Time, bool) {
	a, ok := req.(AsyncRequest)
	if !ok {
		return time.Time{}, false
	}
	return a.CaptureAt()
}

// AsyncRequest is a request the runner captures without trying it
// synchronously, to run from the time it names (zero: at once), when it
// says so.
type AsyncRequest interface {
	CaptureAt() (time.Time, bool)
}

// NewCanaryKind declares canaries for the dependencies in health, nil when
// there is none: drills are then refused.
func NewCanaryKind(health map[string]HealthChecker) *StepKind {
	if len(health) == 0 {
		return nil
	}
	return &StepKind{
		Name: KindCanary, Scope: scopeCanary, Queue: QueueCanary,
		NewArgs: func(op *Operation) river.JobArgs { return CanaryArgs{OperationID: op.ID} },
		Plan: func(_ context.Context, _ pgx.Tx, r StepRequest) (Plan, error) {
			req, ok := r.(CanaryRequest)
			if !ok {
				return Plan{}, fmt.Errorf("canaries: a %T is not a canary", r)
			}
			if health[req.Dependency] == nil {
				return Plan{}, Errorf(EINVALID, "%s has no health endpoint to drill", req.Dependency)
			}
			return Plan{Steps: []Step{{Name: stepHealth, Dependency: req.Dependency, Status: StepPending}},
				Payment: PaymentRequest{Currency: "usd", Description: fmt.Sprintf("drill %d canary %d", req.Drill, req.N)}}, nil
		},
		Handlers: map[string]StepHandler{stepHealth: canaryHealth{health: health}},
		Describe: func(e Ending) string {
			if e.Status == StatusSucceeded {
				return ""
			}
			return "the dependency's health check kept failing"
		},
	}
}

// canaryHealth calls the health endpoint of the step's dependency.
type canaryHealth struct{ health map[string]HealthChecker }

func (h canaryHealth) Call(ctx context.Context, _ *Operation, s *Step, _ string) (StepResult, error) {
	c := h.health[s.Dependency]
	if c == nil {
		return StepResult{}, &ProviderError{Kind: FaultRejected, Err: fmt.Errorf("%s has no health endpoint", s.Dependency)}
	}
	if err := c.Health(ctx); err != nil {
		return StepResult{}, err
	}
	return StepResult{Status: StepSucceeded}, nil
}

// LookUp says "call again": a health check did nothing to look up.
func (canaryHealth) LookUp(context.Context, *Operation, *Step, string, time.Time, time.Time) (StepResult, error) {
	return StepResult{Status: StepPending}, nil
}

func (canaryHealth) Compensate(context.Context, *Operation, *Step) error { return nil }
