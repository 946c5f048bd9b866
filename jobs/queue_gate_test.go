package jobs_test

import (
	"context"
	"testing"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/apptest"
	"github.com/spillway/spillway/cmd/spillway/service/servicetest"
)

// The payments queue follows its breaker whatever else touches it: a
// stray resume while the breaker is open is undone, and so is a stray
// pause once it is closed, within a poll and without any breaker change
// to prompt the gate.
func TestQueueGateReassertsTheBreakersState(t *testing.T) {
	t.Parallel()
	p := servicetest.New(t, servicetest.Options{Workers: 1})
	ctx := context.Background()
	paused := func() bool {
		q, err := p.River.QueueGet(ctx, app.QueuePayments)
		if err != nil {
			t.Fatal(err)
		}
		return q.PausedAt != nil
	}
	apptest.WaitFor(t, "the payments queue to be registered and running", func() bool {
		q, err := p.River.QueueGet(ctx, app.QueuePayments)
		return err == nil && q.PausedAt == nil
	})
	if _, err := p.Breakers.Force(ctx, "payment", app.BreakerForcedOpen, "test", "outage"); err != nil {
		t.Fatal(err)
	}
	apptest.WaitFor(t, "the gate to pause the queue", paused)

	// Someone resumes it by hand (River's UI, a script): the breaker is
	// still open, so the gate pauses it again.
	if err := p.River.QueueResume(ctx, app.QueuePayments, nil); err != nil {
		t.Fatal(err)
	}
	apptest.WaitFor(t, "the gate to pause the queue again", paused)

	if _, err := p.Breakers.Force(ctx, "payment", app.BreakerClosed, "test", "over"); err != nil {
		t.Fatal(err)
	}
	apptest.WaitFor(t, "the gate to resume the queue", func() bool { return !paused() })
	// A stray pause while the breaker is closed is undone too.
	if err := p.River.QueuePause(ctx, app.QueuePayments, nil); err != nil {
		t.Fatal(err)
	}
	apptest.WaitFor(t, "the gate to resume the queue again", func() bool { return !paused() })
}
