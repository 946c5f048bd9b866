package app_test

import (
	"context"
	"net/http/httptest"
	"strings"
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

// A lost commit after a real charge, then a retry whose body edited the
// description: the operation id depends on the key alone, so the retry
// reaches the first charge instead of making a second.
func TestLostCommitThenRetryWithEditedBodyChargesOnce(t *testing.T) {
	t.Parallel()
	r, store, s, pool := newRunner(t)
	store.failIdempotency.Store(1)
	first, _ := app.ParsePaymentRequest([]byte(`{"amount": 700, "currency": "usd", "description": "tea"}`))
	_, err := r.Submit(context.Background(), app.KindPayment, "edited-1", first)
	if app.ErrorCode(err) != app.EUNAVAILABLE {
		t.Fatalf("got %v, want EUNAVAILABLE", err)
	}
	// The provider was called: the answer must not claim nothing happened.
	if msg := app.ErrorMessage(err); strings.Contains(msg, "nothing was done") || !strings.Contains(msg, "same Idempotency-Key") {
		t.Fatalf("503 after a possible charge says %q", msg)
	}
	if s.TotalEffects() != 1 {
		t.Fatalf("effects after the lost commit = %d, want 1", s.TotalEffects())
	}
	edited, _ := app.ParsePaymentRequest([]byte(`{"amount": 700, "currency": "usd", "description": "green tea, please"}`))
	out, err := r.Submit(context.Background(), app.KindPayment, "edited-1", edited)
	if err != nil || out.Document.Status != app.StatusSucceeded {
		t.Fatalf("retry: %v %+v", err, out)
	}
	if s.TotalEffects() != 1 {
		t.Fatalf("the edited retry charged again: effects = %d", s.TotalEffects())
	}
	if n := count(t, pool, "SELECT count(*) FROM operations"); n != 1 {
		t.Fatalf("operations = %d", n)
	}
	// While the key's record exists, a different body is key reuse.
	again, _ := app.ParsePaymentRequest([]byte(`{"amount": 700, "currency": "usd", "description": "coffee"}`))
	if _, err := r.Submit(context.Background(), app.KindPayment, "edited-1", again); app.ErrorCode(err) != app.EKEYREUSED {
		t.Fatalf("reuse with the record present: %v, want EKEYREUSED", err)
	}
}

// A failure before any call says nothing was done, so the client knows a
// retry is a fresh attempt.
func TestUnavailableBeforeTheCallSaysNothingWasDone(t *testing.T) {
	t.Parallel()
	r, store, s, _ := newRunner(t)
	s.SetChaos(simDown())
	store.failIdempotency.Store(1)
	req, _ := app.ParsePaymentRequest([]byte(`{"amount": 500, "currency": "usd"}`))
	_, err := r.Submit(context.Background(), app.KindPayment, "nothing-1", req)
	if app.ErrorCode(err) != app.EUNAVAILABLE || !strings.Contains(app.ErrorMessage(err), "nothing was done") {
		t.Fatalf("got %v (%q)", err, app.ErrorMessage(err))
	}
}

func simDown() sim.Chaos { return sim.Chaos{Down: true} }

// stallingStore makes the database slow where a test says: BeginTx waits
// beginDelay first, and RecordTx, when stall is set, waits until its
// context gives up, as a database that stopped answering would.
type stallingStore struct {
	*db.Store
	beginDelay time.Duration
	stall      bool
}

func (s *stallingStore) BeginTx(ctx context.Context) (pgx.Tx, error) {
	select {
	case <-time.After(s.beginDelay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.Store.BeginTx(ctx)
}

func (s *stallingStore) RecordTx(ctx context.Context, tx pgx.Tx, op *app.Operation, r *app.IdempotencyRecord) error {
	if s.stall {
		<-ctx.Done()
		return ctx.Err()
	}
	return s.Store.RecordTx(ctx, tx, op, r)
}

func newStallingRunner(t *testing.T, store *stallingStore, deadline, capture time.Duration) (*app.Runner, *sim.Sim) {
	t.Helper()
	pool := dbtest.New(t)
	store.Store = db.NewStore(pool)
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
	r, err := app.NewRunner(app.RunnerConfig{Store: store, Jobs: rc, Kinds: apptest.PaymentKinds(t, prov), Deadline: deadline,
		CaptureTimeout: capture, SyncLimit: 4, MaxAttempts: 5})
	if err != nil {
		t.Fatal(err)
	}
	return r, s
}

// The worst case is Deadline + CaptureTimeout: a hung provider takes the
// whole deadline, and a database that stops answering afterwards gets only
// what is left of the capture budget. The slack covers scheduling only;
// without the bound this request would wait forever.
func TestBudgetHoldsWhenTheDatabaseStallsAfterAHungCall(t *testing.T) {
	t.Parallel()
	const deadline, capture, slack = 500 * time.Millisecond, 500 * time.Millisecond, time.Second
	store := &stallingStore{stall: true}
	r, s := newStallingRunner(t, store, deadline, capture)
	s.SetChaos(sim.Chaos{Latency: time.Minute})
	req, _ := app.ParsePaymentRequest([]byte(`{"amount": 800, "currency": "usd"}`))
	start := time.Now()
	_, err := r.Submit(context.Background(), app.KindPayment, "budget-1", req)
	elapsed := time.Since(start)
	if app.ErrorCode(err) != app.EUNAVAILABLE {
		t.Fatalf("got %v, want EUNAVAILABLE", err)
	}
	if elapsed > deadline+capture+slack {
		t.Fatalf("answered after %s, budget is %s", elapsed, deadline+capture)
	}
	// The hung call may have charged: the 503 must say to come back.
	if !strings.Contains(app.ErrorMessage(err), "same Idempotency-Key") {
		t.Fatalf("503 after a timed-out call says %q", app.ErrorMessage(err))
	}
}

// Time spent waiting for the database before the call is not taken from
// the provider's deadline: a call that fits its deadline succeeds however
// long BEGIN waited (within the capture budget).
func TestDatabaseWaitIsNotChargedToTheDeadline(t *testing.T) {
	t.Parallel()
	store := &stallingStore{beginDelay: time.Second}
	r, s := newStallingRunner(t, store, 1500*time.Millisecond, 3*time.Second)
	s.SetChaos(sim.Chaos{Latency: time.Second})
	req, _ := app.ParsePaymentRequest([]byte(`{"amount": 900, "currency": "usd"}`))
	out, err := r.Submit(context.Background(), app.KindPayment, "wait-1", req)
	if err != nil {
		t.Fatal(err)
	}
	if out.Document.Status != app.StatusSucceeded || out.Document.Mode != app.ModeSync {
		t.Fatalf("got %+v: the database's wait was charged to the provider's deadline", out.Document)
	}
}

// A callback URL whose DNS lookup fails for now is a 503 (retry), not a
// 422 (your URL is wrong), and nothing is recorded.
func TestTransientCallbackCheckFailureIsUnavailable(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	rc, err := jobs.NewClient(jobs.Config{Pool: pool})
	if err != nil {
		t.Fatal(err)
	}
	s := sim.New(sim.Config{})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	prov, err := provider.NewHTTP(provider.HTTPConfig{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	r, err := app.NewRunner(app.RunnerConfig{Store: db.NewStore(pool), Jobs: rc, Kinds: apptest.PaymentKinds(t, prov), Deadline: time.Second,
		SyncLimit: 4, MaxAttempts: 5, CheckCallback: func(context.Context, string) error {
			return &app.Error{Code: app.EUNAVAILABLE, Message: "callback_url could not be checked right now; nothing was done, retry later"}
		}})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := app.ParsePaymentRequest([]byte(`{"amount": 100, "currency": "usd", "callback_url": "https://shop.example/hook"}`))
	if _, err := r.Submit(context.Background(), app.KindPayment, "dns-1", req); app.ErrorCode(err) != app.EUNAVAILABLE {
		t.Fatalf("got %v, want EUNAVAILABLE", err)
	}
	if n := count(t, pool, "SELECT count(*) FROM operations"); n != 0 || s.TotalEffects() != 0 {
		t.Fatalf("a refused request left %d operations and %d charges", n, s.TotalEffects())
	}
}
