package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
)

// DrillArgs is the River job that carries one drill from its start to its
// verdict (jobs.DrillWorker): it sends the canaries, ends the drill when
// its duration is over and watches the canaries drain, snoozing between.
// Keeping the drill's progress in its row, and the job only its id, lets
// any instance pick it up after a crash.
type DrillArgs struct {
	DrillID int64 `json:"drill_id"`
}

func (DrillArgs) Kind() string { return "drill" }

// DrillScheduleArgs is the periodic job that starts the scheduled drills
// (DRILL_SCHEDULE). River inserts periodic jobs on the elected leader only;
// the drills' unique schedule slot makes a second leader after a failover
// start nothing twice.
type DrillScheduleArgs struct{}

func (DrillScheduleArgs) Kind() string { return "drill_schedule" }

// CanaryState is how one canary stands, as a drill judges it.
type CanaryState struct {
	ID          uuid.UUID
	Status      Status
	CompletedAt *time.Time
	// JobState is its River job's state ("" without a job), and
	// LastError the operation's last error message.
	JobState  string
	LastError string
}

// DrillStore is what drills keep. Methods ending in Tx run in the
// caller's transaction.
type DrillStore interface {
	BeginTx(ctx context.Context) (pgx.Tx, error)
	// InsertDrillTx records d and sets its ID; false, and nothing written,
	// when its dependency already has a drill open or its schedule slot
	// was drilled.
	InsertDrillTx(ctx context.Context, tx pgx.Tx, d *Drill) (bool, error)
	// AbandonDrillsTx fails the dependency's drills still open past their
	// deadline by more than grace: their job is gone.
	AbandonDrillsTx(ctx context.Context, tx pgx.Tx, dependency string, now time.Time, grace time.Duration) (int, error)
	InsertAuditTx(ctx context.Context, tx pgx.Tx, e AuditEntry) error
	GetDrill(ctx context.Context, id int64) (Drill, error)
	// SaveDrill stores a drill's progress.
	SaveDrill(ctx context.Context, d Drill) error
	CanaryStates(ctx context.Context, ids []uuid.UUID) ([]CanaryState, error)
}

// CanarySender takes a canary as a request (Runner.Submit).
type CanarySender interface {
	Submit(ctx context.Context, kind, key string, req StepRequest) (*Outcome, error)
}

// DrillsConfig wires the drills.
type DrillsConfig struct {
	Store DrillStore
	Jobs  JobInserter
	// Breakers opens a live drill's breaker on every instance.
	Breakers *Breakers
	Canaries CanarySender
	// Dependencies are those with a health endpoint to drill.
	Dependencies []string
	Settings     DrillSettings
	// Poll is how often a draining drill looks at its canaries; zero: 2s.
	Poll   time.Duration
	Now    func() time.Time
	Logger *slog.Logger
}

// Drills starts drills and carries them to their verdict.
type Drills struct {
	cfg DrillsConfig
	now func() time.Time
}

// NewDrills returns the drills for cfg.
func NewDrills(cfg DrillsConfig) (*Drills, error) {
	switch {
	case cfg.Store == nil || cfg.Jobs == nil || cfg.Breakers == nil || cfg.Canaries == nil:
		return nil, errors.New("drills: Store, Jobs, Breakers and Canaries are required")
	case cfg.Settings.Duration <= 0 || cfg.Settings.Canaries <= 0:
		return nil, errors.New("drills: Settings.Duration and Settings.Canaries must be positive")
	}
	cfg.Poll = cmp.Or(cfg.Poll, 2*time.Second)
	cfg.Logger = cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler))
	cfg.Settings.Mode = cmp.Or(cfg.Settings.Mode, DrillShadow)
	now := orNow(cfg.Now)
	return &Drills{cfg: cfg, now: func() time.Time { return StorageTime(now()) }}, nil
}

// Settings are the drills' settings.
func (ds *Drills) Settings() DrillSettings { return ds.cfg.Settings }

// Dependencies are the dependencies that can be drilled.
func (ds *Drills) Dependencies() []string { return slices.Clone(ds.cfg.Dependencies) }

