package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// CountDelta is one instance's outcomes for a breaker generation's bucket.
type CountDelta struct {
	Name       string
	Generation int64
	Bucket     time.Time
	Counts     Counts
}

// StreakDelta is one instance's run of failures for a breaker generation
// since its last flush; the store folds it into the shared run
// (Streak.Then) and returns the result.
type StreakDelta struct {
	Name       string
	Generation int64
	Streak     Streak
}

// Transition describes a breaker state change for its history.
type Transition struct {
	Reason   string
	Counts   Counts
	Instance string
	Actor    string // "system" or the operator
	// Audit, for an operator's change, is written in the transition's own
	// transaction: the change and its audit entry exist together or not
	// at all.
	Audit *AuditEntry
}

// BreakerStore keeps breakers where every instance sees them.
type BreakerStore interface {
	EnsureBreaker(ctx context.Context, name string, p BreakerPolicy, now time.Time) (Breaker, error)
	GetBreaker(ctx context.Context, name string) (Breaker, error)
	ListBreakers(ctx context.Context) ([]Breaker, error)
	AddCounts(ctx context.Context, deltas []CountDelta) error
	WindowCounts(ctx context.Context, name string, gen int64, since time.Time) (Counts, error)
	// AddStreaks folds each delta into its generation's shared run of
	// failures and returns the runs as they now stand, in one statement.
	AddStreaks(ctx context.Context, deltas []StreakDelta, now time.Time) ([]StreakDelta, error)
	Transition(ctx context.Context, from, to Breaker, t Transition) (bool, error)
	SetPolicy(ctx context.Context, name string, p BreakerPolicy, t Transition, now time.Time) error
	ClaimProbe(ctx context.Context, name string, gen int64, instance string) (int64, bool, error)
	FinishProbe(ctx context.Context, id int64, outcome string) error
	ProbeSummary(ctx context.Context, name string, gen int64) (successes, failures int, err error)
	PruneBreakerHistory(ctx context.Context, before time.Time) error
	ListenBreakers(ctx context.Context, ready func(), fn func(name string)) error
}

// BreakersConfig wires the shared breakers of one instance.
type BreakersConfig struct {
	Store    BreakerStore
	Instance string // names this instance in transitions and probe leases
	// FlushEvery is how often local counts reach the table and the trip
	// condition is judged; it bounds how late the window opens a breaker.
	// A run of failures as long as the fast trigger's flushes at once.
	FlushEvery time.Duration
	// PollEvery re-reads every breaker: the safety net under NOTIFY.
	PollEvery time.Duration
	// Now is the wall clock breakers are stamped and judged by (nil:
	// time.Now): their times are shared with other instances through the
	// table. A call's slowness is its elapsed time, measured by the caller
	// on the monotonic clock (Permit.Done).
	Now    func() time.Time
	Rand   func() float64
	Logger *slog.Logger
	// OnChange, when set, hears every state this instance learns of;
	// transition is false for the first sighting at Register.
	OnChange func(b Breaker, transition bool)
}

// Breakers is this instance's view of the shared circuit breakers. Calls
// are decided from a cached copy of each breaker, so a request never waits
// on the database to learn whether it may call; outcomes are counted
// locally and flushed in batches.
type Breakers struct {
	cfg BreakersConfig
	mu  sync.Mutex
	m   map[string]*breakerEntry
	// kick asks the loop to judge a breaker now (a probe finished).
	kick chan string
	// flushNow asks the loop to flush now: a run of failures reached the
	// fast trigger, and waiting for the tick would only delay the trip.
	flushNow chan struct{}
	// wg tracks probe outcomes still being written, so Run hands them
	// over before it returns.
	wg sync.WaitGroup
}

type countKey struct {
	gen    int64
	bucket time.Time
}

type breakerEntry struct {
	b       Breaker
	pending map[countKey]Counts
	// streaks are this instance's runs per generation since the last
	// flush; shared is the generation's run in the table as the last
	// flush returned it (sharedGen names the generation).
	streaks   map[int64]Streak
	shared    int
	sharedGen int64
	// changed is closed, and replaced, whenever b moves to a new
	// generation: how a worker waiting on half-open learns the verdict.
	changed chan struct{}
}

