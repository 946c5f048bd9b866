package jobs_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/apptest"
	"github.com/spillway/spillway/app/provider"
	"github.com/spillway/spillway/app/sim"
	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/db/dbtest"
	"github.com/spillway/spillway/jobs"
)

// lostCommitStore loses the commit of the next n requests after the
// provider was called: the charge is real, the client hears 503.
type lostCommitStore struct {
	*db.Store
	lose atomic.Int32
}

func (s *lostCommitStore) RecordTx(ctx context.Context, tx pgx.Tx, op *app.Operation, r *app.IdempotencyRecord) error {
	if s.lose.Add(-1) >= 0 {
		return errors.New("injected: the commit is lost after the provider charged")
	}
	return s.Store.RecordTx(ctx, tx, op, r)
}

// A sync charge succeeds while our commit is lost and the client never
// retries: the sweep finds the charge, whose reference is none of our
// operations, and with refunds on refunds it exactly once however often it
// runs. A client that does retry afterwards is charged anew (under a fresh
// key), so the money moves once in all.
func TestOrphanChargeIsFoundAndRefundedOnce(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	s := sim.New(sim.Config{})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	prov, err := provider.NewHTTP(provider.HTTPConfig{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	cfg := jobs.Config{Pool: pool, Provider: prov, CallTimeout: 5 * time.Second}
	rc, err := jobs.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	store := &lostCommitStore{Store: db.NewStore(pool)}
	runner, err := app.NewRunner(app.RunnerConfig{Store: store, Jobs: rc, Kinds: apptest.PaymentKinds(t, prov), Deadline: 5 * time.Second,
		SyncLimit: 4, MaxAttempts: 5})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	req, _ := app.ParsePaymentRequest([]byte(`{"amount": 1234, "currency": "usd"}`))
	store.lose.Store(1)
	if _, err := runner.Submit(ctx, app.KindPayment, "orphan-1", req); app.ErrorCode(err) != app.EUNAVAILABLE {
		t.Fatalf("lost commit: %v", err)
	}
	id := app.OperationID("payments", "orphan-1").String()
	if s.Effects(id) != 1 {
		t.Fatalf("effects %d, want the real charge", s.Effects(id))
	}
	// A payment that did commit is no orphan.
	ok, err := runner.Submit(ctx, app.KindPayment, "kept-1", req)
	if err != nil || ok.Document.Status != app.StatusSucceeded {
		t.Fatalf("committed payment: %v %+v", err, ok)
	}

	cfg.Orphans = jobs.OrphanConfig{Grace: 0} // everything is old enough here
	sweep := jobs.NewOrphanSweeper(cfg)
	res, err := sweep.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Found != 1 || res.Refunded != 0 {
		t.Fatalf("first sweep without refunds: %+v", res)
	}
	orphans, err := db.ListOrphans(ctx, pool, "", 10)
	if err != nil || len(orphans) != 1 || orphans[0].Reference != id || orphans[0].Amount != 1234 || orphans[0].Status != app.OrphanOpen {
		t.Fatalf("orphans: %+v %v", orphans, err)
	}

	cfg.Orphans.Refund = true
	sweep = jobs.NewOrphanSweeper(cfg)
	for i := range 3 {
		res, err := sweep.Sweep(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.Found != 0 || (i == 0) != (res.Refunded == 1) {
			t.Fatalf("sweep %d with refunds: %+v", i, res)
		}
	}
	if n := s.Refunds(orphans[0].ChargeID); n != 1 {
		t.Fatalf("refunds of the orphan: %d, want 1", n)
	}
	if n := s.TotalRefunds(); n != 1 {
		t.Fatalf("refunds in all: %d, want 1 (the committed payment must not be refunded)", n)
	}

	// The client comes back after all: the refunded charge is not replayed
	// as its answer; it is charged once more, under the next key.
	out, err := runner.Submit(ctx, app.KindPayment, "orphan-1", req)
	if err != nil || out.Document.Status != app.StatusSucceeded {
		t.Fatalf("late retry: %v %+v", err, out)
	}
	if s.Effects(id+"~1") != 1 || s.Effects(id) != 1 {
		t.Fatalf("effects: old key %d, new key %d", s.Effects(id), s.Effects(id+"~1"))
	}
	if res, err := sweep.Sweep(ctx); err != nil || res.Found != 0 || res.Refunded != 0 {
		t.Fatalf("sweep after the retry: %+v %v", res, err)
	}
}
