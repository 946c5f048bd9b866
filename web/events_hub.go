package web

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/spillway/spillway/app"
)

// EventHub fans status changes out to this instance's live streams. Changes
// may be made by any instance's worker, so the hub follows them with one
// LISTEN connection rather than River's Subscribe, which sees only jobs this
// process worked.
//
// Close ends every stream, for shutdown; see Close for the order.
type EventHub struct {
	watcher   app.OperationWatcher
	log       *slog.Logger
	instance  string
	mu        sync.Mutex
	subs      map[uuid.UUID]map[chan struct{}]struct{}
	closed    chan struct{}
	closeOnce sync.Once
}

// ErrHubClosed is Subscribe's answer once the hub is closed.
var ErrHubClosed = errors.New("event hub closed: the instance is shutting down")

// watchTTL is how long a watch lasts unless refreshed; Run refreshes at a
// third of it.
const watchTTL = 90 * time.Second

// NewEventHub returns a hub following changes through watcher (db.Store
// on the pool); call Run.
func NewEventHub(watcher app.OperationWatcher, log *slog.Logger) *EventHub {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &EventHub{watcher: watcher, log: log, instance: uuid.NewString(), subs: map[uuid.UUID]map[chan struct{}]struct{}{},
		closed: make(chan struct{})}
}

// Close ends every open stream now and answers new ones 503 with
// Retry-After. A stream is the one request http.Server.Shutdown would
// otherwise wait for until its deadline; ended, it lets Shutdown finish,
// and the browser's EventSource reconnects with Last-Event-ID, losing
// nothing. Close is safe to call more than once and from any goroutine.
//
// The order on SIGTERM: register Close with the server when it is built,
//
//	srv.RegisterOnShutdown(hub.Close)
//
// so that srv.Shutdown(ctx) first closes the listeners (a reconnect then
// reaches another instance, or retries after the stream's retry: 2000)
// and only then ends the streams; Shutdown's wait for active requests
// then sees the stream handlers return. Calling hub.Close() yourself just
// before srv.Shutdown works too, but leaves a moment in which a reconnect
// still reaches this instance and is answered 503, which EventSource does
// not retry. Cancel the ctx given to Run after Shutdown returns.
func (h *EventHub) Close() {
	h.closeOnce.Do(func() { close(h.closed) })
}

// done is closed when the hub is.
func (h *EventHub) done() <-chan struct{} { return h.closed }

// isClosed reports whether Close was called.
func (h *EventHub) isClosed() bool {
	select {
	case <-h.closed:
		return true
	default:
		return false
	}
}

// Subscribe returns a channel that is signalled when the operation
// changes, and a function to stop. The first stream for an operation on
// this instance registers the watch that makes its changes announced.
func (h *EventHub) Subscribe(ctx context.Context, id uuid.UUID) (<-chan struct{}, func(), error) {
	if h.isClosed() {
		return nil, nil, ErrHubClosed
	}
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	first := h.subs[id] == nil
	if first {
		h.subs[id] = map[chan struct{}]struct{}{}
	}
	h.subs[id][ch] = struct{}{}
	h.mu.Unlock()
	stop := func() {
		h.mu.Lock()
		delete(h.subs[id], ch)
		last := len(h.subs[id]) == 0
		if last {
			delete(h.subs, id)
		}
		h.mu.Unlock()
		if last {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			_ = h.watcher.UnwatchOperation(ctx, id, h.instance) // else it expires
		}
	}
	if first {
		if err := h.watcher.WatchOperation(ctx, id, h.instance, watchTTL); err != nil {
			stop()
			return nil, nil, err
		}
	}
	return ch, stop, nil
}

// refreshWatches keeps this instance's watches alive.
func (h *EventHub) refreshWatches(ctx context.Context) {
	h.mu.Lock()
	ids := make([]uuid.UUID, 0, len(h.subs))
	for id := range h.subs {
		ids = append(ids, id)
	}
	h.mu.Unlock()
	for _, id := range ids {
		if err := h.watcher.WatchOperation(ctx, id, h.instance, watchTTL); err != nil && ctx.Err() == nil {
			h.log.Warn("refresh watch", "operation_id", id, "error", err)
		}
	}
}

// Run listens until ctx ends, reconnecting after a lost connection; each
// stream also re-reads on its own every few seconds, so a gap loses
// nothing, only delays it.
func (h *EventHub) Run(ctx context.Context) {
	go func() {
		t := time.NewTicker(watchTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				h.refreshWatches(ctx)
			}
		}
	}()
	for ctx.Err() == nil {
		err := h.watcher.ListenOperations(ctx, h.signalAll, h.signal)
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
