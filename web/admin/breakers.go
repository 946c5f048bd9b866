package admin

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
)

type breakerView struct {
	B       app.Breaker
	Mode    string
	Class   string
	Detail  string
	History []db.BreakerTransition
	Error   string // the last policy form's problem, shown beside it
	Form    policyForm
}

// policyForm is a breaker's thresholds as the form shows them: durations
// in Go's notation (1m30s), rates in percent.
type policyForm struct {
	Window, SlowCall, OpenWait, MaxOpenWait, ProbeLease, TripMemory string
	MinCalls, Probes                                                string
	FailureRate, SlowRate                                           string
}

func formOf(p app.BreakerPolicy) policyForm {
	pct := func(f float64) string { return strconv.FormatFloat(f*100, 'f', -1, 64) }
	return policyForm{
		Window: p.Window.String(), SlowCall: p.SlowCall.String(), OpenWait: p.OpenWait.String(),
		MaxOpenWait: p.MaxOpenWait.String(), ProbeLease: p.ProbeLease.String(), TripMemory: p.TripMemory.String(),
		MinCalls: strconv.Itoa(p.MinCalls), Probes: strconv.Itoa(p.Probes),
		FailureRate: pct(p.FailureRate), SlowRate: pct(p.SlowRate),
	}
}

func readPolicyForm(v url.Values) policyForm {
	g := func(k string) string { return strings.TrimSpace(v.Get(k)) }
	return policyForm{Window: g("window"), SlowCall: g("slow_call"), OpenWait: g("open_wait"),
		MaxOpenWait: g("max_open_wait"), ProbeLease: g("probe_lease"), TripMemory: g("trip_memory"),
		MinCalls: g("min_calls"), Probes: g("probes"), FailureRate: g("failure_rate"), SlowRate: g("slow_rate")}
}

// policy parses the form; the error names the field.
func (f policyForm) policy() (app.BreakerPolicy, error) {
	var p app.BreakerPolicy
	var errs []string
	dur := func(name, s string, dst *time.Duration) {
		d, err := time.ParseDuration(s)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %q is not a duration like 10s or 1m", name, s))
		}
		*dst = d
	}
	num := func(name, s string, dst *int) {
		n, err := strconv.Atoi(s)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %q is not a whole number", name, s))
		}
		*dst = n
	}
	pct := func(name, s string, dst *float64) {
		f, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %q is not a percentage", name, s))
		}
		*dst = f / 100
	}
	dur("window", f.Window, &p.Window)
	num("min_calls", f.MinCalls, &p.MinCalls)
	pct("failure_rate", f.FailureRate, &p.FailureRate)
	pct("slow_rate", f.SlowRate, &p.SlowRate)
	dur("slow_call", f.SlowCall, &p.SlowCall)
	dur("open_wait", f.OpenWait, &p.OpenWait)
	dur("max_open_wait", f.MaxOpenWait, &p.MaxOpenWait)
	num("probes", f.Probes, &p.Probes)
	dur("probe_lease", f.ProbeLease, &p.ProbeLease)
	dur("trip_memory", f.TripMemory, &p.TripMemory)
	if len(errs) > 0 {
		return p, app.Errorf(app.EINVALID, "%s", strings.Join(errs, "; "))
	}
	if err := p.Validate(); err != nil {
		return p, app.Errorf(app.EINVALID, "%s", err.Error())
	}
	return p, nil
}

func (s *server) handleBreakers(w http.ResponseWriter, r *http.Request) {
	s.renderBreakers(w, r, http.StatusOK, "", "", policyForm{})
}

