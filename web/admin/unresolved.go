package admin

import (
	"cmp"
	"fmt"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
)

// unresolvedLimit bounds the unresolved page; more is a pager's job, but
// this many open questions is an incident of its own.
const unresolvedLimit = 200

type unresolvedData struct {
	After time.Duration
	Ops   []*app.Operation
	Total int
}

// handleUnresolved lists the operations whose outcome the provider has not
// settled for longer than RECONCILE_AFTER: each may have been charged, and
// only an operator who looked at the provider's side can say.
func (s *server) handleUnresolved(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	cutoff := s.now().Add(-s.reconcileAfter())
	d := unresolvedData{After: s.reconcileAfter()}
	var err error
	if d.Ops, err = db.ListUnresolved(ctx, s.cfg.Pool, cutoff, unresolvedLimit); err != nil {
		s.renderError(w, r, err)
		return
	}
	if d.Total, err = db.CountUnresolved(ctx, s.cfg.Pool, cutoff); err != nil {
		s.renderError(w, r, err)
		return
	}
	p := s.page(r, "Unresolved operations", "unresolved")
	p.Flash = s.takeFlash(w, r)
	s.render(w, r, http.StatusOK, unresolvedPage(p, d))
}

// handleResolve records an operator's verdict on one operation.
func (s *server) handleResolve(w http.ResponseWriter, r *http.Request) {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		s.renderError(w, r, app.Errorf(app.ENOTFOUND, "There is no operation %q.", chi.URLParam(r, "id")))
		return
	}
	req := app.ResolveRequest{OperationID: id, Outcome: app.Resolution(r.PostForm.Get("outcome")),
		Reason: r.PostForm.Get("reason"), ProviderRef: r.PostForm.Get("provider_ref")}
	op, err := s.operator.Resolve(r.Context(), s.actor(r), req)
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	s.redirect(w, r, s.base+"/operations/unresolved", fmt.Sprintf("Operation %s recorded as %s.", op.ID, op.Status))
}

func (s *server) reconcileAfter() time.Duration { return cmp.Or(s.cfg.ReconcileAfter, 30*time.Minute) }
