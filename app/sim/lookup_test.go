package sim_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spillway/spillway/app/sim"
)

// lookup asks what happened under key and fails the test on transport errors.
func lookup(t *testing.T, srv string, key string) reply {
	t.Helper()
	r, err := do(context.Background(), t, http.MethodGet, srv+"/charges/"+url.PathEscape(key), nil, "")
	if err != nil {
		t.Fatalf("GET /charges/%s: %v", key, err)
	}
	return r
}

type lookupAnswer struct {
	ID          string    `json:"id"`
	Status      string    `json:"status"`
	Amount      int64     `json:"amount"`
	Currency    string    `json:"currency"`
	Reference   string    `json:"reference"`
	CreatedAt   time.Time `json:"created_at"`
	DeclineCode string    `json:"decline_code"`
}

// waitFor polls cond until it holds. It waits on the simulator's own
// state, never on a guess of how long something takes; the cap only turns
// a hang into a failure.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLookupAnswersTheChargeUnderTheKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		amount      int64
		wantStatus  string
		wantDecline string
	}{
		{name: "succeeded", amount: 1000, wantStatus: "succeeded"},
		{name: "declined", amount: 1002, wantStatus: "declined", wantDecline: "card_declined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, srv := start(t, sim.Config{})
			c := decode[chargeAnswer](t, charge(t, srv, "op-1", chargeBody(tt.amount)).body)

			r := lookup(t, srv.URL, "op-1")
			if r.status != http.StatusOK {
				t.Fatalf("lookup status = %d, body %s", r.status, r.body)
			}
			got := decode[lookupAnswer](t, r.body)
			want := lookupAnswer{ID: c.ID, Status: tt.wantStatus, Amount: tt.amount, Currency: "usd", Reference: "ref-1", CreatedAt: got.CreatedAt, DeclineCode: tt.wantDecline}
			if got != want || got.CreatedAt.IsZero() {
				t.Errorf("lookup = %+v, want %+v", got, want)
			}
			if s.Closed("op-1") {
				t.Error("a lookup that found the charge closed the key")
			}
			if n := s.Lookups("op-1"); n != 1 {
				t.Errorf("lookups = %d, want 1", n)
			}
		})
	}
}

func TestLookupNotFoundClosesTheKey(t *testing.T) {
	t.Parallel()
	s, srv := start(t, sim.Config{})
	key := "never/used key" // slash and space survive the path

	r := lookup(t, srv.URL, key)
	if r.status != http.StatusNotFound || strings.TrimSpace(string(r.body)) != `{"status":"not_found"}` {
		t.Fatalf("lookup = %d %s, want 404 not_found", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	// A charge still on the wire when we concluded "not found" must not charge.
	for range 2 {
		c := charge(t, srv, key, chargeBody(1000))
		if c.status != http.StatusConflict || string(c.body) != `{"status":"key_closed"}` {
			t.Fatalf("charge after not_found = %d %s, want 409 key_closed", c.status, c.body)
		}
	}
	if n := s.Effects(key); n != 0 {
		t.Errorf("effects = %d, want 0", n)
	}
	if n := s.Calls(key); n != 2 {
		t.Errorf("calls = %d, want 2", n)
	}
	if r := lookup(t, srv.URL, key); r.status != http.StatusNotFound {
		t.Errorf("second lookup = %d, want 404", r.status)
	}
	st := decode[keyStatsJSON](t, control(t, srv.URL, http.MethodGet, "/control/effects/"+url.PathEscape(key), "").body)
	if want := (keyStatsJSON{Key: key, Calls: 2, Lookups: 2, Closed: true}); st != want {
		t.Errorf("effects = %+v, want %+v", st, want)
	}
}

func TestLookupDuringLatencySeesTheCharge(t *testing.T) {
	t.Parallel()
	s, srv := start(t, sim.Config{})
	s.SetChaos(sim.Chaos{Latency: sim.MaxDuration})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	posted := make(chan error, 1)
	go func() {
		_, err := do(ctx, t, http.MethodPost, srv.URL+"/charges", map[string]string{"Idempotency-Key": "slow"}, chargeBody(1000))
		posted <- err
	}()
	// The effect is recorded on arrival; the answer is what waits.
	waitFor(t, "the charge's effect", func() bool { return s.Effects("slow") == 1 })

	s.SetChaos(sim.Chaos{}) // the lookup itself should not wait
	r := lookup(t, srv.URL, "slow")
	if r.status != http.StatusOK {
		t.Fatalf("lookup during the charge's delay = %d %s, want 200", r.status, r.body)
	}
	st := decode[keyStatsJSON](t, control(t, srv.URL, http.MethodGet, "/control/effects/slow", "").body)
	if got := decode[lookupAnswer](t, r.body); got.ID != st.ChargeID || got.Status != "succeeded" {
		t.Errorf("lookup = %+v, want the charge %s", got, st.ChargeID)
	}
	cancel()
	if err := <-posted; !errors.Is(err, context.Canceled) {
		t.Errorf("the delayed charge returned %v, want it still waiting until cancelled", err)
	}
}

func TestLookupLatencyAppliesAfterClosing(t *testing.T) {
	t.Parallel()
	s, srv := start(t, sim.Config{})
	s.SetChaos(sim.Chaos{Latency: sim.MaxDuration})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := do(ctx, t, http.MethodGet, srv.URL+"/charges/k", nil, "")
		done <- err
	}()
	waitFor(t, "the lookup to close the key", func() bool { return s.Closed("k") })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("lookup returned %v before latency, want it delayed until cancelled", err)
	}
	// The client gave up, but the key is closed all the same.
	s.SetChaos(sim.Chaos{})
	if r := charge(t, srv, "k", chargeBody(100)); r.status != http.StatusConflict {
		t.Errorf("charge after an abandoned lookup = %d, want 409", r.status)
	}
}

