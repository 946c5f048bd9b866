package provider_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/apptest"
	"github.com/spillway/spillway/app/provider"
	"github.com/spillway/spillway/app/sim"
)

func newHTTP(t *testing.T, base string) *provider.HTTP {
	t.Helper()
	p, err := provider.NewHTTP(provider.HTTPConfig{BaseURL: base})
	if err != nil {
		t.Fatalf("NewHTTP: %v", err)
	}
	return p
}

func startSim(t *testing.T) (*sim.Sim, *httptest.Server) {
	t.Helper()
	s := sim.New(sim.Config{})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

// guard is the deadline of calls that must not time out: a failure guard
// only, far beyond what a loopback call takes on a loaded machine.
const guard = time.Minute

// chargeTimingOutAfterEffect charges through p with a deadline that passes
// once the simulator has recorded the charge's effect, so the call times
// out after the provider acted, whatever the machine's speed. s must hold
// its answer (a latency no test waits out).
func chargeTimingOutAfterEffect(t *testing.T, p *provider.HTTP, s *sim.Sim, c app.Charge) (app.ChargeResult, error) {
	t.Helper()
	ctx, expire := apptest.ExpiringContext()
	type result struct {
		res app.ChargeResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := p.Charge(ctx, c)
		done <- result{res, err}
	}()
	apptest.WaitFor(t, "the charge's effect at the simulator", func() bool { return s.Effects(c.IdempotencyKey) == 1 })
	expire()
	r := <-done
	return r.res, r.err
}

func TestHTTPAgainstSim(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		chaos       sim.Chaos
		amount      int64
		timeout     bool   // the deadline passes once the effect is recorded
		wantDecline string // "" → success unless wantKind
		wantKind    app.FaultKind
		wantStatus  int
		wantEffects int
	}{
		{name: "success", amount: 1000, wantEffects: 1},
		{name: "decline by amount", amount: 1002, wantDecline: "card_declined", wantEffects: 1},
		{name: "decline by rate", chaos: sim.Chaos{DeclineRate: 1}, amount: 1000, wantDecline: "card_declined", wantEffects: 1},
		{name: "down is unavailable", chaos: sim.Chaos{Down: true}, amount: 1000, wantKind: app.FaultUnavailable, wantStatus: 503},
		{name: "error rate is unavailable", chaos: sim.Chaos{ErrorRate: 1}, amount: 1000, wantKind: app.FaultUnavailable, wantStatus: 503},
		// The effect happened even though we timed out: the reason every
		// retry must reuse the key.
		{name: "latency past deadline is a timeout", chaos: sim.Chaos{Latency: sim.MaxDuration}, amount: 1000, timeout: true, wantKind: app.FaultTimeout, wantEffects: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, srv := startSim(t)
			s.SetChaos(tt.chaos)
			key := "op-" + strings.ReplaceAll(tt.name, " ", "-")
			p, c := newHTTP(t, srv.URL), app.Charge{IdempotencyKey: key, Amount: tt.amount, Currency: "usd", Reference: "r"}
			var res app.ChargeResult
			var err error
			if tt.timeout {
				res, err = chargeTimingOutAfterEffect(t, p, s, c)
			} else {
				ctx, cancel := context.WithTimeout(context.Background(), guard)
				defer cancel()
				res, err = p.Charge(ctx, c)
			}

			switch {
			case tt.wantKind != "":
				assertFault(t, err, tt.wantKind, tt.wantStatus)
			case err != nil:
				t.Fatalf("Charge: %v", err)
			case res.Declined != (tt.wantDecline != "") || res.DeclineCode != tt.wantDecline || !strings.HasPrefix(res.ProviderRef, "ch_"):
				t.Errorf("result = %+v, want decline code %q and a ch_ ref", res, tt.wantDecline)
			}
			if n := s.Effects(key); n != tt.wantEffects {
				t.Errorf("effects = %d, want %d", n, tt.wantEffects)
			}
			if n := s.Calls(key); n != 1 {
				t.Errorf("calls = %d, want 1: the provider must not retry on its own", n)
			}
		})
	}
}

// TestHTTPRetryAfterTimeoutIsExactlyOnce is the end-to-end contract: a
// timed-out call took effect, and the retry with the same key returns that
// same charge.
func TestHTTPRetryAfterTimeoutIsExactlyOnce(t *testing.T) {
	t.Parallel()
	s, srv := startSim(t)
	p := newHTTP(t, srv.URL)
	c := app.Charge{IdempotencyKey: "op-timeout", Amount: 1500, Currency: "usd"}

	s.SetChaos(sim.Chaos{Latency: sim.MaxDuration})
	_, err := chargeTimingOutAfterEffect(t, p, s, c)
	assertFault(t, err, app.FaultTimeout, 0)

	s.SetChaos(sim.Chaos{})
	res, err := p.Charge(context.Background(), c)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if res.Declined || res.ProviderRef == "" {
		t.Errorf("retry result = %+v", res)
	}
	if n := s.Effects(c.IdempotencyKey); n != 1 {
		t.Errorf("effects = %d, want 1", n)
	}
}

