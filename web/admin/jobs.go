package admin

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/riverqueue/river/rivertype"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
)

const pageSize = 50

type jobsData struct {
	Filter  jobFilter
	Query   string // the filter as a query string, tab included
	Jobs    []db.AdminJob
	Count   int
	Next    string // query string of the next page; "" on the last
	Withins []time.Duration
	Actions []app.JobAction
}

// listURL is the jobs page for a filter with extra parameters.
func (d jobsData) tabQuery(tab JobTab) string {
	f := d.Filter
	f.Tab = tab
	return f.Query().Encode()
}

func (s *server) handleJobs(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	f, err := parseJobFilter(q)
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	after, err := db.ParseJobCursor(q.Get("after"))
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	now := s.now()
	d := jobsData{Filter: f, Query: f.Query().Encode(), Withins: withins,
		Actions: []app.JobAction{app.ActionReprioritize, app.ActionRetry, app.ActionRunNow, app.ActionCancel}}
	jobs, err := db.ListAdminJobs(ctx, s.cfg.Pool, f.domain(), f.Tab.order(), after, pageSize+1, now)
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	if len(jobs) > pageSize {
		jobs = jobs[:pageSize]
		last := jobs[len(jobs)-1]
		nq := f.Query()
		nq.Set("after", db.JobCursor{Priority: last.Priority, ScheduledAt: last.ScheduledAt, ID: last.ID}.String())
		d.Next = nq.Encode()
	}
	d.Jobs = jobs
	if d.Count, err = db.CountAdminJobs(ctx, s.cfg.Pool, f.domain(), nil, now); err != nil {
		s.renderError(w, r, err)
		return
	}
	p := s.page(r, "Jobs", "jobs")
	p.Flash = s.takeFlash(w, r)
	if after == nil {
		p.Live = 5 // later pages would shift under the reader
	}
	s.render(w, r, http.StatusOK, jobsPage(p, d))
}

func (s *server) handleJob(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	if err != nil {
		s.renderError(w, r, app.Errorf(app.ENOTFOUND, "There is no job %q.", chi.URLParam(r, "id")))
		return
	}
	d, err := db.GetAdminJob(r.Context(), s.cfg.Pool, id)
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	p := s.page(r, "Job "+strconv.FormatInt(id, 10), "jobs")
	p.Flash, p.Live = s.takeFlash(w, r), 5
	s.render(w, r, http.StatusOK, jobPage(p, d))
}

// jobActionsFor are the actions a job in this state can take.
func jobActionsFor(state rivertype.JobState) []app.JobAction {
	var out []app.JobAction
	for _, a := range []app.JobAction{app.ActionReprioritize, app.ActionRunNow, app.ActionRetry, app.ActionCancel} {
		for _, st := range a.States() {
			// Cancel locks running jobs only to refuse them with the reason;
			// the page says why instead of offering the button.
			if st == state && !(a == app.ActionCancel && state == rivertype.JobStateRunning) {
				out = append(out, a)
				break
			}
		}
	}
	return out
}

func hasAction(as []app.JobAction, a app.JobAction) bool {
	for _, x := range as {
		if x == a {
			return true
		}
	}
	return false
}
