package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Backlog is how much captured work waits for a dependency: jobs not yet
// finished nor running, and when the oldest was captured.
type Backlog struct {
	Jobs   int
	Oldest time.Time // zero when there are none
}

// BacklogReader reads the backlog of a River queue; db.Store is one.
type BacklogReader interface {
	QueueBacklog(ctx context.Context, queue string) (Backlog, error)
}

// BacklogBound is one dependency's bound (<DEP>_MAX_BACKLOG,
// <DEP>_MAX_BACKLOG_AGE); zero in either means no bound on it.
type BacklogBound struct {
	Dependency string
	Queue      string
	MaxJobs    int
	MaxAge     time.Duration
}

// BacklogConfig wires the backlog bounds of one instance.
type BacklogConfig struct {
	Reader BacklogReader
	Bounds []BacklogBound
	// Every is how often the backlogs are read; zero means every second.
	// A capture is judged against the last reading, so the bound may be
	// overshot by what one instance captures in that time. A slow reading
	// stretches the interval (backlogDuty).
	Every   time.Duration
	Metrics *Metrics
	Now     func() time.Time
	Logger  *slog.Logger
}

// BacklogBounds is the admission check on captures: past a dependency's
// bound, a new capture for it is refused with 503 and nothing is
// acknowledged, so Spillway never accepts work it has said it cannot
// finish. Backlogs are read in the background, never by a request.
type BacklogBounds struct {
	cfg    BacklogConfig
	bounds map[string]BacklogBound

	mu   sync.Mutex
	last map[string]Backlog
	// history keeps each dependency's readings of the last
	// BacklogTrendSpan, oldest first, for Trend.
	history map[string][]backlogReading
}

type backlogReading struct {
	at   time.Time
	jobs int
}

// BacklogTrendSpan is how far back Trend looks: long enough that one
// burst of captures or one batch of completions does not swing the
// estimate, short enough to follow a drain that has just begun.
const BacklogTrendSpan = 5 * time.Minute

// backlogTrendMin is the least span of readings Trend will judge from:
// two readings a second apart say more about River's batching than
// about the backlog.
const backlogTrendMin = 10 * time.Second

// NewBacklogBounds returns the bounds; call Run. Until the first reading
// every capture is admitted.
func NewBacklogBounds(cfg BacklogConfig) *BacklogBounds {
	if cfg.Every <= 0 {
		cfg.Every = time.Second
	}
	cfg.Now = orNow(cfg.Now)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	b := &BacklogBounds{cfg: cfg, bounds: map[string]BacklogBound{}, last: map[string]Backlog{}, history: map[string][]backlogReading{}}
	for _, x := range cfg.Bounds {
		b.bounds[x.Dependency] = x
	}
	return b
}

// backlogDuty is the share of the database's time the backlog readings
// may take: the next reading waits at least 1/backlogDuty times as long as
// the last one took. Counting a backlog is an index scan that grows with
// it (a million deferred payments take a few hundred milliseconds on two
// cores); read every second, it would take that share of a core from the
// captures it is there to admit. Below about 50 ms a reading, the
// interval stays Every.
const backlogDuty = 0.05

// Run reads every dependency's backlog until ctx ends.
func (b *BacklogBounds) Run(ctx context.Context) {
	for {
		start := time.Now()
		b.Refresh(ctx)
		wait := max(b.cfg.Every, time.Duration(float64(time.Since(start))/backlogDuty))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// Refresh reads every dependency's backlog now.
func (b *BacklogBounds) Refresh(ctx context.Context) {
	for _, x := range b.bounds {
		rctx, cancel := context.WithTimeout(ctx, b.cfg.Every*5)
		bl, err := b.cfg.Reader.QueueBacklog(rctx, x.Queue)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				// The last reading stands: a database too slow to count
				// the backlog is no reason to refuse or admit more.
				b.cfg.Logger.Warn("read backlog", "dependency", x.Dependency, "error", err)
			}
			continue
		}
		now := b.cfg.Now()
		b.mu.Lock()
		b.last[x.Dependency] = bl
		b.history[x.Dependency] = keepReadings(append(b.history[x.Dependency], backlogReading{at: now, jobs: bl.Jobs}), now)
		b.mu.Unlock()
		b.cfg.Metrics.backlogRead(x.Dependency, bl, now)
	}
}

