package admin

import (
	"net/http"
	"strconv"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
)

func (s *server) handleAudit(w http.ResponseWriter, r *http.Request) {
	var before int64
	if v := r.URL.Query().Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			s.renderError(w, r, app.FieldErrorf("before", "%q is not an audit entry id", v))
			return
		}
		before = n
	}
	entries, err := db.ListAudit(r.Context(), s.cfg.Pool, before, pageSize+1)
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	next := ""
	if len(entries) > pageSize {
		entries = entries[:pageSize]
		next = strconv.FormatInt(entries[len(entries)-1].ID, 10)
	}
	p := s.page(r, "Audit log", "audit")
	if before == 0 {
		p.Live = 10
	}
	s.render(w, r, http.StatusOK, auditPage(p, entries, next))
}
