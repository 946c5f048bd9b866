package jobs

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/spillway/spillway/app"
)

// QueueGate pauses a River queue while its dependency's breaker is open
// and resumes it when the breaker lets calls through again. Without it,
// every waiting job would be fetched and snoozed at each probe time; with
// a backlog of thousands that churn competes with the request path for the
// database exactly when captures need it most. Pausing is global in River,
// as the breaker is, and every instance applies the state it sees, so a
// crashed instance cannot leave the queue paused.
type QueueGate struct {
	client *river.Client[pgx.Tx]
	queue  string
	log    *slog.Logger
	want   chan bool
}

// NewQueueGate returns a gate for queue on client.
func NewQueueGate(client *river.Client[pgx.Tx], queue string, log *slog.Logger) *QueueGate {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &QueueGate{client: client, queue: queue, log: log, want: make(chan bool, 1)}
}

// BreakerChanged records the breaker's new state; it never blocks.
func (g *QueueGate) BreakerChanged(b app.Breaker) {
	paused := b.State == app.BreakerOpen || b.State == app.BreakerForcedOpen
	for {
		select {
		case g.want <- paused:
			return
		default:
			select { // drop the stale wish for the newer one
			case <-g.want:
			default:
			}
		}
	}
}

// Run applies the latest wished state until ctx ends, retrying each
// second while the database refuses.
func (g *QueueGate) Run(ctx context.Context) {
	var want, applied *bool
	retry := time.NewTicker(time.Second)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-g.want:
			want = &p
		case <-retry.C:
		}
		if want == nil || (applied != nil && *applied == *want) {
			continue
		}
		if err := g.apply(ctx, *want); err != nil {
			if ctx.Err() == nil {
				g.log.Warn("queue gate", "queue", g.queue, "paused", *want, "error", err)
			}
			continue
		}
		applied = want
	}
}

func (g *QueueGate) apply(ctx context.Context, paused bool) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if paused {
		return g.client.QueuePause(ctx, g.queue, nil)
	}
	return g.client.QueueResume(ctx, g.queue, nil)
}