func TestHTTPStatusMapping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		status     int
		body       string
		want       app.ChargeResult
		wantKind   app.FaultKind
		wantStatus int
	}{
		{name: "200 succeeded", status: 200, body: `{"id":"x1","status":"succeeded"}`, want: app.ChargeResult{ProviderRef: "x1"}},
		{name: "402 with code", status: 402, body: `{"id":"x2","status":"declined","decline_code":"insufficient_funds"}`, want: app.ChargeResult{Declined: true, ProviderRef: "x2", DeclineCode: "insufficient_funds"}},
		{name: "402 unreadable is still a decline", status: 402, body: `nope`, want: app.ChargeResult{Declined: true, DeclineCode: "declined"}},
		{name: "200 unparseable", status: 200, body: `{"id":`, wantKind: app.FaultUnavailable, wantStatus: 200},
		{name: "200 without id", status: 200, body: `{"status":"succeeded"}`, wantKind: app.FaultUnavailable, wantStatus: 200},
		{name: "200 declined status", status: 200, body: `{"id":"x","status":"declined"}`, wantKind: app.FaultUnavailable, wantStatus: 200},
		{name: "200 over 1 MiB", status: 200, body: `{"id":"x","status":"succeeded","pad":"` + strings.Repeat("p", 1<<20) + `"}`, wantKind: app.FaultUnavailable, wantStatus: 200},
		{name: "400 rejected", status: 400, body: `{"title":"Bad Request","detail":"amount must be positive"}`, wantKind: app.FaultRejected, wantStatus: 400},
		{name: "422 rejected", status: 422, body: ``, wantKind: app.FaultRejected, wantStatus: 422},
		{name: "404 rejected", status: 404, body: `not found`, wantKind: app.FaultRejected, wantStatus: 404},
		{name: "408 unavailable", status: 408, wantKind: app.FaultUnavailable, wantStatus: 408},
		{name: "409 unavailable", status: 409, wantKind: app.FaultUnavailable, wantStatus: 409},
		{name: "429 unavailable", status: 429, wantKind: app.FaultUnavailable, wantStatus: 429},
		{name: "500 unavailable", status: 500, wantKind: app.FaultUnavailable, wantStatus: 500},
		{name: "502 unavailable", status: 502, body: `<html>`, wantKind: app.FaultUnavailable, wantStatus: 502},
		{name: "302 not followed", status: 302, wantKind: app.FaultUnavailable, wantStatus: 302},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/api/charges" || r.Header.Get("Idempotency-Key") != "op-1" || r.Header.Get("Content-Type") != "application/json" {
					t.Errorf("request %s %s headers %v", r.Method, r.URL.Path, r.Header)
				}
				if tt.status == http.StatusFound {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(tt.status)
				fmt.Fprint(w, tt.body)
			}))
			t.Cleanup(srv.Close)
			res, err := newHTTP(t, srv.URL+"/api/").Charge(context.Background(), app.Charge{IdempotencyKey: "op-1", Amount: 100, Currency: "usd"})
			if tt.wantKind != "" {
				assertFault(t, err, tt.wantKind, tt.wantStatus)
				return
			}
			if err != nil {
				t.Fatalf("Charge: %v", err)
			}
			if res != tt.want {
				t.Errorf("result = %+v, want %+v", res, tt.want)
			}
		})
	}
}

func TestHTTPTransportFaults(t *testing.T) {
	t.Parallel()
	// Held for the test, so no other listener can be given the port.
	gone := "http://" + apptest.RefusingAddr(t)
	_, live := startSim(t)

	tests := []struct {
		name     string
		base     string
		charge   app.Charge
		wantKind app.FaultKind
	}{
		{name: "connection refused", base: gone, charge: app.Charge{IdempotencyKey: "k", Amount: 1, Currency: "usd"}, wantKind: app.FaultUnavailable},
		{name: "no idempotency key", base: live.URL, charge: app.Charge{Amount: 1, Currency: "usd"}, wantKind: app.FaultRejected},
		{name: "non-positive amount", base: live.URL, charge: app.Charge{IdempotencyKey: "k", Amount: -1, Currency: "usd"}, wantKind: app.FaultRejected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := newHTTP(t, tt.base).Charge(context.Background(), tt.charge)
			assertFault(t, err, tt.wantKind, 0)
		})
	}
}

func TestNewHTTPValidates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		base    string
		wantErr bool
	}{
		{"http://127.0.0.1:8080", false},
		{"https://payments.example.com/v1/", false},
		{"", true},
		{"127.0.0.1:8080", true},
		{"/charges", true},
		{"ftp://127.0.0.1", true},
		{"http://", true},
		{"http://127.0.0.1/?x=1", true},
		{"http://user:pw@127.0.0.1/", true},
		{"http://[::1", true},
	}
	for _, tt := range tests {
		t.Run(tt.base, func(t *testing.T) {
			t.Parallel()
			_, err := provider.NewHTTP(provider.HTTPConfig{BaseURL: tt.base})
			if (err != nil) != tt.wantErr {
				t.Errorf("NewHTTP(%q) err = %v, wantErr %v", tt.base, err, tt.wantErr)
			}
		})
	}
}

func TestHTTPHealthFollowsTheSim(t *testing.T) {
	t.Parallel()
	s, srv := startSim(t)
	p := newHTTP(t, srv.URL)
	if err := p.Health(context.Background()); err != nil {
		t.Fatalf("Health while up: %v", err)
	}
	s.SetChaos(sim.Chaos{Down: true})
	err := p.Health(context.Background())
	assertFault(t, err, app.FaultUnavailable, http.StatusServiceUnavailable)
	assertOutcome(t, err, app.FaultUnavailable, false)
	s.SetChaos(sim.Chaos{})
	if err := p.Health(context.Background()); err != nil {
		t.Errorf("Health after recovery: %v", err)
	}
}
