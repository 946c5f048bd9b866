package admin

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
)

// maxSelected bounds a "selected jobs" form.
const maxSelected = 1000

// jobRequest is an action and its argument, read from a form.
type jobRequest struct {
	Action   app.JobAction
	Priority int
}

func parseJobRequest(form url.Values) (jobRequest, error) {
	a, err := app.ParseJobAction(form.Get("action"))
	if err != nil {
		return jobRequest{}, err
	}
	req := jobRequest{Action: a}
	if a == app.ActionReprioritize {
		if req.Priority, err = app.ParsePriority(form.Get("new_priority")); err != nil {
			return req, err
		}
	}
	return req, nil
}

// describe is what the action did, for the message after it.
func (j jobRequest) describe(n int) string {
	jobs := "jobs"
	if n == 1 {
		jobs = "job"
	}
	switch j.Action {
	case app.ActionReprioritize:
		return fmt.Sprintf("Set priority %d on %d %s.", j.Priority, n, jobs)
	case app.ActionRetry:
		return fmt.Sprintf("Retrying %d %s now.", n, jobs)
	case app.ActionRunNow:
		return fmt.Sprintf("Made %d %s available to run now.", n, jobs)
	case app.ActionCancel:
		return fmt.Sprintf("Cancelled %d %s.", n, jobs)
	}
	return ""
}

func (j jobRequest) request(detail string) app.JobRequest {
	return app.JobRequest{Action: j.Action, Priority: j.Priority, Detail: detail}
}

// apply runs the action through the operator service and says what
// happened in words: what changed, what a lookup settled instead, and why
// anything was refused.
func (s *server) apply(r *http.Request, j jobRequest, ids []int64, detail string) (app.JobsResult, string, error) {
	res, err := s.operator.ApplyJobs(r.Context(), s.actor(r), j.request(detail), ids)
	if err != nil {
		return res, "", err
	}
	return res, j.describe(len(res.Changed)) + compensating(res.Compensating) + settledAndRefused(res.Settled, res.Refused), nil
}

// compensating tells the operator which cancels end later: an order is
// cancelled once its worker has undone what its steps did.
func compensating(jobs []app.JobRef) string {
	if n := len(jobs); n > 0 {
		return fmt.Sprintf(" %d of them %s: %s first, and %s cancelled once that is done "+
			"(or succeeded, if the last step had already gone through).", n,
			pluralWord(n, "is an order", "are orders"), pluralWord(n, "its worker undoes what its steps did", "their workers undo what their steps did"),
			pluralWord(n, "it ends", "they end"))
	}
	return ""
}

// settledAndRefused tells the operator about the jobs an action did not
// simply change.
func settledAndRefused(settled []app.JobRef, refused []app.JobRefusal) string {
	var b strings.Builder
	if n := len(settled); n > 0 {
		fmt.Fprintf(&b, " %d %s: the provider had already charged or declined it, so that outcome was recorded instead.",
			n, pluralWord(n, "job was settled", "jobs were settled"))
	}
	for i, f := range refused {
		if i == 5 {
			fmt.Fprintf(&b, " …and %d more refused for the same kind of reason.", len(refused)-i)
			break
		}
		fmt.Fprintf(&b, " Job %d was left as it was: %s", f.JobID, f.Reason)
	}
	return b.String()
}

// handleJobAction acts on the job of the page it was sent from.
func (s *server) handleJobAction(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	if err != nil {
		s.renderError(w, r, app.Errorf(app.ENOTFOUND, "There is no job %q.", chi.URLParam(r, "id")))
		return
	}
	j, err := parseJobRequest(r.PostForm)
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	res, msg, err := s.apply(r, j, []int64{id}, "")
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	if len(res.Changed)+len(res.Settled)+len(res.Refused) == 0 {
		msg = fmt.Sprintf("Nothing changed: the job is not in a state where %s applies (or already has it).", actionLabel(j.Action))
	}
	s.redirect(w, r, fmt.Sprintf("%s/jobs/%d", s.base, id), msg)
}

// handleSelectedAction acts on the jobs ticked in a list.
func (s *server) handleSelectedAction(w http.ResponseWriter, r *http.Request) {
	back := safeNext(s.base, r.PostForm.Get("return"))
	j, err := parseJobRequest(r.PostForm)
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	raw := r.PostForm["id"]
	if len(raw) == 0 {
		s.redirect(w, r, back, "Tick at least one job first.")
		return
	}
	if len(raw) > maxSelected {
		s.renderError(w, r, app.Errorf(app.EINVALID, "At most %d jobs can be selected; use “all matching” instead.", maxSelected))
		return
	}
	ids := make([]int64, 0, len(raw))
	for _, v := range raw {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			s.renderError(w, r, app.Errorf(app.EINVALID, "%q is not a job id.", v))
			return
		}
		ids = append(ids, id)
	}
	res, msg, err := s.apply(r, j, ids, "selected")
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	if skipped := len(ids) - len(res.Changed) - len(res.Settled) - len(res.Refused); skipped > 0 {
		msg += fmt.Sprintf(" %d left as they were (not in a state where %s applies, or already so).", skipped, actionLabel(j.Action))
	}
	s.redirect(w, r, back, msg)
}

type bulkData struct {
	Filter   jobFilter
	Request  jobRequest
	Eligible int
	Matching int
	Query    string
	Batch    int // jobs per transaction when confirmed
}

// handleBulkConfirm shows how many jobs an action on everything matching
// the filter would touch, and asks to confirm.
func (s *server) handleBulkConfirm(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, err := parseJobFilter(q)
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	j, err := parseJobRequest(q)
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	now := s.now()
	d := bulkData{Filter: f, Request: j, Query: f.Query().Encode(), Batch: s.operator.FilterBatch()}
	if d.Matching, err = db.CountAdminJobs(r.Context(), s.cfg.Pool, f.domain(), nil, now); err != nil {
		s.renderError(w, r, err)
		return
	}
	if d.Eligible, err = db.CountAdminJobs(r.Context(), s.cfg.Pool, f.domain(), j.Action.States(), now); err != nil {
		s.renderError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, bulkPage(s.page(r, "Confirm", "jobs"), d))
}

// handleBulkAction applies the action to every job matching the filter,
// as the operator service runs it again on the server (in batches; see
// app.Operator.ApplyToFilter).
func (s *server) handleBulkAction(w http.ResponseWriter, r *http.Request) {
	f, err := parseJobFilter(r.PostForm)
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	j, err := parseJobRequest(r.PostForm)
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	res, err := s.operator.ApplyToFilter(r.Context(), s.actor(r), j.request("all matching: "+f.String()), f.domain())
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	s.redirect(w, r, s.base+"/jobs?"+f.Query().Encode(),
		j.describe(res.Changed)+" (all matching: "+f.String()+")"+compensating(res.Compensating)+settledAndRefused(res.Settled, res.Refused))
}
