package web_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/spillway/spillway/app/apptest"
)

// Under overload the bulkhead sends ordinary payments async first: with
// every ordinary sync slot taken, an ordinary payment is captured
// (overloaded), while a high-value one still gets a reserved slot and is
// charged synchronously.
func TestHighValuePaymentsKeepSyncSlotsUnderOverload(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{syncLimit: 4, highValueReserve: 1})
	const ordinary = `{"amount": 1999, "currency": "usd"}`
	const highValue = `{"amount": 250000, "currency": "usd"}`

	// Three ordinary payments take the three ordinary slots and stay in
	// their calls until released.
	type answer struct {
		key string
		r   response
		err error
	}
	answers := make(chan answer, 3)
	for i := range 3 {
		key := fmt.Sprintf("busy-%d", i)
		h.sim.Hold(providerKey(key))
		go func() {
			r, err := h.post(key, ordinary)
			answers <- answer{key, r, err}
		}()
	}
	apptest.WaitFor(t, "three calls to be in the provider's hands", func() bool {
		n := 0
		for i := range 3 {
			n += h.sim.Held(providerKey(fmt.Sprintf("busy-%d", i)))
		}
		return n == 3
	})

	shed := h.pay("shed-1", ordinary)
	if doc := shed.json(t); shed.status != http.StatusAccepted || doc["reason"] != "overloaded" {
		t.Fatalf("an ordinary payment with the ordinary slots taken: %d %s, want 202 overloaded", shed.status, shed.body)
	}
	kept := h.pay("kept-1", highValue)
	if doc := kept.json(t); kept.status != http.StatusCreated || doc["mode"] != "sync" {
		t.Fatalf("a high-value payment with a reserved slot free: %d %s, want 201 sync", kept.status, kept.body)
	}

	for i := range 3 {
		h.sim.Release(providerKey(fmt.Sprintf("busy-%d", i)))
	}
	for range 3 {
		a := <-answers
		if a.err != nil || a.r.status != http.StatusCreated {
			t.Fatalf("%s after release: %d %s %v", a.key, a.r.status, a.r.body, a.err)
		}
	}
}
