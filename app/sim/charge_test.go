package sim_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/spillway/spillway/app/sim"
)

func TestChargeOutcomes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		chaos       sim.Chaos
		body        string
		wantStatus  int
		wantState   string
		wantDecline string
	}{
		{name: "success", body: chargeBody(1000), wantStatus: http.StatusOK, wantState: "succeeded"},
		{name: "amount ending 02 declines", body: chargeBody(1002), wantStatus: http.StatusPaymentRequired, wantState: "declined", wantDecline: "card_declined"},
		{name: "amount 102 declines", body: chargeBody(102), wantStatus: http.StatusPaymentRequired, wantState: "declined", wantDecline: "card_declined"},
		{name: "amount 1020 succeeds", body: chargeBody(1020), wantStatus: http.StatusOK, wantState: "succeeded"},
		{name: "decline_rate 1 declines", chaos: sim.Chaos{DeclineRate: 1}, body: chargeBody(1000), wantStatus: http.StatusPaymentRequired, wantState: "declined", wantDecline: "card_declined"},
		{name: "unknown fields ignored", body: `{"amount":500,"currency":"usd","reference":"r","extra":{"x":[1]}}`, wantStatus: http.StatusOK, wantState: "succeeded"},
		{name: "upper-case currency accepted", body: `{"amount":500,"currency":"USD"}`, wantStatus: http.StatusOK, wantState: "succeeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, srv := start(t, sim.Config{})
			s.SetChaos(tt.chaos)
			r := charge(t, srv, "key-1", tt.body)
			if r.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d (body %s)", r.status, tt.wantStatus, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			got := decode[chargeAnswer](t, r.body)
			if got.Status != tt.wantState || got.DeclineCode != tt.wantDecline {
				t.Errorf("answer = %+v, want status %q decline %q", got, tt.wantState, tt.wantDecline)
			}
			if !strings.HasPrefix(got.ID, "ch_") {
				t.Errorf("id = %q, want ch_ prefix", got.ID)
			}
			if got.Currency != "usd" {
				t.Errorf("currency = %q, want usd", got.Currency)
			}
			if n := s.Effects("key-1"); n != 1 {
				t.Errorf("effects = %d, want 1", n)
			}
		})
	}
}

func TestChargeBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		key        string
		body       string
		wantStatus int
	}{
		{name: "missing key", key: "", body: chargeBody(100), wantStatus: http.StatusBadRequest},
		{name: "key too long", key: strings.Repeat("k", 256), body: chargeBody(100), wantStatus: http.StatusBadRequest},
		{name: "not JSON", key: "k", body: `amount=100`, wantStatus: http.StatusBadRequest},
		{name: "empty body", key: "k", body: ``, wantStatus: http.StatusBadRequest},
		{name: "null", key: "k", body: `null`, wantStatus: http.StatusBadRequest},
		{name: "zero amount", key: "k", body: `{"amount":0,"currency":"usd"}`, wantStatus: http.StatusBadRequest},
		{name: "negative amount", key: "k", body: `{"amount":-5,"currency":"usd"}`, wantStatus: http.StatusBadRequest},
		{name: "fractional amount", key: "k", body: `{"amount":1.5,"currency":"usd"}`, wantStatus: http.StatusBadRequest},
		{name: "string amount", key: "k", body: `{"amount":"100","currency":"usd"}`, wantStatus: http.StatusBadRequest},
		{name: "missing currency", key: "k", body: `{"amount":100}`, wantStatus: http.StatusBadRequest},
		{name: "bad currency", key: "k", body: `{"amount":100,"currency":"us1"}`, wantStatus: http.StatusBadRequest},
		{name: "reference too long", key: "k", body: fmt.Sprintf(`{"amount":100,"currency":"usd","reference":%q}`, strings.Repeat("r", 256)), wantStatus: http.StatusBadRequest},
		{name: "trailing data", key: "k", body: chargeBody(100) + `{}`, wantStatus: http.StatusBadRequest},
		{name: "body over 64 KiB", key: "k", body: fmt.Sprintf(`{"amount":100,"currency":"usd","pad":%q}`, strings.Repeat("x", 64<<10)), wantStatus: http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, srv := start(t, sim.Config{})
			r := charge(t, srv, tt.key, tt.body)
			if r.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d (body %s)", r.status, tt.wantStatus, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type = %q, want application/problem+json", ct)
			}
			if n := s.TotalEffects(); n != 0 {
				t.Errorf("effects = %d, want 0", n)
			}
			if n := s.Calls(tt.key); n != 0 {
				t.Errorf("calls = %d, want 0: invalid requests are not calls", n)
			}
		})
	}
}

func TestDistinctKeysGetDistinctCharges(t *testing.T) {
	t.Parallel()
	s, srv := start(t, sim.Config{})
	a := decode[chargeAnswer](t, charge(t, srv, "a", chargeBody(100)).body)
	b := decode[chargeAnswer](t, charge(t, srv, "b", chargeBody(100)).body)
	if a.ID == b.ID {
		t.Errorf("two keys share charge id %q", a.ID)
	}
	if n := s.TotalEffects(); n != 2 {
		t.Errorf("total effects = %d, want 2", n)
	}
}
