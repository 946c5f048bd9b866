package admin

import (
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5"
)

// handleQueuePause pauses or resumes a River queue (app.Operator).
func (s *server) handleQueuePause(pause bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := chi.URLParam(r, "name")
		act, verb := s.operator.ResumeQueue, "resumed"
		if pause {
			act, verb = s.operator.PauseQueue, "paused"
		}
		if err := act(r.Context(), s.actor(r), name); err != nil {
			s.renderError(w, r, err)
			return
		}
		s.redirect(w, r, s.base+"/", fmt.Sprintf("Queue %s %s.", name, verb))
	}
}