// NewBreakers returns an instance's breakers; call Register for each
// dependency, then Run.
func NewBreakers(cfg BreakersConfig) (*Breakers, error) {
	if cfg.Store == nil {
		return nil, errors.New("breakers: Store is required")
	}
	if cfg.Instance == "" {
		return nil, errors.New("breakers: Instance is required")
	}
	if cfg.FlushEvery <= 0 {
		cfg.FlushEvery = 200 * time.Millisecond
	}
	if cfg.PollEvery <= 0 {
		cfg.PollEvery = time.Second
	}
	cfg.Now = orNow(cfg.Now)
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Breakers{cfg: cfg, m: map[string]*breakerEntry{}, kick: make(chan string, 16), flushNow: make(chan struct{}, 1)}, nil
}

// Register makes sure the named breaker exists, created with seed if new.
// When override is non-empty its thresholds replace the stored ones (an
// operator set them in the environment for this start).
func (bs *Breakers) Register(ctx context.Context, name string, seed BreakerPolicy, override PolicyOverride) error {
	b, err := bs.cfg.Store.EnsureBreaker(ctx, name, seed, bs.stamp())
	if err != nil {
		return err
	}
	if !override.Empty() {
		p := override.Apply(b.Policy)
		if err := p.Validate(); err != nil {
			return fmt.Errorf("breaker %s: %w", name, err)
		}
		if p != b.Policy {
			t := Transition{Reason: "thresholds set from the environment", Instance: bs.cfg.Instance, Actor: "env"}
			if err := bs.cfg.Store.SetPolicy(ctx, name, p, t, bs.stamp()); err != nil {
				return err
			}
			b.Policy = p
		}
	}
	bs.mu.Lock()
	bs.m[name] = &breakerEntry{b: b, pending: map[countKey]Counts{}, streaks: map[int64]Streak{}, changed: make(chan struct{})}
	bs.mu.Unlock()
	bs.changed(b, false)
	return nil
}

// stamp is the time to write on a breaker, its counts or its history now.
func (bs *Breakers) stamp() time.Time { return StorageTime(bs.cfg.Now()) }

// Get returns this instance's copy of a breaker.
func (bs *Breakers) Get(name string) (Breaker, bool) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	e, ok := bs.m[name]
	if !ok {
		return Breaker{}, false
	}
	return e.b, true
}

// Changed returns a channel closed at the named breaker's next state
// change this instance learns of (nil for an unknown breaker).
func (bs *Breakers) Changed(name string) <-chan struct{} {
	if bs == nil {
		return nil
	}
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if e, ok := bs.m[name]; ok {
		return e.changed
	}
	return nil
}

// Permit is one call the breaker let through; report its outcome with Done.
type Permit struct {
	bs      *Breakers
	name    string
	gen     int64
	probeID int64
}

// Acquire asks the named breaker whether a call may go ahead. A nil permit
// means no: the returned breaker says until when. An unregistered name has
// no breaker and is always allowed.
func (bs *Breakers) Acquire(ctx context.Context, name string) (*Permit, Breaker) {
	if bs == nil {
		return &Permit{}, Breaker{}
	}
	b, ok := bs.Get(name)
	if !ok {
		return &Permit{}, b
	}
	switch b.Decide() {
	case Allow:
		return &Permit{bs: bs, name: name, gen: b.Generation}, b
	case Probe:
		// The claim runs on the breakers' own connections, never the
		// caller's pool, and within the caller's ctx: a request that
		// holds its transaction's connection cannot wait on itself.
		id, ok, err := bs.cfg.Store.ClaimProbe(ctx, name, b.Generation, bs.cfg.Instance)
		if err != nil {
			bs.cfg.Logger.Warn("claim probe", "breaker", name, "error", err)
		}
		if !ok || err != nil {
			return nil, b
		}
		return &Permit{bs: bs, name: name, gen: b.Generation, probeID: id}, b
	}
	return nil, b
}

