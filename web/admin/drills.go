package admin

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
)

// runbookRunDrill and runbookDrillFailed are the runbook's drill sections.
const (
	runbookRunDrill    = "run-a-drill"
	runbookDrillFailed = "drill-failed"
)

// drillsView is the drills page: the form's choices and the history.
type drillsView struct {
	// Dependencies are those that can be drilled; none: drills are off.
	Dependencies []string
	Settings     app.DrillSettings
	History      []app.Drill
	// Error is the form's problem, with the operator's choices kept.
	Error      string
	Dependency string
	Mode       app.DrillMode
}

// drillsHistory is how many drills the page lists.
const drillsHistory = 50

func (s *server) handleDrills(w http.ResponseWriter, r *http.Request) {
	s.renderDrills(w, r, http.StatusOK, drillsView{Mode: app.DrillShadow})
}

// renderDrills shows the form and the history; v carries a refused form.
func (s *server) renderDrills(w http.ResponseWriter, r *http.Request, status int, v drillsView) {
	var err error
	if v.History, err = db.ListDrills(r.Context(), s.cfg.Pool, drillsHistory); err != nil {
		s.renderError(w, r, err)
		return
	}
	if ds := s.cfg.Drills; ds != nil {
		v.Dependencies, v.Settings = ds.Dependencies(), ds.Settings()
	}
	p := s.page(r, "Failover drills", "drills")
	p.Flash = s.takeFlash(w, r)
	if v.Error == "" && hasOpenDrill(v.History) {
		p.Live = 5
	}
	s.render(w, r, status, drillsPage(p, v))
}

// handleDrillStart starts a drill by hand (operators only, audited by
// app.Operator). A refused form answers the page again with the reason
// beside the form.
func (s *server) handleDrillStart(w http.ResponseWriter, r *http.Request) {
	dep := strings.TrimSpace(r.PostForm.Get("dependency"))
	v := drillsView{Dependency: dep, Mode: app.DrillMode(r.PostForm.Get("mode"))}
	mode, err := app.ParseDrillMode(r.PostForm.Get("mode"))
	if err == nil {
		var d app.Drill
		if d, err = s.operator.StartDrill(r.Context(), s.actor(r), dep, mode); err == nil {
			s.redirect(w, r, fmt.Sprintf("%s/drills#drill-%d", s.base, d.ID),
				fmt.Sprintf("Drill #%d of %s started (%s): it %s.", d.ID, dep, mode, app.DrillWords(mode, app.DrillSettings{Duration: d.Duration, Canaries: d.Canaries})))
			return
		}
	}
	if code := app.ErrorCode(err); code != app.EINVALID && code != app.ECONFLICT {
		s.renderError(w, r, err)
		return
	}
	v.Error = app.ErrorMessage(err)
	s.renderDrills(w, r, statusFor(err), v)
}

func hasOpenDrill(ds []app.Drill) bool {
	for _, d := range ds {
		if !d.Status.Ended() {
			return true
		}
	}
	return false
}

// lastDrillView is one dependency's last drill, as the overview shows it.
type lastDrillView struct {
	Dependency string
	Drill      *app.Drill // nil: never drilled
}

// lastDrills reads each drillable dependency's latest drill for the
// overview (open or finished), in the overview's read transaction.
func (s *server) lastDrills(ctx context.Context, q db.Querier) ([]lastDrillView, error) {
	if s.cfg.Drills == nil {
		return nil, nil
	}
	latest, _, err := db.LastDrills(ctx, q)
	if err != nil {
		return nil, err
	}
	var views []lastDrillView
	for _, dep := range s.cfg.Drills.Dependencies() {
		v := lastDrillView{Dependency: dep}
		if d, ok := latest[dep]; ok {
			v.Drill = &d
		}
		views = append(views, v)
	}
	return views, nil
}

// drillResult is a drill's status in words, with its CSS class.
func drillResult(d app.Drill) (string, string) {
	switch d.Status {
	case app.DrillPassed:
		return "passed", "drill-passed"
	case app.DrillFailed:
		return "failed", "drill-failed"
	case app.DrillDraining:
		return "draining", "drill-open"
	}
	return "running", "drill-open"
}

// drillWhen is when a drill ended, or started while it is open.
func drillWhen(d app.Drill) string {
	if d.Status.Ended() {
		return "ended " + fmtTime(d.FinishedAt)
	}
	return "started " + fmtTime(d.StartedAt)
}

func drillDrain(d app.Drill) string {
	if d.DrainTime == nil {
		return "—"
	}
	return fmtDuration(*d.DrainTime)
}

func drillTrigger(d app.Drill) string {
	if d.Trigger == app.DrillScheduled {
		return "schedule"
	}
	return "by " + d.Actor
}

// drillAt is when a drill ended, or started while it is open.
func drillAt(d app.Drill) time.Time {
	if d.Status.Ended() {
		return d.FinishedAt
	}
	return d.StartedAt
}
