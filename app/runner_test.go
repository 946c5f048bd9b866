package app_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/db/dbtest"
	"github.com/spillway/spillway/jobs"
	"github.com/spillway/spillway/web/provider"
	"github.com/spillway/spillway/web/sim"
)

// failingStore is the real store with one step made to fail a set number of
// times: the transaction dies after work that must then vanish with it.
type failingStore struct {
	*db.Store
	failIdempotency atomic.Int32
}

// RecordTx writes the rows, then fails: the transaction dies with the
// job, the operation and the key's answer all inserted.
func (s *failingStore) RecordTx(ctx context.Context, tx pgx.Tx, op *app.Operation, r *app.IdempotencyRecord) error {
	if err := s.Store.RecordTx(ctx, tx, op, r); err != nil {
		return err
	}
	if s.failIdempotency.Add(-1) >= 0 {
		return errors.New("injected failure after the provider call, InsertTx and the inserts")
	}
	return nil
}

func newRunner(t *testing.T) (*app.Runner, *failingStore, *sim.Sim, *pgxpool.Pool) {
	return newRunnerWithDeadline(t, time.Second)
}

func newRunnerWithDeadline(t *testing.T, deadline time.Duration) (*app.Runner, *failingStore, *sim.Sim, *pgxpool.Pool) {
	t.Helper()
	pool := dbtest.New(t)
	s := sim.New(sim.Config{})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	prov, err := provider.NewHTTP(provider.HTTPConfig{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := jobs.NewClient(jobs.Config{Pool: pool, Provider: prov, CallTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	store := &failingStore{Store: db.NewStore(pool)}
	r, err := app.NewRunner(app.RunnerConfig{
		Store: store, Jobs: rc, Provider: prov, Deadline: deadline, SyncLimit: 4, MaxAttempts: 5,
	})
	if err != nil {
		t.Fatal(err)
	}
	return r, store, s, pool
}

func count(t *testing.T, pool *pgxpool.Pool, sql string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestFailureAfterInsertTxLeavesNothing(t *testing.T) {
	t.Parallel()
	r, store, s, pool := newRunner(t)
	s.SetChaos(sim.Chaos{Down: true}) // forces the capture path: InsertTx runs
	store.failIdempotency.Store(1)
	req, _ := app.ParsePaymentRequest([]byte(`{"amount": 500, "currency": "usd"}`))

	_, err := r.SubmitPayment(context.Background(), "crash-1", req)
	if app.ErrorCode(err) != app.EUNAVAILABLE {
		t.Fatalf("got %v, want EUNAVAILABLE", err)
	}
	for _, table := range []string{"operations", "river_job", "idempotency_keys"} {
		if n := count(t, pool, "SELECT count(*) FROM "+table); n != 0 {
			t.Fatalf("%s has %d rows after a failed transaction", table, n)
		}
	}

	// The client's retry with the same key is safe and is captured once.
	out, err := r.SubmitPayment(context.Background(), "crash-1", req)
	if err != nil || out.Document.Status != app.StatusQueued {
		t.Fatalf("retry: %v %+v", err, out)
	}
	if n := count(t, pool, "SELECT count(*) FROM river_job"); n != 1 {
		t.Fatalf("jobs after retry = %d, want 1", n)
	}
}

// If the provider charged but our commit failed, the client was told
// nothing; its retry must not charge a second time.
func TestRetryAfterLostCommitChargesOnce(t *testing.T) {
	t.Parallel()
	r, store, s, pool := newRunner(t)
	store.failIdempotency.Store(1)
	req, _ := app.ParsePaymentRequest([]byte(`{"amount": 700, "currency": "usd"}`))

	if _, err := r.SubmitPayment(context.Background(), "lost-1", req); app.ErrorCode(err) != app.EUNAVAILABLE {
		t.Fatalf("got %v, want EUNAVAILABLE", err)
	}
	if s.TotalEffects() != 1 {
		t.Fatalf("the first attempt should have charged once, effects = %d", s.TotalEffects())
	}
	out, err := r.SubmitPayment(context.Background(), "lost-1", req)
	if err != nil || out.Document.Status != app.StatusSucceeded {
		t.Fatalf("retry: %v %+v", err, out)
	}
	if s.TotalEffects() != 1 {
		t.Fatalf("the retry charged again: effects = %d", s.TotalEffects())
	}
	if n := count(t, pool, "SELECT count(*) FROM operations"); n != 1 {
		t.Fatalf("operations = %d", n)
	}
}

func TestOverloadedCapturesWithoutCalling(t *testing.T) {
	t.Parallel()
	// Slow calls hold their slots for seconds, however loaded the machine.
	r, _, s, _ := newRunnerWithDeadline(t, 20*time.Second)
	s.SetChaos(sim.Chaos{Latency: 3 * time.Second})
	req, _ := app.ParsePaymentRequest([]byte(`{"amount": 900, "currency": "usd"}`))
	// SyncLimit is 4: fill the slots with slow calls, then one more request.
	done := make(chan struct{})
	for i := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			_, _ = r.SubmitPayment(context.Background(), "slow-"+string(rune('a'+i)), req)
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	// The simulator records each charge on arrival, before its latency.
	for s.TotalEffects() < 4 {
		if time.Now().After(deadline) {
			t.Fatal("slow calls never reached the provider")
		}
		time.Sleep(5 * time.Millisecond)
	}
	out, err := r.SubmitPayment(context.Background(), "over-1", req)
	if err != nil {
		t.Fatal(err)
	}
	if out.Document.Status != app.StatusQueued || out.Document.Reason != app.ReasonOverloaded || out.Document.Attempts != 0 {
		t.Fatalf("got %+v, want queued/overloaded with no attempt", out.Document)
	}
	for range 4 {
		<-done
	}
}
