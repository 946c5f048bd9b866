package sim_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/spillway/spillway/app/sim"
)

func TestHealthFollowsDown(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s, srv := start(t, sim.Config{Now: clock.Now, Rand: func() float64 { return 0 }})
	steps := []struct {
		name  string
		chaos sim.Chaos
		move  time.Duration
		want  int
	}{
		{name: "up", want: http.StatusOK},
		// Health probes whether the provider is up, not its transient faults.
		{name: "error_rate 1 is still up", chaos: sim.Chaos{ErrorRate: 1}, want: http.StatusOK},
		{name: "latency does not delay it", chaos: sim.Chaos{Latency: sim.MaxDuration}, want: http.StatusOK},
		{name: "down", chaos: sim.Chaos{Down: true}, want: http.StatusServiceUnavailable},
		{name: "flap up half", chaos: sim.Chaos{FlapPeriod: time.Second}, want: http.StatusOK},
		{name: "flap down half", chaos: sim.Chaos{FlapPeriod: time.Second}, move: 1500 * time.Millisecond, want: http.StatusServiceUnavailable},
	}
	for _, st := range steps {
		s.SetChaos(st.chaos)
		clock.Advance(st.move)
		r := control(t, srv.URL, http.MethodGet, "/health", "")
		if r.status != st.want {
			t.Errorf("%s: health = %d %s, want %d", st.name, r.status, r.body, st.want)
		}
		if r.status == http.StatusOK && string(r.body) != `{"status":"ok"}` {
			t.Errorf("%s: body %s", st.name, r.body)
		}
	}
}

func TestEffectSeqCountsChargesInOrder(t *testing.T) {
	t.Parallel()
	s, srv := start(t, sim.Config{})
	charge(t, srv, "a", chargeBody(100))
	charge(t, srv, "b", chargeBody(102)) // a decline is an effect too
	charge(t, srv, "a", chargeBody(100)) // a replay is not
	s.SetChaos(sim.Chaos{Down: true})
	charge(t, srv, "refused", chargeBody(100))
	s.SetChaos(sim.Chaos{})
	charge(t, srv, "c", chargeBody(100))

	for key, want := range map[string]int{"a": 1, "b": 2, "c": 3, "refused": 0, "never": 0} {
		if got := s.EffectSeq(key); got != want {
			t.Errorf("EffectSeq(%q) = %d, want %d", key, got, want)
		}
	}
	if got := decode[keyStatsJSON](t, control(t, srv.URL, http.MethodGet, "/control/effects/c", "").body).Seq; got != 3 {
		t.Errorf("seq of c via the control API = %d, want 3", got)
	}
	s.Reset()
	charge(t, srv, "d", chargeBody(100))
	if got := s.EffectSeq("d"); got != 1 {
		t.Errorf("EffectSeq after Reset = %d, want 1", got)
	}
}
