package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
)

// Stream timing: a comment every heartbeat keeps proxies from closing an
// idle stream; the re-read is the safety net under NOTIFY; a stream ends
// after maxStream and the client's EventSource reconnects with
// Last-Event-ID, losing nothing.
const (
	streamHeartbeat = 15 * time.Second
	streamReread    = 5 * time.Second
	maxStream       = 10 * time.Minute
)

// handleOperationEvents serves GET /api/v1/operations/{id}/events as
// server-sent events: every status change, from after Last-Event-ID.
func handleOperationEvents(pool *pgxpool.Pool, hub *EventHub) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		op, ok := loadOperation(w, r, pool)
		if !ok {
			return
		}
		id := op.ID
		last, resumed := lastEventID(r)
		// Subscribe before the first read, so a change between the two is
		// not missed.
		changed, stop, err := hub.Subscribe(r.Context(), id)
		if err != nil {
			writeProblem(w, r, problemFor(&app.Error{Code: app.EUNAVAILABLE, Message: "the stream could not start; retry later", Err: err}, 1))
			return
		}
		defer stop()

		rc := http.NewResponseController(w)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Accel-Buffering", "no")
		w.WriteHeader(http.StatusOK)
		fmt.Fprintf(w, "retry: 2000\n\n")

		heartbeat := time.NewTicker(streamHeartbeat)
		defer heartbeat.Stop()
		reread := time.NewTicker(streamReread)
		defer reread.Stop()
		end := time.After(maxStream)
		if !resumed {
			// Event 0 is the state the operation was created in, which is
			// not stored as an event (see migration 00013).
			writeEvent(w, id, 0, db.OperationEvent{Status: string(initialStatus(op)), At: op.CreatedAt})
		}
		for {
			evs, err := db.OperationEvents(r.Context(), pool, id, last)
			if err != nil {
				return // the client reconnects with Last-Event-ID
			}
			for _, e := range evs {
				writeEvent(w, id, e.ID, e)
				last = e.ID
			}
			if err := rc.Flush(); err != nil {
				return
			}
			select {
			case <-r.Context().Done():
				return
			case <-end:
				return
			case <-changed:
			case <-reread.C:
			case <-heartbeat.C:
				fmt.Fprint(w, ": ping\n\n")
			}
		}
	}
}

func writeEvent(w http.ResponseWriter, opID uuid.UUID, id int64, e db.OperationEvent) {
	data, _ := json.Marshal(struct {
		ID string `json:"id"`
		db.OperationEvent
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
