package jobs_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/apptest"
	"github.com/spillway/spillway/cmd/spillway/service/servicetest"
)

// A backlog captured while the breaker was open drains at DRAIN_RATE,
// high-value payments first, on the whole product.
func TestDrainIsPacedAndHighPriorityFirst(t *testing.T) {
	t.Parallel()
	const rate = 20.0
	p := servicetest.New(t, servicetest.Options{DrainRate: rate})
	// Captured without calling anyone: an open breaker, then back to auto,
	// so the drain is not also waiting out a real trip.
	if _, err := p.Breakers.Force(context.Background(), "payment", app.BreakerForcedOpen, "test", "capture"); err != nil {
		t.Fatal(err)
	}
	// Interleave ordinary and high-value payments while nothing works jobs.
	for i := range 20 {
		amount := "1000"
		if i%2 == 1 {
			amount = "200000"
		}
		if r := p.Pay(fmt.Sprintf("drain-%d", i), `{"amount": `+amount+`, "currency": "usd"}`); r.Status != http.StatusAccepted {
			t.Fatalf("capture %d: %d", i, r.Status)
		}
	}
	if _, err := p.Breakers.Force(context.Background(), "payment", app.BreakerClosed, "test", "drain"); err != nil {
		t.Fatal(err)
	}
	p.StartWorkers(1)
	apptest.WaitFor(t, "the backlog to drain", func() bool {
		return p.Count(`SELECT count(*) FROM operations WHERE status <> 'succeeded'`) == 0
	})
	rows, err := p.Pool.Query(context.Background(), `SELECT priority FROM operations ORDER BY completed_at`)
	if err != nil {
		t.Fatal(err)
	}
	var order []int
	for rows.Next() {
		var prio int
		_ = rows.Scan(&prio)
		order = append(order, prio)
	}
	for i, prio := range order {
		if want := 2 + i/10; prio != want {
			t.Fatalf("completion order by priority %v: want all 2s before 3s", order)
		}
	}
	// A lower bound only (a slow machine can only make it longer): 20 jobs
	// at 20/s with a burst of 2 take at least ~0.9 s.
	var span float64
	if err := p.Pool.QueryRow(context.Background(), `SELECT extract(epoch FROM max(completed_at) - min(completed_at)) FROM operations`).Scan(&span); err != nil {
		t.Fatal(err)
	}
	if min := (20 - 2 - 1) / rate * 0.9; span < min {
		t.Fatalf("20 jobs drained in %.2fs, faster than the %v/s limit allows (%.2fs)", span, rate, min)
	}
}
