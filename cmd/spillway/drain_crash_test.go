package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/spillway/spillway/app/apptest"
	"github.com/spillway/spillway/app/sim"
	"github.com/spillway/spillway/db/dbtest"
)

// TestSIGKILLAfterTheChargeBeforeItsWrite: a drained payment writes its
// call's outcome and its ending in one write, after the call, with no
// marker before it. A worker killed with SIGKILL while the provider has
// charged and its answer is still on the way leaves the operation open:
// the status API shows it in progress, never as ended or failed. The next
// process rescues the job, calls again under the same key, gets the first
// answer replayed and ends the payment succeeded, with one charge.
func TestSIGKILLAfterTheChargeBeforeItsWrite(t *testing.T) {
	t.Parallel()
	pool, dbURL := dbtest.NewWithURL(t)
	ctx := context.Background()
	provider := sim.New(sim.Config{})
	simSrv := httptest.NewServer(provider)
	t.Cleanup(simSrv.Close)
	env := []string{
		"DATABASE_URL=" + dbURL, "PAYMENT_PROVIDER=http", "PAYMENT_PROVIDER_URL=" + simSrv.URL,
		// River rescues the killed run's job 2×2 s + 40 s after it started.
		"PAYMENT_RETRY_BASE=50ms", "PAYMENT_RETRY_MAX=200ms", "PAYMENT_ASYNC_TIMEOUT=2s",
		"CAPTURE_TIMEOUT=30s", "DB_MAX_CONNS=20", "SYNC_CONCURRENCY=8", "WORKERS=4", "LOG_LEVEL=error",
	}
	first, api := startChild(t, env)
	if _, err := pool.Exec(ctx, `UPDATE breakers SET state = 'forced_open', generation = generation + 1 WHERE name = 'payment'`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `SELECT pg_notify('spillway_breakers', 'payment')`); err != nil {
		t.Fatal(err)
	}
	apptest.WaitFor(t, "the child to see the breaker forced open", func() bool {
		return metricLine(t, api, `spillway_breaker_state{dependency="payment",state="forced_open"} 1`)
	})
	status, doc, _ := call(t, "POST", api+"/api/v1/payments", "drain-kill-1", `{"amount": 4200, "currency": "usd"}`)
	if status != http.StatusAccepted {
		t.Fatalf("capture: %d %v, want 202", status, doc)
	}
	id := doc["id"].(string)
	// The charge is made, its answer held: the worker is mid-call.
	provider.Hold(id)
	if _, err := pool.Exec(ctx, `UPDATE breakers SET state = 'closed', generation = generation + 1 WHERE name = 'payment'`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `SELECT pg_notify('spillway_breakers', 'payment')`); err != nil {
		t.Fatal(err)
	}
	apptest.WaitFor(t, "the worker's charge to reach the provider", func() bool { return provider.Held(id) >= 1 })
	if err := first.Process.Kill(); err != nil { // SIGKILL: the answer is never heard
		t.Fatal(err)
	}
	_ = first.Wait()
	provider.Release(id)
	if got := provider.Effects(id); got != 1 {
		t.Fatalf("provider effects %d before the rescue, want 1", got)
	}

	_, api = startChild(t, env)
	status, doc, _ = call(t, "GET", api+"/api/v1/operations/"+id, "", "")
	if status != http.StatusOK || (doc["status"] != "queued" && doc["status"] != "processing") {
		t.Fatalf("status while its job waits to be rescued: %d %v, want queued or processing", status, doc)
	}
	var jobState string
	if err := pool.QueryRow(ctx, `SELECT j.state FROM river_job j JOIN operations o ON o.job_id = j.id WHERE o.id = $1`, id).Scan(&jobState); err != nil {
		t.Fatal(err)
	}
	if jobState != "running" {
		t.Fatalf("the killed run's job is %s, want running (until River rescues it)", jobState)
	}
	// A failure guard: past River's rescue (44 s here) and the rerun.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		status, doc, _ = call(t, "GET", api+"/api/v1/operations/"+id, "", "")
		if doc["status"] == "succeeded" {
			break
		}
		if s := doc["status"]; s != "queued" && s != "processing" {
			t.Fatalf("after the rescue: %d %v, want it open, then succeeded", status, doc)
		}
		if time.Now().After(deadline) {
			t.Fatalf("not succeeded within 2 minutes: %v", doc)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if effects, calls := provider.Effects(id), provider.Calls(id); effects != 1 || calls < 2 {
		t.Fatalf("provider: %d effects (want 1), %d calls (want the killed one and the replayed one)", effects, calls)
	}
}
