package jobs_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/cmd/spillway/service/servicetest"
)

// A payment deferred to off-peak is scheduled for the window's start, calls
// nobody before it, and an operator's run-now runs it at once.
func TestOffpeakDeferral(t *testing.T) {
	t.Parallel()
	// The runner's clock stands still: the deferral is computed from a
	// known moment, not from whenever the request got there.
	now := time.Now().UTC().Truncate(time.Second)
	// A one-hour window starting two hours from now: certainly closed now.
	start := now.Add(2 * time.Hour)
	window := start.Format("15:04") + "-" + start.Add(time.Hour).Format("15:04")
	w, err := app.ParseOffpeakWindow(window, "UTC")
	if err != nil {
		t.Fatal(err)
	}
	p := servicetest.New(t, servicetest.Options{Workers: 1, Offpeak: w, RunnerNow: func() time.Time { return now }})
	r := p.Pay("defer-1", `{"amount": 1999, "currency": "usd", "defer": "offpeak"}`)
	if r.Status != http.StatusAccepted {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	doc := r.JSON(t)
	id := doc["id"].(string)
	if doc["reason"] != "deferred" || doc["attempts"] != 0.0 {
		t.Fatalf("document %v", doc)
	}
	var at time.Time
	if err := p.Pool.QueryRow(context.Background(), `SELECT j.scheduled_at FROM river_job j JOIN operations o ON o.job_id = j.id WHERE o.id = $1`, id).Scan(&at); err != nil {
		t.Fatal(err)
	}
	if want := w.NextStart(now); !at.Equal(want) {
		t.Fatalf("scheduled at %s, want the window's start %s", at, want)
	}
	if p.Sim.Calls(id) != 0 {
		t.Fatal("a deferred payment called the provider")
	}
	// An operator's "run now" (metadata run_now, scheduled now) runs it outside the window.
	if _, err := p.Pool.Exec(context.Background(), `UPDATE river_job SET scheduled_at = now(), state = 'available',
		metadata = metadata || '{"run_now": true}' WHERE id = (SELECT job_id FROM operations WHERE id = $1)`, id); err != nil {
		t.Fatal(err)
	}
	p.WaitStatus(id, app.StatusSucceeded)
	if bad := p.Pay("defer-2", `{"amount": 1999, "currency": "usd", "defer": "later"}`); bad.Status != http.StatusUnprocessableEntity {
		t.Fatalf("bad defer: %d", bad.Status)
	}
}
