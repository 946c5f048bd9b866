package admin

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
)

// bulkBatch is how many jobs one transaction of a bulk action changes:
// small enough to hold row locks briefly, large enough to be quick.
const bulkBatch = 500

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

func (j jobRequest) after() any {
	switch j.Action {
	case app.ActionReprioritize:
		return map[string]int{"priority": j.Priority}
	case app.ActionCancel:
		return map[string]string{"state": "cancelled (running jobs: cancel requested)"}
	}
	return map[string]string{"state": "available"}
}

// applyTx applies the action to those of ids in a state it applies to,
// inside tx, and writes one audit entry for them. It returns the jobs it
// changed as they were before.
func (s *server) applyTx(ctx context.Context, tx pgx.Tx, r *http.Request, j jobRequest, ids []int64, detail string) ([]db.JobBefore, error) {
	before, err := db.LockJobsTx(ctx, tx, ids, j.Action.States())
	if err != nil {
		return nil, err
	}
	if j.Action == app.ActionReprioritize {
		before = keep(before, func(b db.JobBefore) bool { return b.Priority != j.Priority })
	}
	if len(before) == 0 {
		return nil, nil
	}
	ids = idsOf(before, nil)
	now := s.now()
	switch j.Action {
	case app.ActionReprioritize:
		if _, err := db.SetJobPriorityTx(ctx, tx, ids, j.Priority, now); err != nil {
			return nil, err
		}
	case app.ActionRetry, app.ActionRunNow:
		// River's JobRetry makes a job available now (scheduled_at moves up
		// only if it was in the future) and gives an exhausted job one more
		// attempt.
		for _, id := range ids {
			if _, err := s.cfg.River.JobRetryTx(ctx, tx, id); err != nil {
				return nil, fmt.Errorf("retry job %d: %w", id, err)
			}
		}
		if j.Action == app.ActionRunNow {
			if err := db.MarkRunNowTx(ctx, tx, ids); err != nil {
				return nil, err
			}
		}
		finished := idsOf(before, func(b db.JobBefore) bool { return b.State == "discarded" || b.State == "cancelled" })
		if len(finished) > 0 {
			if err := db.ReopenOperationsTx(ctx, tx, finished, now); err != nil {
				return nil, err
			}
		}
	case app.ActionCancel:
		for _, id := range ids {
			if _, err := s.cfg.River.JobCancelTx(ctx, tx, id); err != nil {
				return nil, fmt.Errorf("cancel job %d: %w", id, err)
			}
		}
		waiting := idsOf(before, func(b db.JobBefore) bool { return b.State != "running" })
		if len(waiting) > 0 {
			cancelled, err := db.CancelOperationsTx(ctx, tx, waiting, now)
			if err != nil {
				return nil, err
			}
			if err := s.notifyTx(ctx, tx, cancelled); err != nil {
				return nil, err
			}
		}
	}
	e := s.audit(r, userFrom(ctx), "job."+string(j.Action), jobsTarget(ids), before, j.after(), detail)
	if err := db.InsertAudit(ctx, tx, e); err != nil {
		return nil, err
	}
	return before, nil
}

func jobsTarget(ids []int64) string {
	if len(ids) == 1 {
		return "job " + strconv.FormatInt(ids[0], 10)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d jobs: ", len(ids))
	for i, id := range ids {
		if i == 10 {
			fmt.Fprintf(&b, " … (all in before)")
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.FormatInt(id, 10))
	}
	return b.String()
}

func keep(bs []db.JobBefore, ok func(db.JobBefore) bool) []db.JobBefore {
	out := bs[:0:0]
	for _, b := range bs {
		if ok(b) {
			out = append(out, b)
		}
	}
	return out
}

func idsOf(bs []db.JobBefore, ok func(db.JobBefore) bool) []int64 {
	var ids []int64
	for _, b := range bs {
		if ok == nil || ok(b) {
			ids = append(ids, b.ID)
		}
	}
	return ids
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
	var changed []db.JobBefore
	err = s.inTx(r.Context(), func(tx pgx.Tx) error {
		changed, err = s.applyTx(r.Context(), tx, r, j, []int64{id}, "")
		return err
	})
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	msg := j.describe(len(changed))
	if len(changed) == 0 {
		msg = fmt.Sprintf("Nothing changed: the job is not in a state where %s applies (or already has it).", j.Action.Label())
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
	var changed []db.JobBefore
	err = s.inTx(r.Context(), func(tx pgx.Tx) error {
		changed, err = s.applyTx(r.Context(), tx, r, j, ids, "selected")
		return err
	})
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	msg := j.describe(len(changed))
	if skipped := len(ids) - len(changed); skipped > 0 {
		msg += fmt.Sprintf(" %d left as they were (not in a state where %s applies, or already so).", skipped, j.Action.Label())
	}
	s.redirect(w, r, back, msg)
}

type bulkData struct {
	Filter   app.JobFilter
	Request  jobRequest
	Eligible int
	Matching int
	Query    string
}

// handleBulkConfirm shows how many jobs an action on everything matching
// the filter would touch, and asks to confirm.
func (s *server) handleBulkConfirm(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, err := app.ParseJobFilter(q)
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
	d := bulkData{Filter: f, Request: j, Query: f.Query().Encode()}
	if d.Matching, err = db.CountAdminJobs(r.Context(), s.cfg.Pool, f, nil, now); err != nil {
		s.renderError(w, r, err)
		return
	}
	if d.Eligible, err = db.CountAdminJobs(r.Context(), s.cfg.Pool, f, j.Action.States(), now); err != nil {
		s.renderError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, bulkPage(s.page(r, "Confirm", "jobs"), d))
}

// handleBulkAction re-runs the filter on the server and applies the action
// to every matching job, in batches of bulkBatch, each its own transaction
// with its own audit entry. Jobs that start matching while it runs are
// included; the count on the confirmation page was a preview.
func (s *server) handleBulkAction(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	f, err := app.ParseJobFilter(r.PostForm)
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	j, err := parseJobRequest(r.PostForm)
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	now := s.now()
	detail := "all matching: " + f.String()
	var total, batches int
	var last int64
	for {
		var n, c int
		err := s.inTx(ctx, func(tx pgx.Tx) error {
			ids, err := db.AdminJobIDs(ctx, tx, f, j.Action.States(), last, bulkBatch, now)
			if err != nil || len(ids) == 0 {
				return err
			}
			last = ids[len(ids)-1]
			n = len(ids)
			changed, err := s.applyTx(ctx, tx, r, j, ids, detail)
			c = len(changed)
			return err
		})
		if err != nil {
			s.renderError(w, r, fmt.Errorf("bulk %s after %d batches (%d jobs done): %w", j.Action, batches, total, err))
			return
		}
		if n == 0 {
			break
		}
		total += c
		batches++
	}
	s.redirect(w, r, s.base+"/jobs?"+f.Query().Encode(), j.describe(total)+" (all matching: "+f.String()+")")
}

// notifyTx enqueues the notifications of operations an operator ended, in
// the transaction that ended them.
func (s *server) notifyTx(ctx context.Context, tx pgx.Tx, ids []uuid.UUID) error {
	var params []river.InsertManyParams
	for _, id := range ids {
		op, err := db.GetOperation(ctx, tx, id)
		if err != nil {
			return err
		}
		params = append(params, app.NotificationJobs(op, s.cfg.Channels)...)
	}
	if len(params) == 0 {
		return nil
	}
	if _, err := s.cfg.River.InsertManyTx(ctx, tx, params); err != nil {
		return fmt.Errorf("enqueue notifications: %w", err)
	}
	return nil
}
