package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dbos-inc/dbos-transact-golang/dbos"

	"github.com/spillway/spillway/app/sim"
	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/db/dbtest"
)

// postCharge sends the load's payment to h under key and returns the status.
func postCharge(t *testing.T, h http.Handler, key string) int {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"amount":1999,"currency":"usd"}`))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code
}

// The peer does the job it is measured on, wired as the bench runs it: a
// sync request runs the workflow and charges the provider once under the
// request's key; a request captured with the provider down is enqueued
// and charges nothing; an executor started with the provider back drains
// it, charging once under its key.
func TestDBOSPeerChargesOnceUnderTheRequestKey(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := dbtest.NewEmpty(t)
	simulator := sim.New(sim.Config{})
	simURL, stopSim, err := serveLoopback(simulator)
	if err != nil {
		t.Fatal(err)
	}
	defer stopSim()
	p := &dbosPeer{provider: simURL, client: &http.Client{}}
	log := slog.New(slog.DiscardHandler)

	dc, err := p.launch(ctx, url, 2, log)
	if err != nil {
		t.Fatal(err)
	}
	sync := dbosSyncHandler(dc, p)
	if got := postCharge(t, sync, ""); got != http.StatusBadRequest {
		t.Errorf("no Idempotency-Key: %d, want 400", got)
	}
	if got := postCharge(t, sync, "peer-sync"); got != http.StatusCreated {
		t.Fatalf("sync: %d, want 201", got)
	}
	if n := simulator.Effects("peer-sync"); n != 1 {
		t.Errorf("sync: %d charges under the workflow id, want 1", n)
	}
	if err := dbos.Shutdown(dc, 10*time.Second); err != nil {
		t.Fatal(err)
	}

	simulator.SetChaos(sim.Chaos{Down: true})
	pool, err := dbosPool(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	client, err := dbos.NewClient(ctx, dbos.ClientConfig{AppName: dbosAppName, SystemDBPool: pool,
		DatabaseSchema: dbosSchema, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if got := postCharge(t, dbosCaptureHandler(client), "peer-capture"); got != http.StatusAccepted {
		t.Fatalf("capture: %d, want 202", got)
	}
	_ = dbos.Shutdown(client, 10*time.Second)
	if n := simulator.Calls("peer-capture"); n != 0 {
		t.Errorf("capture: the provider was called %d times before any executor ran", n)
	}
	check, err := db.Open(ctx, db.PoolConfig{URL: url, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer check.Close()
	if n, err := dbosCount(ctx, check, "status = 'ENQUEUED'"); err != nil || n != 1 {
		t.Fatalf("capture: %d enqueued (%v), want 1", n, err)
	}

	simulator.SetChaos(sim.Chaos{})
	if dc, err = p.launch(ctx, url, 2, log); err != nil {
		t.Fatal(err)
	}
	defer dbos.Shutdown(dc, 10*time.Second)
	// A bound against a hang, not a timing assertion.
	left, _, err := waitEmpty(ctx, time.Minute, time.Now(), func(ctx context.Context) (int64, error) {
		return dbosCount(ctx, check, "status IN ('ENQUEUED', 'PENDING')")
	})
	if err != nil || left != 0 {
		t.Fatalf("drain: %d left (%v)", left, err)
	}
	if n, err := dbosCount(ctx, check, "status = 'SUCCESS'"); err != nil || n != 1 {
		t.Errorf("drain: %d succeeded (%v), want 1", n, err)
	}
	if n := simulator.Effects("peer-capture"); n != 1 {
		t.Errorf("drain: %d charges under the workflow id, want 1", n)
	}
}

// Each peer row is judged on its own: a figure where DBOS is ahead is
// marked missed even when the others are met, and the JSON carries the
// verdict and the configuration.
func TestPeerRowsJudgeEachFigure(t *testing.T) {
	t.Parallel()
	sp := &spillwayResults{}
	sp.Sync.Rate, sp.Capture.Load.Rate, sp.Drain.Unlimited.Rate = 900, 1000, 200
	d := &dbosResults{Config: (&dbosPeer{}).config(32)}
	d.Sync.Rate, d.Capture.Rate, d.Drain.Rate = 300, 1200, 0
	rows := peerRows(sp, d)
	want := []bool{true, false, false} // drain: DBOS measured nothing, so no ratio, not met
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d", len(rows), len(want))
	}
	for i, r := range rows {
		if r.Met == nil || *r.Met != want[i] {
			t.Errorf("%s: met %v, want %v", r.Figure, r.Met, want[i])
		}
	}
	rep := &report{Rows: rows, DBOS: d}
	var buf strings.Builder
	rep.Format(&buf)
	for _, s := range []string{"vs DBOS: sync", "goal met", "goal missed", "queue worker concurrency 32", "polling 10ms"} {
		if !strings.Contains(buf.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, buf.String())
		}
	}
	js, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`"met":true`, `"met":false`, `"queue_worker_concurrency":32`, `"pool_max_conns":72`} {
		if !strings.Contains(string(js), s) {
			t.Errorf("JSON lacks %s", s)
		}
	}
}
