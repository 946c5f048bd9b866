package web

import (
	"errors"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
)

// handleGetOperation serves GET /api/v1/operations/{id}.
func handleGetOperation(pool *pgxpool.Pool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if op, ok := loadOperation(w, r, pool); ok {
			writeJSON(w, http.StatusOK, op.Document())
		}
	}
}

// loadOperation reads the operation named in the path, or answers 404 or
// 503 and returns false.
func loadOperation(w http.ResponseWriter, r *http.Request, pool *pgxpool.Pool) (*app.Operation, bool) {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		writeProblem(w, r, problemNotFound("no operation has that id"))
		return nil, false
	}
	op, err := db.GetOperation(r.Context(), pool, id)
	if errors.Is(err, db.ErrNotFound) {
		writeProblem(w, r, problemNotFound("no operation has that id"))
		return nil, false
	}
	if err != nil {
		writeProblem(w, r, problemFor(&app.Error{Code: app.EUNAVAILABLE, Message: "the operation could not be read; retry later", Err: err}, 1))
		return nil, false
	}
	return op, true
}

// handleHealth answers 200 when the database does.
func handleHealth(pool *pgxpool.Pool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := pool.Ping(r.Context()); err != nil {
			writeProblem(w, r, problemFor(&app.Error{Code: app.EUNAVAILABLE, Message: "the database is not answering", Err: err}, 1))
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}
}
