package web_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/apptest"
)

// Past PAYMENT_MAX_BACKLOG a payment that would be queued is refused with
// 503 and Retry-After, and nothing is written for it; the same key is
// accepted once the backlog is back under its bound. A payment whose call
// may have charged is captured whatever the backlog: its outcome must be
// tracked.
func TestBacklogBoundRefusesNewCapturesAndLosesNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{maxBacklog: 3, syncTimeoutOnHold: true})
	ctx := context.Background()
	if _, err := h.breakers.Force(ctx, "payment", app.BreakerForcedOpen, "test", "outage"); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"bl-1", "bl-2", "bl-3"} {
		if r := h.pay(key, payment); r.status != http.StatusAccepted {
			t.Fatalf("capture %s: %d %s", key, r.status, r.body)
		}
	}
	apptest.WaitFor(t, "the bound to read the backlog of 3", func() bool {
		b, ok := h.Service.Backlog().Last(app.DepPayment)
		return ok && b.Jobs >= 3
	})
	r := h.pay("bl-4", payment)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" ||
		!strings.Contains(string(r.body), "backlog is over its bound") || !strings.Contains(string(r.body), "nothing was done") {
		t.Fatalf("over the bound: %d %v %s, want 503 with Retry-After saying nothing was done", r.status, r.header, r.body)
	}
	if n := h.count(`SELECT count(*) FROM operations WHERE id = $1`, providerKey("bl-4")); n != 0 {
		t.Fatalf("a refused payment left %d operation rows", n)
	}
	if n := h.count(`SELECT count(*) FROM operations WHERE idempotency_key = 'bl-4'`); n != 0 {
		t.Fatalf("a refused payment left %d rows holding its key", n)
	}

	// A call that may have charged is captured over the bound.
	if _, err := h.breakers.Force(ctx, "payment", app.BreakerClosed, "test", "back"); err != nil {
		t.Fatal(err)
	}
	key := providerKey("bl-charged")
	h.sim.Hold(key)
	charged := h.pay("bl-charged", payment)
	h.sim.Release(key)
	if charged.status != http.StatusAccepted || charged.json(t)["reason"] != "timeout" {
		t.Fatalf("a possibly charged call over the bound: %d %s, want 202 timeout", charged.status, charged.body)
	}

	// Workers drain the backlog; the refused key is then accepted.
	h.StartWorkers(2)
	apptest.WaitFor(t, "the backlog to drain below its bound", func() bool {
		b, ok := h.Service.Backlog().Last(app.DepPayment)
		return ok && b.Jobs < 3
	})
	if r := h.pay("bl-4", payment); r.status != http.StatusCreated && r.status != http.StatusAccepted {
		t.Fatalf("after the drain: %d %s", r.status, r.body)
	}
	for _, key := range []string{"bl-1", "bl-2", "bl-3", "bl-charged"} {
		h.waitStatus(providerKey(key), app.StatusSucceeded)
	}
	if e := h.sim.Effects(providerKey("bl-charged")); e != 1 {
		t.Fatalf("the possibly charged payment was charged %d times", e)
	}
}
