package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/apptest"
	"github.com/spillway/spillway/app/sim"
	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/db/dbtest"
)

// TestSIGKILLBetweenReservationAndCharge: the process is killed with
// SIGKILL after an order's reservation was made and while its charge is in
// the provider's hands, before anything was committed or answered. Nothing
// was acknowledged; the client's retry with the same key, served by the
// next process, completes the order, and each step took effect exactly
// once: the retry's calls carry the same step keys, so the inventory and
// the provider replay their first answers.
func TestSIGKILLBetweenReservationAndCharge(t *testing.T) {
	t.Parallel()
	pool, dbURL := dbtest.NewWithURL(t)
	ctx := context.Background()
	if _, err := db.InsertProductIfAbsent(ctx, pool, app.Product{SKU: "sku-tea", Name: "Tea", Price: 450, Currency: "usd", Active: true}); err != nil {
		t.Fatal(err)
	}
	s := sim.New(sim.Config{})
	simSrv := httptest.NewServer(s)
	t.Cleanup(simSrv.Close)
	t.Cleanup(s.Reset) // first: an answer still held is sent
	env := []string{
		"DATABASE_URL=" + dbURL, "PAYMENT_PROVIDER=http", "PAYMENT_PROVIDER_URL=" + simSrv.URL,
		"INVENTORY_URL=" + simSrv.URL + sim.InventoryPath,
		// Failure guards: the held charge, not a deadline, decides when the
		// process dies, and a loaded machine's slow BEGIN refuses nothing.
		"PAYMENT_DEADLINE=1m", "ORDER_DEADLINE=1m", "CAPTURE_TIMEOUT=30s", "SHUTDOWN_GRACE=2m", "PAYMENT_ASYNC_TIMEOUT=1m",
		"DB_MAX_CONNS=20", "SYNC_CONCURRENCY=8", "WORKERS=2", "LOG_LEVEL=error",
	}
	const body = `{"lines": [{"sku": "sku-tea", "quantity": 3}], "currency": "usd"}`
	id := app.OperationID("orders", "crash-1")
	reserve, charge := app.StepKey(id, app.ReserveStepName("sku-tea")), app.StepKey(id, app.StepCharge)
	s.Hold(charge)

	first, api := startChild(t, env)
	// The order's answer, if it ever gets one: 0 when the connection died.
	answered := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, api+"/api/v1/orders", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "crash-1")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			answered <- 0
			return
		}
		res.Body.Close()
		answered <- res.StatusCode
	}()
	apptest.WaitFor(t, "the charge to be in the provider's hands", func() bool { return s.Held(charge) > 0 })
	if s.InventoryEffects(reserve) != 1 || s.Effects(charge) != 1 {
		t.Fatalf("before the kill: %d reservations, %d charges", s.InventoryEffects(reserve), s.Effects(charge))
	}
	if err := first.Process.Kill(); err != nil { // SIGKILL: no shutdown, nothing committed
		t.Fatal(err)
	}
	_ = first.Wait()
	if code := <-answered; code != 0 {
		t.Fatalf("the killed process answered the order: %d", code)
	}
	var rows int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM operations WHERE id = $1`, id).Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("the killed request left %d operation rows (%v)", rows, err)
	}

	s.Release(charge)
	_, api = startChild(t, env)
	status, doc, _ := call(t, http.MethodPost, api+"/api/v1/orders", "crash-1", body)
	if status != http.StatusCreated || doc["status"] != "succeeded" {
		t.Fatalf("the retry after the restart: %d %v", status, doc)
	}
	if r, c := s.InventoryEffects(reserve), s.Effects(charge); r != 1 || c != 1 {
		t.Fatalf("after the restart: %d reservations, %d charges; want one of each", r, c)
	}
	if left, _ := s.Available("sku-tea"); left != 997 {
		t.Fatalf("tea left %d, want 997: the retry reserved again", left)
	}
}
