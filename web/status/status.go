// Package status serves the customer's live status page for an operation:
// server-rendered, readable without JavaScript, following the operation's
// event stream when JavaScript is on.
package status

import (
	"context"
	_ "embed"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/spillway/spillway/app"
)

//go:embed live.js
var liveJS []byte

// Model is what the page shows.
type Model struct {
	ID, Status, StatusText, Amount, Description, Updated, StreamURL string
	Terminal                                                        bool
}

var statusText = map[app.Status]string{
	app.StatusQueued: "Queued, we will finish it shortly", app.StatusProcessing: "Processing",
	app.StatusSucceeded: "Succeeded", app.StatusDeclined: "Declined", app.StatusFailed: "Failed",
	app.StatusCancelled: "Cancelled",
}

// NewModel turns an operation into the page's view.
func NewModel(op *app.Operation) Model {
	text := statusText[op.Status]
	if op.Status == app.StatusProcessing && op.Reason == app.ReasonOutcomeUnknown {
		// Never "failed" while we do not know: say what we are doing.
		text = "Processing: we are confirming with the payment provider whether it went through. You will not be charged twice."
	}
	return Model{
		ID: op.ID.String(), Status: string(op.Status), StatusText: text,
		Amount: app.FormatAmount(op.Payment.Amount, op.Payment.Currency), Description: op.Payment.Description,
		Updated: op.UpdatedAt.UTC().Format(time.RFC1123), Terminal: op.Status.Terminal(),
		StreamURL: "/api/v1/operations/" + op.ID.String() + "/events",
	}
}

// Routes returns the page and its script.
func Routes(ops app.OperationReader) http.Handler {
	r := chi.NewRouter()
	r.Get("/live.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		_, _ = w.Write(liveJS)
	})
	r.Get("/{id}", func(w http.ResponseWriter, r *http.Request) {
		op, err := load(r.Context(), ops, chi.URLParam(r, "id"))
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'unsafe-inline'")
		w.Header().Set("Cache-Control", "no-store")
		if err != nil {
			status, msg := http.StatusServiceUnavailable, "We could not look this payment up just now. Please try again in a moment."
			if app.ErrorCode(err) == app.ENOTFOUND {
				status, msg = http.StatusNotFound, "We have no payment with that reference."
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(status)
			_ = ErrorPage(msg).Render(r.Context(), w)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = Page(NewModel(op)).Render(r.Context(), w)
	})
	return r
}

func load(ctx context.Context, ops app.OperationReader, raw string) (*app.Operation, error) {
	id, err := uuid.Parse(raw)
	if err != nil {
		return nil, app.Errorf(app.ENOTFOUND, "no payment has that reference")
	}
	return ops.GetOperation(ctx, id)
}
