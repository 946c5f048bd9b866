package provider_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/sim"
)

// TestHTTPLookupFindsTheChargeOfATimedOutCall: the charge took effect, the
// call timed out without an answer, and the lookup names that same charge.
func TestHTTPLookupFindsTheChargeOfATimedOutCall(t *testing.T) {
	t.Parallel()
	s, srv := startSim(t)
	p := newHTTP(t, srv.URL)
	s.SetChaos(sim.Chaos{Latency: sim.MaxDuration})

	ctx := newExpiringCtx()
	errc := make(chan error, 1)
	go func() {
		_, err := p.Charge(ctx, charge1("op-1"))
		errc <- err
	}()
	// The deadline passes once the charge has happened, not before.
	waitFor(t, "the charge's effect", func() bool { return s.Effects("op-1") == 1 })
	ctx.expire()
	assertOutcome(t, <-errc, app.FaultTimeout, true)

	s.SetChaos(sim.Chaos{})
	got, err := p.Lookup(context.Background(), "op-1")
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	retry, err := p.Charge(context.Background(), charge1("op-1"))
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if want := (app.ChargeLookup{Status: app.LookupSucceeded, ProviderRef: retry.ProviderRef}); got != want {
		t.Errorf("lookup = %+v, want %+v", got, want)
	}
	if retry.Amount != 1000 || retry.Currency != "usd" {
		t.Errorf("retry answer amount %d %q, want 1000 usd", retry.Amount, retry.Currency)
	}
	if n := s.Effects("op-1"); n != 1 {
		t.Errorf("effects = %d, want 1", n)
	}
}

// TestHTTPLookupNotFoundClosesTheKey: nothing under the key, and from then
// on nothing can be: the charge that would have landed is refused.
func TestHTTPLookupNotFoundClosesTheKey(t *testing.T) {
	t.Parallel()
	s, srv := startSim(t)
	p := newHTTP(t, srv.URL)
	key := "op/never used" // escaped into one path segment

	got, err := p.Lookup(context.Background(), key)
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	if want := (app.ChargeLookup{Status: app.LookupNotFound, KeyClosed: true}); got != want {
		t.Errorf("lookup = %+v, want %+v", got, want)
	}
	_, err = p.Charge(context.Background(), charge1(key))
	assertOutcome(t, err, app.FaultKeyClosed, false)
	if pe := providerError(t, err); pe.StatusCode != http.StatusConflict || pe.Fault() {
		t.Errorf("fault %+v: want 409, not counted against the breaker", pe)
	}
	if n := s.Effects(key); n != 0 {
		t.Errorf("effects = %d, want 0", n)
	}
	if !s.Closed(key) {
		t.Error("sim does not show the key closed")
	}
}

func TestHTTPLookupOfADecline(t *testing.T) {
	t.Parallel()
	_, srv := startSim(t)
	p := newHTTP(t, srv.URL)
	res, err := p.Charge(context.Background(), app.Charge{IdempotencyKey: "op-d", Amount: 1002, Currency: "USD"})
	if err != nil || !res.Declined {
		t.Fatalf("Charge = %+v, %v; want a decline", res, err)
	}
	if res.Amount != 1002 || res.Currency != "usd" {
		t.Errorf("decline answer amount %d %q, want 1002 usd", res.Amount, res.Currency)
	}
	got, err := p.Lookup(context.Background(), "op-d")
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	if want := (app.ChargeLookup{Status: app.LookupDeclined, ProviderRef: res.ProviderRef, DeclineCode: "card_declined"}); got != want {
		t.Errorf("lookup = %+v, want %+v", got, want)
	}
}

func TestHTTPLookupWhileSimIsUnavailable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		chaos sim.Chaos
		fail  int
	}{
		{name: "down", chaos: sim.Chaos{Down: true}},
		{name: "error_rate", chaos: sim.Chaos{ErrorRate: 1}},
		{name: "next lookup fails", fail: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, srv := startSim(t)
			s.SetChaos(tt.chaos)
			s.FailNextLookups(tt.fail)
			_, err := newHTTP(t, srv.URL).Lookup(context.Background(), "op-1")
			assertOutcome(t, err, app.FaultUnavailable, false)
			if s.Closed("op-1") {
				t.Error("a failed lookup closed the key")
			}
		})
	}
}

