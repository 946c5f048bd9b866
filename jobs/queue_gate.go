package jobs

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
)

// QueueGate pauses a River queue while its dependency's breaker is open
// and resumes it when the breaker lets calls through again. Without it,
// every waiting job would be fetched and snoozed at each probe time; with
// a backlog of thousands that churn competes with the request path for the
// database exactly when captures need it most. Pausing is global in River,
// as the breaker is, and every instance re-asserts the state its breaker
// calls for on every poll, so neither a crashed instance nor a lost
// notification nor a stray manual pause can leave the queue in the wrong
// state for longer than a poll.
type QueueGate struct {
	cfg  QueueGateConfig
	kick chan struct{}
}

// QueueGateConfig wires a gate.
type QueueGateConfig struct {
	Client     *river.Client[pgx.Tx]
	Pool       *pgxpool.Pool
	Queue      string
	Breakers   *app.Breakers
	Dependency string
	// Poll is how often the queue's state is checked against the
	// breaker's; zero means every second.
	Poll   time.Duration
	Logger *slog.Logger
}

// NewQueueGate returns a gate; call Run.
func NewQueueGate(cfg QueueGateConfig) *QueueGate {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Poll = cmp.Or(cfg.Poll, time.Second)
	return &QueueGate{cfg: cfg, kick: make(chan struct{}, 1)}
}

// BreakerChanged asks for the state to be applied now; it never blocks.
func (g *QueueGate) BreakerChanged(app.Breaker) {
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

// Run keeps the queue as the breaker wants it until ctx ends.
func (g *QueueGate) Run(ctx context.Context) {
	t := time.NewTicker(g.cfg.Poll)
	defer t.Stop()
	for {
		if err := g.assert(ctx); err != nil && ctx.Err() == nil {
			g.cfg.Logger.Warn("queue gate", "queue", g.cfg.Queue, "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-g.kick:
		case <-t.C:
		}
	}
}

// assert compares the queue's pause state with what the breaker calls for
// and changes it when they differ.
func (g *QueueGate) assert(ctx context.Context) error {
	b, ok := g.cfg.Breakers.Get(g.cfg.Dependency)
	if !ok {
		return nil
	}
	want := b.State == app.BreakerOpen || b.State == app.BreakerForcedOpen
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	q, err := g.cfg.Client.QueueGet(ctx, g.cfg.Queue)
	if errors.Is(err, rivertype.ErrNotFound) {
		return nil // no producer has registered it yet; nothing to pause
	}
	if err != nil {
		return err
	}
	if paused := q.PausedAt != nil; paused == want {
		return nil
	}
	if want {
		return g.cfg.Client.QueuePause(ctx, g.cfg.Queue, nil)
	}
	// Jobs the breaker snoozed go back to their places before workers
	// fetch again, so the queue is worked in priority order whatever the
	// breaker did (and whenever it ended: an operator's return to auto
	// comes before the probe time the jobs were snoozed to).
	if err := db.ReleaseHeldJobs(ctx, g.cfg.Pool, g.cfg.Queue); err != nil {
		return err
	}
	return g.cfg.Client.QueueResume(ctx, g.cfg.Queue, nil)
}