// Probe reports whether the permit is one of half-open's trial calls.
func (p *Permit) Probe() bool { return p != nil && p.probeID != 0 }

// Release gives back a permit that was not used for a call. It never
// waits: a probe permit is handed back in the background.
func (p *Permit) Release() {
	if p.Probe() {
		p.bs.finishProbe(p.name, p.probeID, "")
	}
}

// Done records the call's outcome: failure is true for faults only
// (timeouts, connection errors, 5xx), never for declines or refusals;
// elapsed is the call's own duration (not the caller's waits), which
// decides whether it was slow. It never waits on the database: counts are
// flushed by Run, and a probe's outcome is written in the background.
func (p *Permit) Done(failure bool, elapsed time.Duration) {
	if p == nil || p.bs == nil {
		return
	}
	bs := p.bs
	if p.Probe() {
		outcome := "success"
		if failure {
			outcome = "failure"
		}
		bs.finishProbe(p.name, p.probeID, outcome)
		return
	}
	c := Counts{Calls: 1}
	if failure {
		c.Failures = 1
	}
	now := bs.stamp()
	bs.mu.Lock()
	defer bs.mu.Unlock()
	e, ok := bs.m[p.name]
	if !ok {
		return
	}
	if elapsed > e.b.Policy.SlowCall {
		c.Slow = 1
	}
	k := countKey{gen: p.gen, bucket: now.Truncate(time.Second)}
	e.pending[k] = e.pending[k].Add(c)
	st := e.streaks[p.gen].Record(failure)
	e.streaks[p.gen] = st
	if n := e.b.Policy.ConsecutiveFailures; n > 0 && p.gen == e.b.Generation && failure {
		// This instance's best guess at the shared run: the table's as
		// last read, unless a success here has ended it since.
		run := st.Failures
		if !st.Reset && e.sharedGen == p.gen {
			run += e.shared
		}
		if run == n {
			select {
			case bs.flushNow <- struct{}{}:
			default: // a flush is already asked for
			}
		}
	}
}

// finishProbe writes a probe's outcome ("" releases it unused) and has
// the breaker judged, off the caller's path. Should the write fail, the
// permit's lease expires and another call probes instead.
func (bs *Breakers) finishProbe(name string, id int64, outcome string) {
	bs.wg.Add(1)
	go func() {
		defer bs.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := bs.cfg.Store.FinishProbe(ctx, id, outcome); err != nil {
			bs.cfg.Logger.Warn("finish probe", "breaker", name, "outcome", outcome, "error", err)
			return
		}
		if outcome == "" {
			return
		}
		select {
		case bs.kick <- name:
		default: // the loop is busy; its next tick judges it anyway
		}
	}()
}

// Run keeps this instance's breakers current and judges them until ctx
// ends: it flushes counts, opens, half-opens and closes breakers, and
// follows other instances' changes by LISTEN with polling underneath.
func (bs *Breakers) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		bs.listen(ctx)
	}()
	flush := time.NewTicker(bs.cfg.FlushEvery)
	poll := time.NewTicker(bs.cfg.PollEvery)
	defer flush.Stop()
	defer poll.Stop()
	var lastPrune time.Time // monotonic: pruning is paced by elapsed time
	for {
		select {
		case <-ctx.Done():
			// Hand over what this instance saw before it goes.
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			bs.flush(fctx)
			cancel()
			wg.Wait()
			bs.wg.Wait()
			return nil
		case <-flush.C:
			bs.flush(ctx)
		case <-bs.flushNow:
			bs.flush(ctx)
		case name := <-bs.kick:
			bs.refresh(ctx, name)
			bs.judge(ctx, name)
		case <-poll.C:
			bs.poll(ctx)
			if lastPrune.IsZero() || time.Since(lastPrune) > time.Minute {
				lastPrune = time.Now()
				if err := bs.cfg.Store.PruneBreakerHistory(ctx, bs.stamp().Add(-10*time.Minute)); err != nil {
					bs.cfg.Logger.Warn("prune breaker history", "error", err)
				}
			}
		}
	}
}

