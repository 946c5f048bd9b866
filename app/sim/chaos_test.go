package sim_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/spillway/spillway/app/sim"
)

func TestUnavailableHasNoEffect(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		rand  float64
		chaos sim.Chaos
		want  int
	}{
		{name: "down", chaos: sim.Chaos{Down: true}, want: http.StatusServiceUnavailable},
		{name: "error_rate 1", chaos: sim.Chaos{ErrorRate: 1}, want: http.StatusServiceUnavailable},
		{name: "draw below error_rate fails", rand: 0.3, chaos: sim.Chaos{ErrorRate: 0.4}, want: http.StatusServiceUnavailable},
		{name: "draw above error_rate passes", rand: 0.5, chaos: sim.Chaos{ErrorRate: 0.4}, want: http.StatusOK},
		{name: "down beats decline", chaos: sim.Chaos{Down: true, DeclineRate: 1}, want: http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, srv := start(t, sim.Config{Rand: func() float64 { return tt.rand }})
			s.SetChaos(tt.chaos)
			r := charge(t, srv, "k", chargeBody(100))
			if r.status != tt.want {
				t.Fatalf("status = %d, want %d (body %s)", r.status, tt.want, r.body)
			}
			wantEffects := 0
			if tt.want == http.StatusOK {
				wantEffects = 1
			} else if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if n := s.Effects("k"); n != wantEffects {
				t.Errorf("effects = %d, want %d", n, wantEffects)
			}
			if n := s.Calls("k"); n != 1 {
				t.Errorf("calls = %d, want 1", n)
			}

			// Recovery: the same key now charges once.
			s.SetChaos(sim.Chaos{})
			if r := charge(t, srv, "k", chargeBody(100)); r.status != http.StatusOK {
				t.Fatalf("after recovery status = %d", r.status)
			}
			if n := s.Effects("k"); n != 1 {
				t.Errorf("effects after recovery = %d, want 1", n)
			}
		})
	}
}

func TestFlappingAlternates(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s, srv := start(t, sim.Config{Now: clock.Now})
	s.SetChaos(sim.Chaos{FlapPeriod: time.Second})

	steps := []struct {
		advance time.Duration
		want    int
	}{
		{0, http.StatusOK}, // starts up
		{500 * time.Millisecond, http.StatusOK},
		{time.Second, http.StatusServiceUnavailable}, // 1.5s: down
		{time.Second, http.StatusOK},                 // 2.5s: up
		{time.Second, http.StatusServiceUnavailable}, // 3.5s: down
	}
	for i, st := range steps {
		clock.Advance(st.advance)
		// Fresh keys, so a stored answer cannot mask the state.
		r := charge(t, srv, "flap-"+string(rune('a'+i)), chargeBody(100))
		if r.status != st.want {
			t.Errorf("step %d: status = %d, want %d", i, r.status, st.want)
		}
	}

	// Changing the period restarts the clock in the up phase.
	s.SetChaos(sim.Chaos{FlapPeriod: 2 * time.Second})
	if r := charge(t, srv, "flap-restart", chargeBody(100)); r.status != http.StatusOK {
		t.Errorf("after restart: status = %d, want 200", r.status)
	}
	// Turning flapping off means up.
	clock.Advance(3 * time.Second)
	s.SetChaos(sim.Chaos{})
	if r := charge(t, srv, "flap-off", chargeBody(100)); r.status != http.StatusOK {
		t.Errorf("after off: status = %d, want 200", r.status)
	}
}

func TestSetChaosClamps(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   sim.Chaos
		want sim.Chaos
	}{
		{name: "in range unchanged", in: sim.Chaos{Latency: time.Second, ErrorRate: 0.5, DeclineRate: 0.1, FlapPeriod: time.Minute, Down: true}, want: sim.Chaos{Latency: time.Second, ErrorRate: 0.5, DeclineRate: 0.1, FlapPeriod: time.Minute, Down: true}},
		{name: "rates clamped", in: sim.Chaos{ErrorRate: 2, DeclineRate: -1}, want: sim.Chaos{ErrorRate: 1}},
		{name: "durations clamped", in: sim.Chaos{Latency: -time.Second, FlapPeriod: time.Hour}, want: sim.Chaos{FlapPeriod: sim.MaxDuration}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := sim.New(sim.Config{})
			s.SetChaos(tt.in)
			if got := s.Chaos(); got != tt.want {
				t.Errorf("Chaos() = %+v, want %+v", got, tt.want)
			}
			if err := tt.want.Validate(); err != nil {
				t.Errorf("clamped value invalid: %v", err)
			}
		})
	}
}
