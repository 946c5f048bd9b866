package sim_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/spillway/spillway/app/sim"
)

type chaosJSON struct {
	LatencyMS    int64   `json:"latency_ms"`
	ErrorRate    float64 `json:"error_rate"`
	Down         bool    `json:"down"`
	DeclineRate  float64 `json:"decline_rate"`
	FlapPeriodMS int64   `json:"flap_period_ms"`
	DownNow      bool    `json:"down_now"`
}

func control(t *testing.T, srv string, method, path, body string) reply {
	t.Helper()
	r, err := do(context.Background(), t, method, srv+path, map[string]string{"Content-Type": "application/json"}, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

func TestControlPutMerges(t *testing.T) {
	t.Parallel()
	s, srv := start(t, sim.Config{})

	if got := decode[chaosJSON](t, control(t, srv.URL, http.MethodGet, "/control", "").body); got != (chaosJSON{}) {
		t.Fatalf("initial chaos = %+v, want zero", got)
	}
	steps := []struct {
		body string
		want chaosJSON
	}{
		{`{"latency_ms": 5000, "error_rate": 0.2}`, chaosJSON{LatencyMS: 5000, ErrorRate: 0.2}},
		{`{"down": true}`, chaosJSON{LatencyMS: 5000, ErrorRate: 0.2, Down: true, DownNow: true}},
		{`{"down": false, "decline_rate": 0, "flap_period_ms": 1000}`, chaosJSON{LatencyMS: 5000, ErrorRate: 0.2, FlapPeriodMS: 1000}},
		{`{}`, chaosJSON{LatencyMS: 5000, ErrorRate: 0.2, FlapPeriodMS: 1000}},
		{`{"latency_ms": 0, "error_rate": 0, "flap_period_ms": 0, "decline_rate": 1}`, chaosJSON{DeclineRate: 1}},
	}
	for i, st := range steps {
		r := control(t, srv.URL, http.MethodPut, "/control", st.body)
		if r.status != http.StatusOK {
			t.Fatalf("step %d: status %d body %s", i, r.status, r.body)
		}
		if got := decode[chaosJSON](t, r.body); got != st.want {
			t.Errorf("step %d: PUT answered %+v, want %+v", i, got, st.want)
		}
		if got := decode[chaosJSON](t, control(t, srv.URL, http.MethodGet, "/control", "").body); got != st.want {
			t.Errorf("step %d: GET answered %+v, want %+v", i, got, st.want)
		}
	}
	if got, want := s.Chaos(), (sim.Chaos{DeclineRate: 1}); got != want {
		t.Errorf("Chaos() = %+v, want %+v", got, want)
	}
}

func TestControlPutRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
	}{
		{"error_rate above 1", `{"error_rate": 1.5}`},
		{"error_rate negative", `{"error_rate": -0.1}`},
		{"decline_rate above 1", `{"decline_rate": 2}`},
		{"latency negative", `{"latency_ms": -1}`},
		{"latency over 10 minutes", `{"latency_ms": 600001}`},
		{"latency huge", `{"latency_ms": 9223372036854775807}`},
		{"flap negative", `{"flap_period_ms": -1}`},
		{"flap over 10 minutes", `{"flap_period_ms": 600001}`},
		{"fractional ms", `{"latency_ms": 1.5}`},
		{"wrong type", `{"down": "yes"}`},
		{"unknown field", `{"latency": 100}`},
		{"not JSON", `latency_ms=5`},
		{"trailing data", `{} {}`},
		{"valid field with invalid one", `{"latency_ms": 100, "error_rate": 7}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, srv := start(t, sim.Config{})
			r := control(t, srv.URL, http.MethodPut, "/control", tt.body)
			if r.status != http.StatusBadRequest {
				t.Fatalf("status = %d, want 400 (body %s)", r.status, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if got := s.Chaos(); got != (sim.Chaos{}) {
				t.Errorf("chaos changed to %+v by a rejected PUT", got)
			}
		})
	}
}

func TestControlEffectsStatsReset(t *testing.T) {
	t.Parallel()
	s, srv := start(t, sim.Config{})
	charge(t, srv, "a/b c", chargeBody(100)) // awkward key: slash and space
	charge(t, srv, "a/b c", chargeBody(100))
	charge(t, srv, "declined", chargeBody(202))
	s.SetChaos(sim.Chaos{Down: true})
	charge(t, srv, "never-charged", chargeBody(100))
	s.SetChaos(sim.Chaos{})

	type effects struct {
		Key      string `json:"key"`
		Effects  int    `json:"effects"`
		Calls    int    `json:"calls"`
		Status   string `json:"status"`
		ChargeID string `json:"charge_id"`
	}
	tests := []struct {
		key        string
		wantStatus int
		want       effects
	}{
		{"a/b c", http.StatusOK, effects{Key: "a/b c", Effects: 1, Calls: 2, Status: "succeeded"}},
		{"declined", http.StatusOK, effects{Key: "declined", Effects: 1, Calls: 1, Status: "declined"}},
		{"never-charged", http.StatusOK, effects{Key: "never-charged", Calls: 1}},
		{"unknown", http.StatusNotFound, effects{}},
	}
	for _, tt := range tests {
		r := control(t, srv.URL, http.MethodGet, "/control/effects/"+url.PathEscape(tt.key), "")
		if r.status != tt.wantStatus {
			t.Errorf("%q: status = %d, want %d", tt.key, r.status, tt.wantStatus)
			continue
		}
		if r.status != http.StatusOK {
			continue
		}
		got := decode[effects](t, r.body)
		if (got.ChargeID != "") != (tt.want.Status != "") {
			t.Errorf("%q: charge_id = %q with status %q", tt.key, got.ChargeID, got.Status)
		}
		got.ChargeID = ""
		if got != tt.want {
			t.Errorf("%q: effects = %+v, want %+v", tt.key, got, tt.want)
		}
	}

	type stats struct {
		Effects int `json:"effects"`
		Calls   int `json:"calls"`
		Keys    int `json:"keys"`
	}
	if got, want := decode[stats](t, control(t, srv.URL, http.MethodGet, "/control/stats", "").body), (stats{Effects: 2, Calls: 4, Keys: 3}); got != want {
		t.Errorf("stats = %+v, want %+v", got, want)
	}

	s.SetChaos(sim.Chaos{Latency: time.Second, Down: true})
	if r := control(t, srv.URL, http.MethodPost, "/control/reset", ""); r.status != http.StatusOK {
		t.Fatalf("reset status = %d", r.status)
	}
	if got := decode[stats](t, control(t, srv.URL, http.MethodGet, "/control/stats", "").body); got != (stats{}) {
		t.Errorf("stats after reset = %+v, want zero", got)
	}
	if got := s.Chaos(); got != (sim.Chaos{}) {
		t.Errorf("chaos after reset = %+v, want zero", got)
	}
	if n := s.Effects("a/b c"); n != 0 {
		t.Errorf("effects after reset = %d", n)
	}
}

func TestControlFlapViaAPI(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	_, srv := start(t, sim.Config{Now: clock.Now})
	control(t, srv.URL, http.MethodPut, "/control", `{"flap_period_ms": 1000}`)
	clock.Advance(1500 * time.Millisecond)
	if got := decode[chaosJSON](t, control(t, srv.URL, http.MethodGet, "/control", "").body); !got.DownNow {
		t.Errorf("down_now = false 1.5s into a 1s flap, want true")
	}
	if r := charge(t, srv, "k", chargeBody(100)); r.status != http.StatusServiceUnavailable {
		t.Errorf("charge status = %d, want 503", r.status)
	}
}
