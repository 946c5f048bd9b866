package admin

import (
	"net/http"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
)

type orphansData struct {
	Orphans []app.OrphanCharge
	Open    int
	Refund  bool
}

// handleOrphans lists the charges the provider holds that no operation of
// ours accounts for, as the orphan sweep found them.
func (s *server) handleOrphans(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	d := orphansData{Refund: s.cfg.OrphanRefund}
	var err error
	if d.Orphans, err = db.ListOrphans(ctx, s.cfg.Pool, "", 500); err != nil {
		s.renderError(w, r, err)
		return
	}
	if d.Open, err = db.CountOrphans(ctx, s.cfg.Pool, app.OrphanOpen); err != nil {
		s.renderError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, orphansPage(s.page(r, "Orphan charges", "orphans"), d))
}
