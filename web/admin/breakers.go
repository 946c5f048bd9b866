package admin

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

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

// policyForm is a breaker's thresholds as the form shows them.
type policyForm = app.PolicyText

func readPolicyForm(v url.Values) policyForm {
	g := func(k string) string { return strings.TrimSpace(v.Get(k)) }
	return policyForm{Window: g("window"), SlowCall: g("slow_call"), OpenWait: g("open_wait"),
		MaxOpenWait: g("max_open_wait"), ProbeLease: g("probe_lease"), TripMemory: g("trip_memory"),
		MinCalls: g("min_calls"), Probes: g("probes"), FailureRate: g("failure_rate"), SlowRate: g("slow_rate"),
		ConsecutiveFailures: g("consecutive_failures")}
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
		v := breakerView{B: b, Form: b.Policy.Text()}
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
	name := chi.URLParam(r, "name")
	state := app.BreakerState(r.PostForm.Get("state"))
	if _, err := s.operator.ForceBreaker(r.Context(), s.actor(r), name, state, r.PostForm.Get("reason")); err != nil {
		s.renderError(w, r, err)
		return
	}
	s.redirect(w, r, s.base+"/breakers#breaker-"+name, fmt.Sprintf("Breaker %s %s.", name, app.ForceWords(state)))
}

func (s *server) handleBreakerPolicy(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	form := readPolicyForm(r.PostForm)
	changed, err := s.operator.SetBreakerPolicy(r.Context(), s.actor(r), name, form)
	if app.ErrorCode(err) == app.EINVALID {
		s.renderBreakers(w, r, http.StatusUnprocessableEntity, name, app.ErrorMessage(err), form)
		return
	}
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	msg := fmt.Sprintf("Thresholds of %s saved; every instance uses them within a second.", name)
	if !changed {
		msg = "Nothing changed."
	}
	s.redirect(w, r, s.base+"/breakers#breaker-"+name, msg)
}