// Last is the dependency's backlog as last read.
func (b *BacklogBounds) Last(dependency string) (Backlog, bool) {
	if b == nil {
		return Backlog{}, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	bl, ok := b.last[dependency]
	return bl, ok
}

// keepReadings drops the readings older than BacklogTrendSpan, but keeps
// the newest of those as the span's start, so a reading every few
// seconds still spans the whole of it.
func keepReadings(rs []backlogReading, now time.Time) []backlogReading {
	i := 0
	for i+1 < len(rs) && now.Sub(rs[i+1].at) >= BacklogTrendSpan {
		i++
	}
	return rs[i:]
}

// Trend is how fast the dependency's backlog has changed over the
// readings of the last BacklogTrendSpan: jobs per second, negative while
// it shrinks, and the span it was judged over. It is the net of drain and
// new captures, which is what a time to drain needs. ok is false until
// the readings span backlogTrendMin.
func (b *BacklogBounds) Trend(dependency string) (perSecond float64, over time.Duration, ok bool) {
	if b == nil {
		return 0, 0, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	rs := b.history[dependency]
	if len(rs) < 2 {
		return 0, 0, false
	}
	first, last := rs[0], rs[len(rs)-1]
	over = last.at.Sub(first.at)
	if over < backlogTrendMin {
		return 0, over, false
	}
	return float64(last.jobs-first.jobs) / over.Seconds(), over, true
}

// Bound is the dependency's configured bound.
func (b *BacklogBounds) Bound(dependency string) (BacklogBound, bool) {
	if b == nil {
		return BacklogBound{}, false
	}
	x, ok := b.bounds[dependency]
	return x, ok
}

// Exceeded says whether bl is past the bound at now, and if so which part
// and by how much, in words. Admit refuses exactly when it says so; the
// admin overview shows the same verdict.
func (x BacklogBound) Exceeded(bl Backlog, now time.Time) (why string, over bool) {
	switch {
	case x.MaxJobs > 0 && bl.Jobs >= x.MaxJobs:
		return fmt.Sprintf("%d jobs wait, the most it takes is %d", bl.Jobs, x.MaxJobs), true
	case x.MaxAge > 0 && !bl.Oldest.IsZero() && now.Sub(bl.Oldest) >= x.MaxAge:
		return fmt.Sprintf("its oldest job has waited %s, the longest it allows is %s",
			now.Sub(bl.Oldest).Round(time.Second), x.MaxAge), true
	}
	return "", false
}

// Admit says whether a new capture for dependency may be acknowledged: nil,
// or an EUNAVAILABLE error whose message says which bound is passed and
// that nothing was done. A nil *BacklogBounds admits everything.
func (b *BacklogBounds) Admit(dependency string) error {
	if b == nil {
		return nil
	}
	x, ok := b.bounds[dependency]
	bl, read := b.Last(dependency)
	if !ok || !read {
		return nil
	}
	why, over := x.Exceeded(bl, b.cfg.Now())
	if !over {
		return nil
	}
	b.cfg.Metrics.backlogRefused(dependency)
	return Errorf(EUNAVAILABLE, "the %s backlog is over its bound (%s); nothing was done, retry later", dependency, why)
}

// AdmitQueue is Admit for the dependency that declares queue, whose bound
// is that queue's; work on a queue no dependency declares is admitted.
func (b *BacklogBounds) AdmitQueue(queue string) error {
	for _, d := range Dependencies() {
		if d.Queue == queue {
			return b.Admit(d.Name)
		}
	}
	return nil
}