// renderBreakers shows every breaker; failed names the one whose form was
// refused, with the operator's input kept.
func (s *server) renderBreakers(w http.ResponseWriter, r *http.Request, status int, failed, msg string, input policyForm) {
	ctx := r.Context()
	bs, err := s.breakers.ListBreakers(ctx)
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	now := s.now()
	views := make([]breakerView, 0, len(bs))
	for _, b := range bs {
		v := breakerView{B: b, Form: formOf(b.Policy)}
		v.Mode, v.Class, v.Detail = describeMode(b, now)
		if v.History, err = db.ListBreakerTransitions(ctx, s.cfg.Pool, b.Name, 20); err != nil {
			s.renderError(w, r, err)
			return
		}
		if b.Name == failed {
			v.Error, v.Form = msg, input
		}
		views = append(views, v)
	}
	p := s.page(r, "Breakers", "breakers")
	p.Flash = s.takeFlash(w, r)
	if failed == "" {
		p.Live = 5
	}
	s.render(w, r, status, breakersPage(p, views))
}

func (s *server) handleBreakerForce(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	name := chi.URLParam(r, "name")
	state := app.BreakerState(r.PostForm.Get("state"))
	switch state {
	case app.BreakerForcedOpen, app.BreakerForcedClosed, app.BreakerClosed:
	default:
		s.renderError(w, r, app.Errorf(app.EINVALID, "A breaker can be forced open, forced closed or returned to auto, not %q.", state))
		return
	}
	before, err := s.breakers.GetBreaker(ctx, name)
	if app.ErrorCode(err) == app.ENOTFOUND {
		s.renderError(w, r, app.Errorf(app.ENOTFOUND, "There is no breaker %q.", name))
		return
	}
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	u := userFrom(ctx)
	reason := app.ClipText(strings.TrimSpace(r.PostForm.Get("reason")), 200)
	words := map[app.BreakerState]string{app.BreakerForcedOpen: "forced open", app.BreakerForcedClosed: "forced closed",
		app.BreakerClosed: "returned to auto"}[state]
	why := words + " by " + u.Email
	if reason != "" {
		why += ": " + reason
	}
	// Force writes the breaker and its history in its own transaction and
	// tells every instance; the audit entry follows it (not atomically:
	// the breaker's history records the actor too).
	after, err := s.cfg.Breakers.Force(ctx, name, state, u.Email, why)
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	e := s.audit(r, u, "breaker.force", "breaker "+name, map[string]any{"state": before.State},
		map[string]any{"state": after.State}, reason)
	if err := db.InsertAudit(ctx, s.cfg.Pool, e); err != nil {
		s.renderError(w, r, err)
		return
	}
	s.redirect(w, r, s.base+"/breakers#breaker-"+name, fmt.Sprintf("Breaker %s %s.", name, words))
}

func (s *server) handleBreakerPolicy(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	name := chi.URLParam(r, "name")
	before, err := s.breakers.GetBreaker(ctx, name)
	if app.ErrorCode(err) == app.ENOTFOUND {
		s.renderError(w, r, app.Errorf(app.ENOTFOUND, "There is no breaker %q.", name))
		return
	}
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	form := readPolicyForm(r.PostForm)
	p, err := form.policy()
	if err != nil {
		s.renderBreakers(w, r, http.StatusUnprocessableEntity, name, app.ErrorMessage(err), form)
		return
	}
	if p == before.Policy {
		s.redirect(w, r, s.base+"/breakers#breaker-"+name, "Nothing changed.")
		return
	}
	u := userFrom(ctx)
	t := app.Transition{Reason: "thresholds changed by " + u.Email, Instance: s.cfg.Instance, Actor: u.Email}
	if err := s.breakers.SetPolicy(ctx, name, p, t, s.now()); err != nil {
		s.renderError(w, r, err)
		return
	}
	e := s.audit(r, u, "breaker.policy", "breaker "+name, formOf(before.Policy), formOf(p), "")
	if err := db.InsertAudit(ctx, s.cfg.Pool, e); err != nil {
		s.renderError(w, r, err)
		return
	}
	s.redirect(w, r, s.base+"/breakers#breaker-"+name, fmt.Sprintf("Thresholds of %s saved; every instance uses them within a second.", name))
}