// start records a drill of dependency and its job in one transaction, with
// audit's entry when set. It reports false, having written nothing, when
// the dependency already has a drill open or slot was drilled.
func (ds *Drills) start(ctx context.Context, dependency string, mode DrillMode, trigger, actor string, slot *time.Time,
	audit func(d Drill) AuditEntry) (Drill, bool, error) {
	if !slices.Contains(ds.cfg.Dependencies, dependency) {
		return Drill{}, false, Errorf(EINVALID, "There is no drillable dependency %q (drillable: %s).", dependency,
			strings.Join(ds.cfg.Dependencies, ", "))
	}
	d := Drill{Dependency: dependency, Mode: mode, Trigger: trigger, Actor: actor, Slot: slot, Status: DrillRunning,
		Duration: ds.cfg.Settings.Duration, StartedAt: ds.now(), Canaries: ds.cfg.Settings.Canaries}
	tx, err := ds.cfg.Store.BeginTx(ctx)
	if err != nil {
		return d, false, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after commit
	if _, err := ds.cfg.Store.AbandonDrillsTx(ctx, tx, dependency, d.StartedAt, abandonAfter); err != nil {
		return d, false, err
	}
	ok, err := ds.cfg.Store.InsertDrillTx(ctx, tx, &d)
	if err != nil || !ok {
		return d, false, err
	}
	if _, err := ds.cfg.Jobs.InsertTx(ctx, tx, DrillArgs{DrillID: d.ID}, &river.InsertOpts{MaxAttempts: 25}); err != nil {
		return d, false, fmt.Errorf("insert drill job: %w", err)
	}
	if audit != nil {
		if err := ds.cfg.Store.InsertAuditTx(ctx, tx, audit(d)); err != nil {
			return d, false, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return d, false, fmt.Errorf("start drill: %w", err)
	}
	ds.cfg.Logger.Info("drill started", "drill", d.ID, "dependency", dependency, "mode", mode, "trigger", trigger)
	return d, true, nil
}

// abandonAfter is how long past its deadline an open drill is taken for
// one whose job is gone: far longer than the job's poll, so a drill whose
// job is merely late is never failed under it.
const abandonAfter = 10 * time.Minute

// Schedule starts the drills of the schedule slot now falls in, one per
// drillable dependency, in DRILL_MODE. A slot already drilled (another
// leader got there first) starts nothing; one whose dependency has a drill
// open is tried again at the next check, a minute later.
func (ds *Drills) Schedule(ctx context.Context) (started []Drill, err error) {
	every := ds.cfg.Settings.Schedule
	if every <= 0 {
		return nil, nil
	}
	slot := ds.now().Truncate(every)
	for _, dep := range ds.cfg.Dependencies {
		d, ok, err := ds.start(ctx, dep, ds.cfg.Settings.Mode, DrillScheduled, "", &slot, nil)
		if err != nil {
			return started, err
		}
		if ok {
			started = append(started, d)
		}
	}
	return started, nil
}

// Advance moves drill id on: it sends the canaries, ends the drill when its
// duration is over, and judges it once its canaries have drained or its
// deadline has passed. It answers how soon to look again, zero once the
// drill has its verdict. Every step is safe to repeat: canaries are sent
// under fixed keys, and progress is saved before the next step.
func (ds *Drills) Advance(ctx context.Context, id int64) (time.Duration, error) {
	d, err := ds.cfg.Store.GetDrill(ctx, id)
	if err != nil {
		return 0, err
	}
	if d.Status.Ended() {
		return 0, nil
	}
	now := ds.now()
	if d.Status == DrillRunning {
		if d.Sent < d.Canaries {
			if err := ds.send(ctx, &d); err != nil {
				return 0, err
			}
			if d.Status.Ended() {
				return 0, nil
			}
		}
		if now.Before(d.EndsAt()) {
			return min(d.EndsAt().Sub(now), ds.cfg.Poll), nil
		}
		if err := ds.end(ctx, &d, now); err != nil {
			return 0, err
		}
	}
	return ds.judge(ctx, &d, ds.now())
}

// send captures the drill's canaries for the async path; a live drill
// first opens the breaker on every instance. A canary that cannot be
// captured, or that ran synchronously, fails the drill: either is what a
// drill is there to find.
func (ds *Drills) send(ctx context.Context, d *Drill) error {
	if d.Mode == DrillLive {
		if err := ds.openBreaker(ctx, d); err != nil {
			return err
		}
	}
	for n := d.Sent; n < d.Canaries; n++ {
		req := CanaryRequest{Drill: d.ID, N: n, Dependency: d.Dependency, Shadow: d.Mode != DrillLive, RunAt: d.EndsAt()}
		out, err := ds.cfg.Canaries.Submit(ctx, KindCanary, req.Key(), req)
		if err != nil {
			return ds.fail(ctx, d, fmt.Sprintf("canary %d of %d could not be captured for the async path: %v", n+1, d.Canaries, err))
		}
		if out.Document.Mode != ModeAsync {
			return ds.fail(ctx, d, fmt.Sprintf("canary %d of %d ran synchronously (%s) instead of going down the async path",
				n+1, d.Canaries, out.Document.Status))
		}
		d.Sent = n + 1
	}
	return ds.cfg.Store.SaveDrill(ctx, *d)
}

// drillActor is who a drill's breaker changes are by, in the breaker's
// history.
func drillActor(d *Drill) string { return fmt.Sprintf("drill #%d", d.ID) }

// openBreaker forces a live drill's breaker open, unless an operator
// already has; the breaker's history names the drill.
func (ds *Drills) openBreaker(ctx context.Context, d *Drill) error {
	b, err := ds.cfg.Breakers.cfg.Store.GetBreaker(ctx, d.Dependency)
	if err != nil {
		return err
	}
	if b.State == BreakerForcedOpen {
		// Our own earlier run forced it, or an operator did: either way
		// it is open, and the breakers learn so as they poll.
		ds.cfg.Breakers.store(b)
		return nil
	}
	_, err = ds.cfg.Breakers.Force(ctx, d.Dependency, BreakerForcedOpen, drillActor(d),
		fmt.Sprintf("live drill #%d for %s", d.ID, d.Duration))
	return err
}

// end closes the drill's duration: a live drill returns the breaker to
// automatic, unless someone changed it since the drill forced it.
func (ds *Drills) end(ctx context.Context, d *Drill, now time.Time) error {
	if d.Mode == DrillLive {
		b, err := ds.cfg.Breakers.cfg.Store.GetBreaker(ctx, d.Dependency)
		if err != nil {
			return err
		}
		if b.State == BreakerForcedOpen && !b.Since.Before(d.StartedAt) {
			if _, err := ds.cfg.Breakers.Force(ctx, d.Dependency, BreakerClosed, drillActor(d),
				fmt.Sprintf("live drill #%d over", d.ID)); err != nil {
				return err
			}
		}
	}
	d.Status, d.EndedAt = DrillDraining, now
	return ds.cfg.Store.SaveDrill(ctx, *d)
}

// judge looks at the canaries of a draining drill: it passes once every
// one has completed by its deadline, and fails when one ended otherwise or
// the deadline passed first.
func (ds *Drills) judge(ctx context.Context, d *Drill, now time.Time) (time.Duration, error) {
	ids := make([]uuid.UUID, d.Sent)
	for n := range ids {
		ids[n] = CanaryID(d.ID, n)
	}
	states, err := ds.cfg.Store.CanaryStates(ctx, ids)
	if err != nil {
		return 0, err
	}
	var last time.Time
	d.Completed = 0
	for _, s := range states {
		switch {
		case s.Status == StatusSucceeded && s.CompletedAt != nil:
			d.Completed++
			last = maxTime(last, *s.CompletedAt)
		case s.Status.Terminal():
			return 0, ds.fail(ctx, d, fmt.Sprintf("canary %s ended %s: %s", s.ID, s.Status, cmp.Or(s.LastError, "no error recorded")))
		}
	}
	limit := fmt.Sprintf("DRILL_DURATION (%s) + %s", d.Duration, DrillGrace)
	switch {
	case d.Completed == d.Sent && len(states) == d.Sent:
		drain := max(last.Sub(d.EndedAt), 0)
		d.DrainTime = &drain
		if last.After(d.Deadline()) {
			return 0, ds.finish(ctx, d, DrillFailed, fmt.Sprintf("all %d canaries completed, but the last %s after the start, past %s",
				d.Sent, last.Sub(d.StartedAt).Round(time.Millisecond), limit))
		}
		return 0, ds.finish(ctx, d, DrillPassed, fmt.Sprintf("all %d canaries completed through the async path, the last %s after the drill ended (within %s)",
			d.Sent, drain.Round(time.Millisecond), limit))
	case !now.Before(d.Deadline()):
		return 0, ds.fail(ctx, d, fmt.Sprintf("%d of %d canaries did not complete within %s: %s",
			d.Sent-d.Completed, d.Sent, limit, describeStuck(states)))
	}
	if err := ds.cfg.Store.SaveDrill(ctx, *d); err != nil {
		return 0, err
	}
	return min(ds.cfg.Poll, max(d.Deadline().Sub(now), time.Millisecond)), nil
}

// describeStuck says where the canaries that did not complete stand, by
// their jobs' states, with what an operator should look at.
func describeStuck(states []CanaryState) string {
	by := map[string]int{}
	lastErr := ""
	for _, s := range states {
		if s.Status == StatusSucceeded {
			continue
		}
		by[s.JobState]++
		if s.LastError != "" {
			lastErr = s.LastError
		}
	}
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		var w string
		switch k {
		case "available":
			w = "waiting for a worker (job available): are workers running on the canaries queue, and is it unpaused?"
		case "scheduled":
			w = "not yet due (job scheduled)"
		case "retryable":
			w = "retrying after failed calls (job retryable)"
			if lastErr != "" {
				w += ", last error: " + lastErr
			}
		case "running":
			w = "still running (job running)"
		case "":
			w = "without a job"
		default:
			w = "job " + k
		}
		parts = append(parts, fmt.Sprintf("%d %s", by[k], w))
	}
	return strings.Join(parts, "; ")
}

// fail ends the drill failed with reason; a live drill's breaker goes back
// to automatic first.
func (ds *Drills) fail(ctx context.Context, d *Drill, reason string) error {
	if d.Status == DrillRunning && d.Mode == DrillLive {
		if err := ds.end(ctx, d, ds.now()); err != nil {
			return err
		}
	}
	return ds.finish(ctx, d, DrillFailed, reason)
}

func (ds *Drills) finish(ctx context.Context, d *Drill, status DrillStatus, reason string) error {
	d.Status, d.Reason, d.FinishedAt = status, reason, ds.now()
	if d.EndedAt.IsZero() {
		d.EndedAt = d.FinishedAt
	}
	if err := ds.cfg.Store.SaveDrill(ctx, *d); err != nil {
		return err
	}
	ds.cfg.Logger.Info("drill finished", "drill", d.ID, "dependency", d.Dependency, "mode", d.Mode,
		"status", status, "reason", reason)
	return nil
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