func TestLookupUnavailableDoesNotCloseTheKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		chaos sim.Chaos
		fail  int
	}{
		{name: "down", chaos: sim.Chaos{Down: true}},
		{name: "error_rate 1", chaos: sim.Chaos{ErrorRate: 1}},
		{name: "fail next lookup", fail: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, srv := start(t, sim.Config{})
			s.SetChaos(tt.chaos)
			s.FailNextLookups(tt.fail)
			r := lookup(t, srv.URL, "k")
			if r.status != http.StatusServiceUnavailable || r.header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("lookup = %d %q, want 503 problem", r.status, r.header.Get("Content-Type"))
			}
			if s.Closed("k") {
				t.Fatal("a 503 lookup closed the key")
			}
			s.SetChaos(sim.Chaos{})
			if r := charge(t, srv, "k", chargeBody(100)); r.status != http.StatusOK {
				t.Errorf("charge after a failed lookup = %d, want 200", r.status)
			}
		})
	}
}

func TestLookupRefusesBadKeys(t *testing.T) {
	t.Parallel()
	_, srv := start(t, sim.Config{})
	for _, path := range []string{"/charges/", "/charges/" + strings.Repeat("k", 256)} {
		r, err := do(context.Background(), t, http.MethodGet, srv.URL+path, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		if r.status != http.StatusBadRequest {
			t.Errorf("GET %.20s… = %d, want 400", path, r.status)
		}
	}
}

// TestLookupRacingFirstChargeNeverSeesBoth starts a lookup and the first
// charge of a key together, many times: either the lookup closed the key
// and the charge was refused, or the charge happened and the lookup saw
// it. "Not found" together with an effect would let a charge slip past a
// conclusion that nothing happened.
func TestLookupRacingFirstChargeNeverSeesBoth(t *testing.T) {
	t.Parallel()
	s, srv := start(t, sim.Config{})
	const rounds = 200
	var sawClosed, sawCharged int
	for i := range rounds {
		key := fmt.Sprintf("race-%d", i)
		var lr, cr reply
		var lerr, cerr error
		var wg sync.WaitGroup
		gate := make(chan struct{})
		ctx := context.Background()
		wg.Go(func() {
			<-gate
			lr, lerr = do(ctx, t, http.MethodGet, srv.URL+"/charges/"+key, nil, "")
		})
		wg.Go(func() {
			<-gate
			cr, cerr = do(ctx, t, http.MethodPost, srv.URL+"/charges", map[string]string{"Idempotency-Key": key}, chargeBody(100))
		})
		close(gate)
		wg.Wait()
		if lerr != nil || cerr != nil {
			t.Fatalf("round %d: lookup err %v, charge err %v", i, lerr, cerr)
		}

		effects := s.Effects(key)
		switch {
		case lr.status == http.StatusNotFound && cr.status == http.StatusConflict && effects == 0:
			sawClosed++
		case lr.status == http.StatusOK && cr.status == http.StatusOK && effects == 1:
			if got, want := decode[lookupAnswer](t, lr.body).ID, decode[chargeAnswer](t, cr.body).ID; got != want {
				t.Fatalf("round %d: lookup saw charge %s, charge answered %s", i, got, want)
			}
			sawCharged++
		default:
			t.Fatalf("round %d: lookup %d %s, charge %d %s, effects %d", i, lr.status, lr.body, cr.status, cr.body, effects)
		}
	}
	t.Logf("%d rounds: %d closed first, %d charged first", rounds, sawClosed, sawCharged)
}
