package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
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
		id, err := uuid.Parse(chi.URLParam(r, "id"))
		if err != nil {
			writeProblem(w, r, problemNotFound("no operation has that id"))
			return
		}
		if _, err := db.GetOperation(r.Context(), pool, id); err != nil {
			if errors.Is(err, db.ErrNotFound) {
				writeProblem(w, r, problemNotFound("no operation has that id"))
			} else {
				writeProblem(w, r, problemFor(&app.Error{Code: app.EUNAVAILABLE, Message: "the operation could not be read; retry later", Err: err}, 1))
			}
			return
		}
		last := lastEventID(r)
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
		for {
			evs, err := db.OperationEvents(r.Context(), pool, id, last)
			if err != nil {
				return // the client reconnects with Last-Event-ID
			}
			for _, e := range evs {
				data, _ := json.Marshal(struct {
					ID string `json:"id"`
					db.OperationEvent
				}{id.String(), e})
				fmt.Fprintf(w, "id: %d\nevent: status\ndata: %s\n\n", e.ID, data)
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

func lastEventID(r *http.Request) int64 {
	s := r.Header.Get("Last-Event-ID")
	if s == "" {
		s = r.URL.Query().Get("last_event_id")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}
