package admin

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river/rivertype"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
)

// handleQueuePause pauses or resumes a River queue and records it, in one
// transaction (River's QueuePauseTx notifies clients on commit).
func (s *server) handleQueuePause(pause bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		name := chi.URLParam(r, "name")
		verb, action := "resumed", "queue.resume"
		if pause {
			verb, action = "paused", "queue.pause"
		}
		if dep, ok := s.cfg.GatedQueues[name]; ok {
			s.renderError(w, r, app.Errorf(app.ECONFLICT, "The %s queue follows the %s breaker, which pauses it while open "+
				"and resumes it when calls go through again. To hold it, force the %s breaker open on the Breakers page.", name, dep, dep))
			return
		}
		err := s.inTx(ctx, func(tx pgx.Tx) error {
			var pausedAt *time.Time
			err := tx.QueryRow(ctx, `SELECT paused_at FROM river_queue WHERE name = $1 FOR UPDATE`, name).Scan(&pausedAt)
			if errors.Is(err, pgx.ErrNoRows) {
				return app.Errorf(app.ENOTFOUND, "There is no queue %q that a worker has registered.", name)
			}
			if err != nil {
				return err
			}
			if pause {
				err = s.cfg.River.QueuePauseTx(ctx, tx, name, nil)
			} else {
				err = s.cfg.River.QueueResumeTx(ctx, tx, name, nil)
			}
			if errors.Is(err, rivertype.ErrNotFound) {
				return app.Errorf(app.ENOTFOUND, "There is no queue %q.", name)
			}
			if err != nil {
				return err
			}
			return db.InsertAudit(ctx, tx, s.audit(r, userFrom(ctx), action, "queue "+name,
				map[string]bool{"paused": pausedAt != nil}, map[string]bool{"paused": pause}, ""))
		})
		if err != nil {
			s.renderError(w, r, err)
			return
		}
		s.redirect(w, r, s.base+"/", fmt.Sprintf("Queue %s %s.", name, verb))
	}
}
