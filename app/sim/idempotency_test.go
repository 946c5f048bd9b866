package sim_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/spillway/spillway/app/apptest"
	"github.com/spillway/spillway/app/sim"
)

func TestReplayReturnsFirstAnswer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		amount int64
		// between runs after the first request and must not change the
		// stored answer.
		between sim.Chaos
		want    int
	}{
		{name: "success stays success under decline_rate 1", amount: 1000, between: sim.Chaos{DeclineRate: 1}, want: http.StatusOK},
		{name: "decline stays decline", amount: 1002, want: http.StatusPaymentRequired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, srv := start(t, sim.Config{})
			first := charge(t, srv, "op-1", chargeBody(tt.amount))
			s.SetChaos(tt.between)
			// A different body with the same key still gets the first answer.
			second := charge(t, srv, "op-1", chargeBody(tt.amount+100))
			if first.status != tt.want || second.status != tt.want {
				t.Fatalf("statuses = %d, %d, want %d", first.status, second.status, tt.want)
			}
			if !bytes.Equal(first.body, second.body) {
				t.Errorf("replay body differs:\nfirst  %s\nsecond %s", first.body, second.body)
			}
			if n := s.Effects("op-1"); n != 1 {
				t.Errorf("effects = %d, want 1", n)
			}
			if n := s.Calls("op-1"); n != 2 {
				t.Errorf("calls = %d, want 2", n)
			}
		})
	}
}

func TestConcurrentSameKeyHasOneEffect(t *testing.T) {
	t.Parallel()
	s, srv := start(t, sim.Config{})
	// A little latency keeps the requests overlapping.
	s.SetChaos(sim.Chaos{Latency: 20 * time.Millisecond})

	const n = 50
	replies := make([]reply, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			replies[i] = charge(t, srv, "same-key", chargeBody(2500))
		})
	}
	wg.Wait()

	for i, r := range replies {
		if r.status != http.StatusOK || !bytes.Equal(r.body, replies[0].body) {
			t.Errorf("reply %d = %d %s, want 200 %s", i, r.status, r.body, replies[0].body)
		}
	}
	if got := s.Effects("same-key"); got != 1 {
		t.Errorf("effects = %d, want 1", got)
	}
	if got := s.Calls("same-key"); got != n {
		t.Errorf("calls = %d, want %d", got, n)
	}
}

// TestTimedOutClientStillCausedEffect is the exactly-once scenario: the
// client gives up during latency, the charge happened anyway, and the
// retry with the same key gets the stored answer instead of a second charge.
func TestTimedOutClientStillCausedEffect(t *testing.T) {
	t.Parallel()
	s, srv := start(t, sim.Config{})
	// As long as the simulator allows: the answer cannot beat the
	// client's deadline, and the handler ends when the client leaves.
	s.SetChaos(sim.Chaos{Latency: sim.MaxDuration})

	// The client's deadline passes once the charge has arrived, not after
	// a duration a slow machine might need just to deliver the request.
	ctx, expire := apptest.ExpiringContext()
	h := map[string]string{"Idempotency-Key": "slow-op"}
	errc := make(chan error, 1)
	go func() {
		_, err := do(ctx, t, http.MethodPost, srv.URL+"/charges", h, chargeBody(700))
		errc <- err
	}()
	// The effect precedes the delay: it is there while the client still
	// waits for its answer.
	apptest.WaitFor(t, "the charge's effect", func() bool { return s.Effects("slow-op") == 1 })
	select {
	case err := <-errc:
		t.Fatalf("the client heard back (%v) before its deadline; want the answer delayed", err)
	default:
	}
	expire()
	if err := <-errc; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	if n := s.Effects("slow-op"); n != 1 {
		t.Fatalf("effects after timeout = %d, want 1: the effect precedes the delay", n)
	}

	s.SetChaos(sim.Chaos{})
	r := charge(t, srv, "slow-op", chargeBody(700))
	if r.status != http.StatusOK {
		t.Fatalf("retry status = %d, body %s", r.status, r.body)
	}
	if n := s.Effects("slow-op"); n != 1 {
		t.Errorf("effects after retry = %d, want 1", n)
	}
	if n := s.Calls("slow-op"); n != 2 {
		t.Errorf("calls = %d, want 2", n)
	}
}
