package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/spillway/spillway/app"
)

// Stream timing: a comment every heartbeat keeps proxies from closing an
// idle stream; the re-read is the safety net under NOTIFY; a stream ends
// after maxStream and the client's EventSource reconnects with
// Last-Event-ID, losing nothing.
const (
	defaultStreamHeartbeat    = 15 * time.Second
	defaultStreamWriteTimeout = 10 * time.Second
	defaultMaxStreams         = 1000
	streamReread              = 5 * time.Second
	maxStream                 = 10 * time.Minute
)

// streamLimits is how this instance runs its event streams. Every stream
// holds a goroutine, a connection and a LISTEN subscriber, so their number
// is capped, each write is bounded, and a shutdown ends them all.
type streamLimits struct {
	heartbeat    time.Duration
	writeTimeout time.Duration
	retryAfter   int
	max          int64
	open         atomic.Int64
}

func newStreamLimits(cfg Config) *streamLimits {
	l := &streamLimits{heartbeat: cfg.StreamHeartbeat, writeTimeout: cfg.StreamWriteTimeout,
		retryAfter: cfg.RetryAfterSeconds, max: int64(cfg.MaxStreams)}
	if l.heartbeat <= 0 {
		l.heartbeat = defaultStreamHeartbeat
	}
	if l.writeTimeout <= 0 {
		l.writeTimeout = defaultStreamWriteTimeout
	}
	if l.max <= 0 {
		l.max = defaultMaxStreams
	}
	return l
}

// acquire counts a stream in, unless the instance already has its cap.
func (l *streamLimits) acquire() bool {
	if l.open.Add(1) > l.max {
		l.open.Add(-1)
		return false
	}
	return true
}

func (l *streamLimits) release() { l.open.Add(-1) }

// refuse answers 503 with Retry-After; the client's next try may reach
// another instance, or this one with room again.
func (l *streamLimits) refuse(w http.ResponseWriter, r *http.Request, why string, err error) {
	writeProblem(w, r, problemFor(&app.Error{Code: app.EUNAVAILABLE, Message: why, Err: err}, l.retryAfter))
}

// handleOperationEvents serves GET /api/v1/operations/{id}/events as
// server-sent events: every status change, from after Last-Event-ID.
func handleOperationEvents(ops app.OperationReader, hub *EventHub, limits *streamLimits) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// Refused before any work: a stream that will not be opened costs
		// no database read.
		if hub.isClosed() {
			limits.refuse(w, r, "this instance is shutting down; reconnect", ErrHubClosed)
			return
		}
		if !limits.acquire() {
			limits.refuse(w, r, "this instance has as many open streams as it serves; retry later", nil)
			return
		}
		defer limits.release()
		op, ok := loadOperation(w, r, ops)
		if !ok {
			return
		}
		id := op.ID
		last, resumed := lastEventID(r)
		// Subscribe before the first read, so a change between the two is
		// not missed.
		changed, stop, err := hub.Subscribe(r.Context(), id)
		if errors.Is(err, ErrHubClosed) {
			limits.refuse(w, r, "this instance is shutting down; reconnect", err)
			return
		}
		if err != nil {
			writeProblem(w, r, problemFor(&app.Error{Code: app.EUNAVAILABLE, Message: "the stream could not start; retry later", Err: err}, 1))
			return
		}
		defer stop()

		rc := http.NewResponseController(w)
		// The server's ReadTimeout is for reading the request, not for the
		// life of the response: were it left on the connection it would
		// fire mid-stream and cancel r.Context(). net/http clears it itself
		// once a bodiless request is read; clearing it here keeps that so
		// whatever the request and the server. The write deadlines bound a
		// stream instead.
		_ = rc.SetReadDeadline(time.Time{})
		// Each batch of writes gets its own deadline, which also replaces
		// any server WriteTimeout: a client that stops reading fills the
		// socket buffers, and the write that would block then fails rather
		// than hold this goroutine and the connection forever. A writer
		// without deadlines (not the net/http server) is written as is.
		bound := func() bool {
			err := rc.SetWriteDeadline(time.Now().Add(limits.writeTimeout))
			return err == nil || errors.Is(err, http.ErrNotSupported)
		}
		if !bound() {
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Accel-Buffering", "no")
		w.WriteHeader(http.StatusOK)
		fmt.Fprintf(w, "retry: 2000\n\n")

		heartbeat := time.NewTicker(limits.heartbeat)
		defer heartbeat.Stop()
		reread := time.NewTicker(streamReread)
		defer reread.Stop()
		end := time.NewTimer(maxStream)
		defer end.Stop()
		if !resumed {
			// Event 0 is the state the operation was created in, which is
			// not stored as an event (see migration 00013).
			writeEvent(w, id, 0, app.OperationEvent{Status: string(initialStatus(op)), At: op.CreatedAt})
		}
		// A heartbeat only writes; the database is read on a change, on
		// the re-read tick and first.
		read, ping := true, false
		for {
			var evs []app.OperationEvent
			if read {
				if evs, err = ops.OperationEvents(r.Context(), id, last); err != nil {
					return // the client reconnects with Last-Event-ID
				}
			}
			if !bound() {
				return
			}
			if ping {
				fmt.Fprint(w, ": ping\n\n")
			}
			for _, e := range evs {
				writeEvent(w, id, e.ID, e)
				last = e.ID
			}
			if err := rc.Flush(); err != nil {
				return
			}
			read, ping = false, false
			select {
			case <-r.Context().Done():
				return
			case <-hub.done():
				return // the client reconnects, to another instance
			case <-end.C:
				return
			case <-changed:
				read = true
			case <-reread.C:
				read = true
			case <-heartbeat.C:
				ping = true
			}
		}
	}
}

func writeEvent(w http.ResponseWriter, opID uuid.UUID, id int64, e app.OperationEvent) {
	data, _ := json.Marshal(struct {
		ID string `json:"id"`
		app.OperationEvent
	}{opID.String(), e})
	fmt.Fprintf(w, "id: %d\nevent: status\ndata: %s\n\n", id, data)
}

// initialStatus is the status an operation was created with: requests
// finished synchronously are created in their final status, captured ones
// queued.
func initialStatus(op *app.Operation) app.Status {
	if op.Mode == app.ModeSync {
		return op.Status
	}
	return app.StatusQueued
}

// lastEventID is the client's Last-Event-ID, and whether it sent one.
func lastEventID(r *http.Request) (int64, bool) {
	s := r.Header.Get("Last-Event-ID")
	if s == "" {
		s = r.URL.Query().Get("last_event_id")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}
