package sim_test

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/spillway/spillway/app/sim"
)

func refund(t *testing.T, srv, chargeID, key string) reply {
	t.Helper()
	h := map[string]string{"Content-Type": "application/json"}
	if key != "" {
		h["Idempotency-Key"] = key
	}
	r, err := do(context.Background(), t, http.MethodPost, srv+"/charges/"+url.PathEscape(chargeID)+"/refunds", h, "{}")
	if err != nil {
		t.Fatalf("POST refund: %v", err)
	}
	return r
}

type refundJSON struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	ChargeID string `json:"charge_id"`
}

type statsJSON struct {
	Effects int `json:"effects"`
	Calls   int `json:"calls"`
	Keys    int `json:"keys"`
	Lookups int `json:"lookups"`
	Refunds int `json:"refunds"`
}

func TestRefundSameKeyRefundsOnce(t *testing.T) {
	t.Parallel()
	s, srv := start(t, sim.Config{})
	c := decode[chargeAnswer](t, charge(t, srv, "op-1", chargeBody(1000)).body)

	first := refund(t, srv.URL, c.ID, "rf-1")
	second := refund(t, srv.URL, c.ID, "rf-1")
	if first.status != http.StatusOK || !bytes.Equal(first.body, second.body) {
		t.Fatalf("refunds = %d %s then %d %s, want the same 200 twice", first.status, first.body, second.status, second.body)
	}
	got := decode[refundJSON](t, first.body)
	if got.Status != "refunded" || got.ChargeID != c.ID || got.ID == "" {
		t.Errorf("refund = %+v", got)
	}
	if n := s.Refunds(c.ID); n != 1 {
		t.Errorf("refunds of the charge = %d, want 1", n)
	}
	// Another key cannot refund the money a second time.
	if r := refund(t, srv.URL, c.ID, "rf-2"); r.status != http.StatusConflict {
		t.Errorf("refund with a new key = %d %s, want 409", r.status, r.body)
	}
	if n := s.TotalRefunds(); n != 1 {
		t.Errorf("total refunds = %d, want 1", n)
	}

	st := decode[keyStatsJSON](t, control(t, srv.URL, http.MethodGet, "/control/effects/op-1", "").body)
	if st.Refunds != 1 || st.Status != "refunded" || st.Effects != 1 {
		t.Errorf("effects = %+v, want 1 refund and status refunded", st)
	}
	if got := decode[statsJSON](t, control(t, srv.URL, http.MethodGet, "/control/stats", "").body); got.Refunds != 1 || got.Effects != 1 {
		t.Errorf("stats = %+v, want 1 refund", got)
	}
}

func TestRefundRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// setup picks the refund to try; the charge "ok" and the declined
		// one exist, and key "used" already refunded another charge.
		setup func(ok, declined string) (id, key string)
		want  int
		chaos sim.Chaos
	}{
		{name: "unknown charge", want: http.StatusNotFound,
			setup: func(_, _ string) (string, string) { return "ch_nosuch", "k" }},
		{name: "declined charge", want: http.StatusConflict,
			setup: func(_, declined string) (string, string) { return declined, "k" }},
		{name: "missing key", want: http.StatusBadRequest,
			setup: func(ok, _ string) (string, string) { return ok, "" }},
		{name: "key first used for another charge", want: http.StatusUnprocessableEntity,
			setup: func(ok, _ string) (string, string) { return ok, "used" }},
		{name: "down", want: http.StatusServiceUnavailable, chaos: sim.Chaos{Down: true},
			setup: func(ok, _ string) (string, string) { return ok, "k" }},
		{name: "error_rate", want: http.StatusServiceUnavailable, chaos: sim.Chaos{ErrorRate: 1},
			setup: func(ok, _ string) (string, string) { return ok, "k" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, srv := start(t, sim.Config{})
			ok := decode[chargeAnswer](t, charge(t, srv, "ok", chargeBody(1000)).body).ID
			other := decode[chargeAnswer](t, charge(t, srv, "other", chargeBody(1000)).body).ID
			declined := decode[chargeAnswer](t, charge(t, srv, "declined", chargeBody(1002)).body).ID
			if r := refund(t, srv.URL, other, "used"); r.status != http.StatusOK {
				t.Fatalf("setup refund = %d", r.status)
			}
			id, key := tt.setup(ok, declined)
			s.SetChaos(tt.chaos)
			r := refund(t, srv.URL, id, key)
			if r.status != tt.want || r.header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("refund = %d %q %s, want %d problem", r.status, r.header.Get("Content-Type"), r.body, tt.want)
			}
			if n := s.TotalRefunds(); n != 1 {
				t.Errorf("total refunds = %d, want only the setup's 1", n)
			}
			if n := s.Refunds(ok); n != 0 {
				t.Errorf("refunds of the charge = %d, want 0", n)
			}
		})
	}
}
