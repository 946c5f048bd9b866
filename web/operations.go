package web

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/spillway/spillway/app"
)

// handleGetOperation serves GET /api/v1/operations/{id}.
func handleGetOperation(ops app.OperationReader) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if op, ok := loadOperation(w, r, ops); ok {
			writeJSON(w, http.StatusOK, op.Document())
		}
	}
}

// loadOperation reads the operation named in the path, or answers 404 or
// 503 and returns false.
func loadOperation(w http.ResponseWriter, r *http.Request, ops app.OperationReader) (*app.Operation, bool) {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		writeProblem(w, r, problemNotFound("no operation has that id"))
		return nil, false
	}
	op, err := ops.GetOperation(r.Context(), id)
	if app.ErrorCode(err) == app.ENOTFOUND {
		writeProblem(w, r, problemNotFound("no operation has that id"))
		return nil, false
	}
	if err != nil {
		writeProblem(w, r, problemFor(&app.Error{Code: app.EUNAVAILABLE, Message: "the operation could not be read; retry later", Err: err}, 1))
		return nil, false
	}
	return op, true
}

// Pinger reports whether the database answers; db.Store is one.
type Pinger interface {
	Ping(ctx context.Context) error
}

// handleHealth answers 200 when the database does.
func handleHealth(db Pinger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := db.Ping(r.Context()); err != nil {
			writeProblem(w, r, problemFor(&app.Error{Code: app.EUNAVAILABLE, Message: "the database is not answering", Err: err}, 1))
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}
}
