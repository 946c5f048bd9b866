package admin

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/riverqueue/river/rivertype"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
)

const pageSize = 50

type jobsData struct {
	Filter jobFilter
	Query  string // the filter as a query string, tab included
	Jobs   []db.AdminJob
	Count  int
	// Estimated is true when Count is the planner's estimate ("about").
	Estimated bool
	// ListNote and CountNote say the list or the count could not be read
	// in time ("" when it was).
	ListNote  string
	CountNote string
	Next      string // query string of the next page; "" on the last
	Withins   []time.Duration
	Actions   []app.JobAction
	// Kinds and Dependencies are the kind and dependency filters' choices.
	Kinds        []string
	Dependencies []string
	// HighValue is HIGH_VALUE_AMOUNT: rows at or above it are marked; 0
	// marks none.
	HighValue int64
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
	d := jobsData{Filter: f, Query: f.Query().Encode(), Withins: withins, HighValue: s.cfg.HighValueAmount,
		Actions: []app.JobAction{app.ActionReprioritize, app.ActionRetry, app.ActionRunNow, app.ActionCancel}}
	var jobs []db.AdminJob
	if d.ListNote, err = s.section(r, func(q db.Querier) (err error) {
		jobs, err = db.ListAdminJobs(ctx, q, f.domain(), f.Tab.order(), after, pageSize+1, now)
		return err
	}); err != nil {
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
	if d.Kinds, err = s.jobKinds(r, f.Kind); err != nil {
		s.renderError(w, r, err)
		return
	}
	for _, dep := range app.Dependencies() {
		d.Dependencies = append(d.Dependencies, dep.Name)
	}
	// Exact up to db.AdminCountCap, the planner's estimate past it.
	if d.CountNote, err = s.section(r, func(q db.Querier) (err error) {
		d.Count, d.Estimated, err = db.CountAdminJobsBounded(ctx, q, f.domain(), db.AdminCountCap, now)
		return err
	}); err != nil {
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
	s.render(w, r, http.StatusOK, jobPage(p, jobView{AdminJobDetail: d, HighValue: s.cfg.HighValueAmount}))
}

// jobView is what the job page shows: the job, and the bound above which
// its operation is high value.
type jobView struct {
	*db.AdminJobDetail
	HighValue int64
}

// maxKinds bounds the kind filter's choices read from River.
const maxKinds = 100

// jobKinds are the kind filter's choices: Spillway's own kinds first, then
// any other kind River holds, then the current filter's kind if it is
// none of those (so an old link still shows what it filters by).
func (s *server) jobKinds(r *http.Request, current string) ([]string, error) {
	// Kinds not read in time leave the filter with the known kinds only.
	var found []string
	if _, err := s.section(r, func(q db.Querier) (err error) {
		found, err = db.AdminJobKinds(r.Context(), q, maxKinds)
		return err
	}); err != nil {
		return nil, err
	}
	kinds := app.JobKinds()
	for _, k := range append(found, current) {
		if k != "" && !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
	}
	return kinds, nil
}

// highValue reports whether an operation's amount (an order's total) is at
// or above HIGH_VALUE_AMOUNT, the bound the runner keeps sync slots and
// priority 2 for.
func highValue(amount, bound int64) bool { return bound > 0 && amount >= bound }

// stepSummary is an order's progress in a few words: how many of its
// steps are done and, while it is not, the step that stands: "1/3 steps
// done; reserve:b processing". "" for a job without steps.
func stepSummary(steps []app.Step) string {
	if len(steps) == 0 {
		return ""
	}
	done := 0
	for _, st := range steps {
		if st.Status == app.StepSucceeded {
			done++
		}
	}
	out := fmt.Sprintf("%d/%d steps done", done, len(steps))
	if st, ok := standingStep(steps); ok {
		out += "; " + st.Name + " " + string(st.Status)
		if st.OutcomeUnknown {
			out += " (outcome unknown)"
		}
	}
	return out
}

// standingStep is the step an order waits on: one whose outcome is
// unknown, else one under way, else the one that ended it badly, else the
// next pending. None when every step succeeded or was released.
func standingStep(steps []app.Step) (app.Step, bool) {
	for _, pick := range []func(app.Step) bool{
		func(st app.Step) bool { return st.OutcomeUnknown },
		func(st app.Step) bool { return st.Status == app.StepProcessing },
		func(st app.Step) bool { return st.Status == app.StepDeclined || st.Status == app.StepFailed },
		func(st app.Step) bool { return st.Status == app.StepPending },
	} {
		for _, st := range steps {
			if pick(st) {
				return st, true
			}
		}
	}
	return app.Step{}, false
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