// TestHTTPLookupRacingChargeNeverBoth runs a lookup and the first charge
// of a key at once, many times, through the real provider and simulator:
// "nothing charged" and a charge must never both be true.
func TestHTTPLookupRacingChargeNeverBoth(t *testing.T) {
	t.Parallel()
	s, srv := startSim(t)
	p := newHTTP(t, srv.URL)
	const rounds = 200
	for i := range rounds {
		key := fmt.Sprintf("race-%d", i)
		var l app.ChargeLookup
		var lerr, cerr error
		var res app.ChargeResult
		var wg sync.WaitGroup
		gate := make(chan struct{})
		wg.Go(func() { <-gate; l, lerr = p.Lookup(context.Background(), key) })
		wg.Go(func() { <-gate; res, cerr = p.Charge(context.Background(), charge1(key)) })
		close(gate)
		wg.Wait()
		if lerr != nil {
			t.Fatalf("round %d: Lookup: %v", i, lerr)
		}
		effects := s.Effects(key)
		switch l.Status {
		case app.LookupNotFound:
			if effects != 0 || !l.KeyClosed {
				t.Fatalf("round %d: not found (closed %v) yet %d effects", i, l.KeyClosed, effects)
			}
			assertOutcome(t, cerr, app.FaultKeyClosed, false)
		case app.LookupSucceeded:
			if cerr != nil || effects != 1 || res.ProviderRef != l.ProviderRef {
				t.Fatalf("round %d: lookup %+v, charge %+v %v, effects %d", i, l, res, cerr, effects)
			}
		default:
			t.Fatalf("round %d: lookup %+v", i, l)
		}
	}
}

func TestHTTPLookupAnswerMapping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		status     int
		body       string
		want       app.ChargeLookup
		wantKind   app.FaultKind
		wantStatus int
	}{
		{name: "succeeded", status: 200, body: `{"id":"ch_1","status":"succeeded","amount":5}`, want: app.ChargeLookup{Status: app.LookupSucceeded, ProviderRef: "ch_1"}},
		{name: "declined with code", status: 200, body: `{"id":"ch_1","status":"declined","decline_code":"expired_card"}`, want: app.ChargeLookup{Status: app.LookupDeclined, ProviderRef: "ch_1", DeclineCode: "expired_card"}},
		{name: "declined without code", status: 200, body: `{"id":"ch_1","status":"declined"}`, want: app.ChargeLookup{Status: app.LookupDeclined, ProviderRef: "ch_1", DeclineCode: "declined"}},
		{name: "processing", status: 200, body: `{"status":"processing"}`, want: app.ChargeLookup{Status: app.LookupProcessing}},
		{name: "not found closes", status: 404, body: `{"status":"not_found"}`, want: app.ChargeLookup{Status: app.LookupNotFound, KeyClosed: true}},
		{name: "bare 404 proves nothing", status: 404, body: `404 page not found`, wantKind: app.FaultRejected, wantStatus: 404},
		{name: "404 problem proves nothing", status: 404, body: `{"type":"about:blank","status":404}`, wantKind: app.FaultRejected, wantStatus: 404},
		{name: "succeeded without id", status: 200, body: `{"status":"succeeded"}`, wantKind: app.FaultUnavailable, wantStatus: 200},
		{name: "unknown status", status: 200, body: `{"id":"ch_1","status":"refunded"}`, wantKind: app.FaultUnavailable, wantStatus: 200},
		{name: "200 not found is no answer", status: 200, body: `{"status":"not_found"}`, wantKind: app.FaultUnavailable, wantStatus: 200},
		{name: "unparseable", status: 200, body: `{"id":`, wantKind: app.FaultUnavailable, wantStatus: 200},
		{name: "503", status: 503, body: `{"title":"Service Unavailable"}`, wantKind: app.FaultUnavailable, wantStatus: 503},
		{name: "400", status: 400, body: `{"detail":"bad key"}`, wantKind: app.FaultRejected, wantStatus: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodGet || r.URL.EscapedPath() != "/api/charges/op%2F1%20x" || r.Header.Get("Idempotency-Key") != "" {
					t.Errorf("request %s %s headers %v", r.Method, r.URL.EscapedPath(), r.Header)
				}
				w.WriteHeader(tt.status)
				fmt.Fprint(w, tt.body)
			}))
			t.Cleanup(srv.Close)
			got, err := newHTTP(t, srv.URL+"/api/").Lookup(context.Background(), "op/1 x")
			if tt.wantKind != "" {
				assertFault(t, err, tt.wantKind, tt.wantStatus)
				assertOutcome(t, err, tt.wantKind, false)
				return
			}
			if err != nil {
				t.Fatalf("Lookup: %v", err)
			}
			if got != tt.want {
				t.Errorf("lookup = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestHTTPLookupWithoutKeyIsRejected(t *testing.T) {
	t.Parallel()
	_, srv := startSim(t)
	_, err := newHTTP(t, srv.URL).Lookup(context.Background(), "")
	assertOutcome(t, err, app.FaultRejected, false)
}
