package provider_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/spillway/spillway/app"
)

// expiringCtx is a context whose deadline passes when the test calls
// expire, so a call times out at the point the test chooses (say, once the
// simulator has recorded the effect) rather than after a guess of how long
// the call takes on this machine.
type expiringCtx struct {
	context.Context
	done chan struct{}
	once sync.Once
}

func newExpiringCtx() *expiringCtx {
	return &expiringCtx{Context: context.Background(), done: make(chan struct{})}
}

func (c *expiringCtx) expire()                     { c.once.Do(func() { close(c.done) }) }
func (c *expiringCtx) Done() <-chan struct{}       { return c.done }
func (c *expiringCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c *expiringCtx) Value(key any) any           { return c.Context.Value(key) }
func (c *expiringCtx) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

// waitFor polls cond until it holds: it waits on observable state, never
// on a guess of how long something takes; the cap only turns a hang into
// a failure.
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

// providerError returns err as an *app.ProviderError or fails the test.
func providerError(t *testing.T, err error) *app.ProviderError {
	t.Helper()
	var pe *app.ProviderError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v (%T), want *app.ProviderError", err, err)
	}
	return pe
}

// assertOutcome checks the fault's kind and whether its outcome is unknown.
func assertOutcome(t *testing.T, err error, kind app.FaultKind, unknown bool) {
	t.Helper()
	pe := providerError(t, err)
	if pe.Kind != kind || pe.OutcomeUnknown != unknown {
		t.Errorf("fault = %s, outcome unknown %v; want %s, %v (err %v)", pe.Kind, pe.OutcomeUnknown, kind, unknown, err)
	}
}
