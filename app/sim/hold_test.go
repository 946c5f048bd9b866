package sim_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/spillway/spillway/app/apptest"
	"github.com/spillway/spillway/app/sim"
)

type replyOrErr struct {
	reply
	err error
}

// chargeAsync posts a charge on another goroutine; the test goroutine
// reads the reply and fails the test if need be.
func chargeAsync(t *testing.T, srv string, key string) <-chan replyOrErr {
	t.Helper()
	h := map[string]string{"Content-Type": "application/json", "Idempotency-Key": key}
	got := make(chan replyOrErr, 1)
	go func() {
		r, err := do(context.Background(), t, http.MethodPost, srv+"/charges", h, chargeBody(700))
		got <- replyOrErr{r, err}
	}()
	return got
}

func (r replyOrErr) status(t *testing.T) int {
	t.Helper()
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.reply.status
}

// A held answer is held after the charge is recorded, only for its key,
// until Release; a replay after Release is not held.
func TestHoldKeepsAnswersBackUntilRelease(t *testing.T) {
	t.Parallel()
	s, srv := start(t, sim.Config{})
	s.Hold("held")
	got := chargeAsync(t, srv.URL, "held")
	apptest.WaitFor(t, "the charge to reach the hold", func() bool { return s.Held("held") == 1 })
	if s.Effects("held") != 1 || s.Calls("held") != 1 {
		t.Fatalf("held before its work was recorded: effects %d, calls %d", s.Effects("held"), s.Calls("held"))
	}
	// Other keys are not held.
	if r := charge(t, srv, "free", chargeBody(700)); r.status != http.StatusOK || s.Held("free") != 0 {
		t.Fatalf("another key: %d, held %d", r.status, s.Held("free"))
	}
	select {
	case r := <-got:
		t.Fatalf("the held answer arrived before Release: %d %v", r.reply.status, r.err)
	default:
	}
	s.Release("held")
	if r := <-got; r.status(t) != http.StatusOK {
		t.Fatalf("released answer: %d %s", r.reply.status, r.body)
	}
	if r := charge(t, srv, "held", chargeBody(700)); r.status != http.StatusOK || s.Held("held") != 1 {
		t.Fatalf("after Release: %d, held %d", r.status, s.Held("held"))
	}
	if s.Effects("held") != 1 {
		t.Fatalf("effects %d, want 1", s.Effects("held"))
	}
}

// Lookups and chaos failures are held too, once decided: a lookup that
// found nothing has closed the key by the time it is held, and a client
// that gives up while held has still closed it.
func TestHoldAppliesToLookupsAndFailures(t *testing.T) {
	t.Parallel()
	s, srv := start(t, sim.Config{})
	s.Hold("k")
	ctx, expire := apptest.ExpiringContext()
	errc := make(chan error, 1)
	go func() {
		_, err := do(ctx, t, http.MethodGet, srv.URL+"/charges/k", nil, "")
		errc <- err
	}()
	apptest.WaitFor(t, "the lookup to reach the hold", func() bool { return s.Held("k") == 1 })
	if !s.Closed("k") {
		t.Fatal("a held not-found lookup has not closed the key")
	}
	expire()
	if err := <-errc; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}

	s.SetChaos(sim.Chaos{Down: true})
	got := chargeAsync(t, srv.URL, "k")
	apptest.WaitFor(t, "the failed charge to reach the hold", func() bool { return s.Held("k") == 2 })
	s.Release("k")
	if r := <-got; r.status(t) != http.StatusServiceUnavailable {
		t.Fatalf("held failure: %d", r.reply.status)
	}
}

// Reset releases every hold and forgets its count.
func TestResetReleasesHolds(t *testing.T) {
	t.Parallel()
	s, srv := start(t, sim.Config{})
	s.Hold("k")
	got := chargeAsync(t, srv.URL, "k")
	apptest.WaitFor(t, "the charge to reach the hold", func() bool { return s.Held("k") == 1 })
	s.Reset()
	if r := <-got; r.status(t) != http.StatusOK {
		t.Fatalf("answer after Reset: %d", r.reply.status)
	}
	if s.Held("k") != 0 {
		t.Fatalf("Held after Reset = %d", s.Held("k"))
	}
	if r := charge(t, srv, "k", chargeBody(700)); r.status != http.StatusOK {
		t.Fatalf("after Reset: %d", r.status)
	}
}
