package web

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spillway/spillway/db"
)

// EventHub fans status changes out to this instance's live streams. Changes
// may be made by any instance's worker, so the hub follows them with one
// LISTEN connection rather than River's Subscribe, which sees only jobs this
// process worked.
type EventHub struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	mu   sync.Mutex
	subs map[uuid.UUID]map[chan struct{}]struct{}
}

// NewEventHub returns a hub on pool; call Run.
func NewEventHub(pool *pgxpool.Pool, log *slog.Logger) *EventHub {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &EventHub{pool: pool, log: log, subs: map[uuid.UUID]map[chan struct{}]struct{}{}}
}

// Subscribe returns a channel that is signalled when the operation
// changes, and a function to stop.
func (h *EventHub) Subscribe(id uuid.UUID) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	if h.subs[id] == nil {
		h.subs[id] = map[chan struct{}]struct{}{}
	}
	h.subs[id][ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.subs[id], ch)
		if len(h.subs[id]) == 0 {
			delete(h.subs, id)
		}
		h.mu.Unlock()
	}
}

// Run listens until ctx ends, reconnecting after a lost connection; each
// stream also re-reads on its own every few seconds, so a gap loses
// nothing, only delays it.
func (h *EventHub) Run(ctx context.Context) {
	for ctx.Err() == nil {
		err := db.Listen(ctx, h.pool, db.OperationChannel, h.signalAll, h.signal)
		if ctx.Err() != nil {
			return
		}
		h.log.Warn("operation listener lost; streams poll until it is back", "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (h *EventHub) signal(payload string) {
	id, err := uuid.Parse(payload)
	if err != nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs[id] {
		select {
		case ch <- struct{}{}:
		default: // already signalled; the stream will read everything new
		}
	}
}

func (h *EventHub) signalAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, chs := range h.subs {
		for ch := range chs {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}
