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
	"github.com/spillway/spillway/app/apptest"
	"github.com/spillway/spillway/app/provider"
	"github.com/spillway/spillway/app/sim"
	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/db/dbtest"
	"github.com/spillway/spillway/jobs"
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

// guard bounds the runner's deadlines in these tests. No test here waits
// for one to pass: each is only the point at which a call on a hopelessly
// loaded machine would give up, so it is far beyond what any call takes.
const guard = time.Minute

func newRunner(t *testing.T) (*app.Runner, *failingStore, *sim.Sim, *pgxpool.Pool) {
	r, store, s, pool, _ := newRunnerWithDeadline(t, guard)
	return r, store, s, pool
}

func newRunnerWithDeadline(t *testing.T, deadline time.Duration) (*app.Runner, *failingStore, *sim.Sim, *pgxpool.Pool, *httptest.Server) {
	t.Helper()
	return newRunnerWith(t, func(c *app.RunnerConfig) { c.Deadline = deadline })
}

// newRunnerWith is the test runner with edit applied to its configuration.
func newRunnerWith(t *testing.T, edit func(*app.RunnerConfig)) (*app.Runner, *failingStore, *sim.Sim, *pgxpool.Pool, *httptest.Server) {
	t.Helper()
	pool := dbtest.New(t)
	s := sim.New(sim.Config{})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	prov, err := provider.NewHTTP(provider.HTTPConfig{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := jobs.NewClient(jobs.Config{Pool: pool, Provider: prov, CallTimeout: guard})
	if err != nil {
		t.Fatal(err)
	}
	store := &failingStore{Store: db.NewStore(pool)}
	cfg := app.RunnerConfig{
		Store: store, Jobs: rc, Kinds: apptest.PaymentKinds(t, prov), Deadline: guard, CaptureTimeout: guard, SyncLimit: 4, MaxAttempts: 5,
	}
	edit(&cfg)
	r, err := app.NewRunner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r, store, s, pool, srv
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

	_, err := r.Submit(context.Background(), app.KindPayment, "crash-1", req)
	if app.ErrorCode(err) != app.EUNAVAILABLE {
		t.Fatalf("got %v, want EUNAVAILABLE", err)
	}
	for _, table := range []string{"operations", "river_job"} {
		if n := count(t, pool, "SELECT count(*) FROM "+table); n != 0 {
			t.Fatalf("%s has %d rows after a failed transaction", table, n)
		}
	}

	// The client's retry with the same key is safe and is captured once.
	out, err := r.Submit(context.Background(), app.KindPayment, "crash-1", req)
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

	if _, err := r.Submit(context.Background(), app.KindPayment, "lost-1", req); app.ErrorCode(err) != app.EUNAVAILABLE {
		t.Fatalf("got %v, want EUNAVAILABLE", err)
	}
	if s.TotalEffects() != 1 {
		t.Fatalf("the first attempt should have charged once, effects = %d", s.TotalEffects())
	}
	out, err := r.Submit(context.Background(), app.KindPayment, "lost-1", req)
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
	// The simulator holds its answers for as long as it may, so the slow
	// calls keep their slots until the test lets them go.
	r, _, s, _, srv := newRunnerWithDeadline(t, guard)
	s.SetChaos(sim.Chaos{Latency: sim.MaxDuration})
	req, _ := app.ParsePaymentRequest([]byte(`{"amount": 900, "currency": "usd"}`))
	// SyncLimit is 4: fill the slots with slow calls, then one more request.
	done := make(chan struct{})
	for i := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			_, _ = r.Submit(context.Background(), app.KindPayment, "slow-"+string(rune('a'+i)), req)
		}()
	}
	// The simulator records each charge on arrival, before its latency.
	apptest.WaitFor(t, "the slow calls to reach the provider", func() bool { return s.TotalEffects() >= 4 })
	out, err := r.Submit(context.Background(), app.KindPayment, "over-1", req)
	if err != nil {
		t.Fatal(err)
	}
	if out.Document.Status != app.StatusQueued || out.Document.Reason != app.ReasonOverloaded || out.Document.Attempts != 0 {
		t.Fatalf("got %+v, want queued/overloaded with no attempt", out.Document)
	}
	// Cut the held calls off: they fail at once and are captured.
	srv.CloseClientConnections()
	for range 4 {
		<-done
	}
}

// A key's answer is replayed for IDEMPOTENCY_TTL: within it another body
// under the key is refused; past it the request is answered with its
// operation as it stands, and neither does anything downstream again.
func TestKeyAnswerExpiresAfterTTLWithoutDoingAgain(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	now := t0
	r, _, s, pool, _ := newRunnerWith(t, func(c *app.RunnerConfig) {
		c.KeyTTL, c.Now = 24*time.Hour, func() time.Time { return now }
	})
	ctx := context.Background()
	first, _ := app.ParsePaymentRequest([]byte(`{"amount": 500, "currency": "usd"}`))
	other, _ := app.ParsePaymentRequest([]byte(`{"amount": 900, "currency": "usd"}`))
	out, err := r.Submit(ctx, app.KindPayment, "ttl-1", first)
	if err != nil || out.Document.Status != app.StatusSucceeded || out.Replayed {
		t.Fatalf("first: %+v, %v", out, err)
	}

	now = t0.Add(24*time.Hour - time.Second)
	if _, err := r.Submit(ctx, app.KindPayment, "ttl-1", other); app.ErrorCode(err) != app.EKEYREUSED {
		t.Fatalf("another body within the TTL: %v, want EKEYREUSED", err)
	}
	again, err := r.Submit(ctx, app.KindPayment, "ttl-1", first)
	if err != nil || !again.Replayed || string(again.Body) != string(out.Body) {
		t.Fatalf("replay within the TTL: %+v, %v: want the first answer byte for byte", again, err)
	}

	now = t0.Add(24*time.Hour + time.Second)
	late, err := r.Submit(ctx, app.KindPayment, "ttl-1", other)
	if err != nil || !late.Replayed || late.Document.ID != out.Document.ID || late.Document.Status != app.StatusSucceeded ||
		late.Document.Amount != 500 {
		t.Fatalf("after the TTL: %+v, %v: want the operation as it stands", late, err)
	}
	if n := s.TotalEffects(); n != 1 {
		t.Fatalf("%d charges, want 1", n)
	}
	if n := count(t, pool, "SELECT count(*) FROM operations"); n != 1 {
		t.Fatalf("%d operations, want 1", n)
	}
}