func (bs *Breakers) listen(ctx context.Context) {
	for ctx.Err() == nil {
		// Changes made before LISTEN took effect, at start or while
		// reconnecting, are read once it does.
		err := bs.cfg.Store.ListenBreakers(ctx, func() { bs.poll(ctx) }, func(name string) { bs.refresh(ctx, name) })
		if ctx.Err() != nil {
			return
		}
		bs.cfg.Logger.Warn("breaker listener lost; polling covers until it is back", "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// flush sends local counts to the table and judges each breaker that had
// any, plus every breaker whose state may be due to change on its own.
func (bs *Breakers) flush(ctx context.Context) {
	var deltas []CountDelta
	var streaks []StreakDelta
	var names []string
	bs.mu.Lock()
	for name, e := range bs.m {
		if len(e.pending) > 0 || e.b.State == BreakerOpen || e.b.State == BreakerHalfOpen {
			names = append(names, name)
		}
		for k, c := range e.pending {
			deltas = append(deltas, CountDelta{Name: name, Generation: k.gen, Bucket: k.bucket, Counts: c})
		}
		e.pending = map[countKey]Counts{}
		for gen, st := range e.streaks {
			// Only the current generation's run can trip it; an older
			// one's calls were made before the breaker last changed.
			if gen == e.b.Generation && e.b.Policy.ConsecutiveFailures > 0 {
				streaks = append(streaks, StreakDelta{Name: name, Generation: gen, Streak: st})
			}
		}
		e.streaks = map[int64]Streak{}
	}
	bs.mu.Unlock()
	if err := bs.cfg.Store.AddCounts(ctx, deltas); err != nil {
		// Losing a few counts only delays a trip; never block calls on it.
		bs.cfg.Logger.Warn("flush breaker counts", "error", err)
	}
	if len(streaks) > 0 {
		runs, err := bs.cfg.Store.AddStreaks(ctx, streaks, bs.stamp())
		if err != nil {
			bs.cfg.Logger.Warn("flush breaker streaks", "error", err)
		}
		bs.mu.Lock()
		for _, r := range runs {
			if e, ok := bs.m[r.Name]; ok {
				e.shared, e.sharedGen = r.Streak.Failures, r.Generation
			}
		}
		bs.mu.Unlock()
	}
	for _, name := range names {
		bs.judge(ctx, name)
	}
}

// judge applies the policy to one breaker and writes any change with a
// compare-and-swap on its generation.
func (bs *Breakers) judge(ctx context.Context, name string) {
	b, ok := bs.Get(name)
	if !ok {
		return
	}
	now := bs.stamp()
	var (
		to     Breaker
		reason string
		counts Counts
	)
	switch b.State {
	case BreakerClosed:
		if run := bs.sharedStreak(name, b.Generation); run > 0 {
			if why, trip := b.ShouldTripOnStreak(run); trip {
				to, reason, counts = b.Trip(now, bs.cfg.Rand()), why, Counts{Calls: run, Failures: run}
				break
			}
		}
		since := now.Add(-b.Policy.Window)
		if b.Since.After(since) {
			since = b.Since.Truncate(time.Second)
		}
		c, err := bs.cfg.Store.WindowCounts(ctx, name, b.Generation, since)
		if err != nil {
			bs.cfg.Logger.Warn("breaker window", "breaker", name, "error", err)
			return
		}
		why, trip := b.ShouldTrip(c)
		if !trip {
			return
		}
		to, reason, counts = b.Trip(now, bs.cfg.Rand()), why, c
	case BreakerOpen:
		next, due := b.HalfOpen(now)
		if !due {
			return
		}
		to, reason = next, "open wait over; probing"
	case BreakerHalfOpen:
		ok, failed, err := bs.cfg.Store.ProbeSummary(ctx, name, b.Generation)
		if err != nil {
			bs.cfg.Logger.Warn("probe summary", "breaker", name, "error", err)
			return
		}
		switch {
		case failed > 0:
			to, reason = b.Trip(now, bs.cfg.Rand()), "a probe failed"
		case ok >= b.Policy.Probes:
			to, reason = b.Close(now), fmt.Sprintf("%d probes succeeded", ok)
		default:
			return
		}
		counts = Counts{Calls: ok + failed, Failures: failed}
	default:
		return
	}
	bs.transition(ctx, b, to, Transition{Reason: reason, Counts: counts, Instance: bs.cfg.Instance, Actor: "system"})
}

// sharedStreak is the generation's shared run of failures as this
// instance's last flush read it (0 when it has none for gen).
func (bs *Breakers) sharedStreak(name string, gen int64) int {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if e, ok := bs.m[name]; ok && e.sharedGen == gen {
		return e.shared
	}
	return 0
}

func (bs *Breakers) transition(ctx context.Context, from, to Breaker, t Transition) bool {
	won, err := bs.cfg.Store.Transition(ctx, from, to, t)
	if err != nil {
		bs.cfg.Logger.Warn("breaker transition", "breaker", from.Name, "error", err)
		return false
	}
	if !won {
		bs.refresh(ctx, from.Name) // another instance moved it first
		return false
	}
	bs.cfg.Logger.Info("breaker", "name", from.Name, "from", from.State, "to", to.State, "reason", t.Reason,
		"open_until", to.OpenUntil, "actor", t.Actor)
	bs.store(to)
	return true
}

// Force sets an operator's state (forced_open, forced_closed, or closed
// for back to auto), recorded with the actor's name.
func (bs *Breakers) Force(ctx context.Context, name string, state BreakerState, actor, reason string) (Breaker, error) {
	return bs.force(ctx, name, state, actor, reason, nil)
}

// force is Force with, when audit is set, the audit entry of the change
// from one breaker to the next written in the same transaction.
func (bs *Breakers) force(ctx context.Context, name string, state BreakerState, actor, reason string,
	audit func(from, to Breaker) AuditEntry) (Breaker, error) {
	for range 5 {
		b, err := bs.cfg.Store.GetBreaker(ctx, name)
		if err != nil {
			return b, err
		}
		to, err := b.Force(state, bs.stamp())
		if err != nil {
			return b, &Error{Code: EINVALID, Message: err.Error()}
		}
		t := Transition{Reason: reason, Instance: bs.cfg.Instance, Actor: actor}
		if audit != nil {
			e := audit(b, to)
			t.Audit = &e
		}
		won, err := bs.cfg.Store.Transition(ctx, b, to, t)
		if err != nil {
			return b, err
		}
		if won {
			bs.store(to)
			return to, nil
		}
	}
	return Breaker{}, Errorf(ECONFLICT, "breaker %s keeps changing; try again", name)
}

func (bs *Breakers) refresh(ctx context.Context, name string) {
	b, err := bs.cfg.Store.GetBreaker(ctx, name)
	if err != nil {
		if ctx.Err() == nil {
			bs.cfg.Logger.Warn("refresh breaker", "breaker", name, "error", err)
		}
		return
	}
	bs.store(b)
}

func (bs *Breakers) poll(ctx context.Context) {
	all, err := bs.cfg.Store.ListBreakers(ctx)
	if err != nil {
		if ctx.Err() == nil {
			bs.cfg.Logger.Warn("poll breakers", "error", err)
		}
		return
	}
	for _, b := range all {
		bs.store(b)
	}
}

// store caches b unless this instance already knows a newer generation.
func (bs *Breakers) store(b Breaker) {
	bs.mu.Lock()
	e, ok := bs.m[b.Name]
	if !ok || b.Generation < e.b.Generation || (b.Generation == e.b.Generation && b.Policy == e.b.Policy) {
		bs.mu.Unlock()
		return
	}
	transition := b.Generation > e.b.Generation
	e.b = b
	if transition {
		close(e.changed)
		e.changed = make(chan struct{})
	}
	bs.mu.Unlock()
	bs.changed(b, transition)
}

func (bs *Breakers) changed(b Breaker, transition bool) {
	if bs.cfg.OnChange != nil {
		bs.cfg.OnChange(b, transition)
	}
}
