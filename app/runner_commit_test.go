package app_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/apptest"
	"github.com/spillway/spillway/app/provider"
	"github.com/spillway/spillway/app/sim"
	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/db/dbtest"
	"github.com/spillway/spillway/jobs"
)

// lostCommitStore commits for real, then reports that the commit failed,
// as a connection does that dies (or a deadline that passes) after COMMIT
// reached Postgres and before its answer came back: what the chaos suite's
// half-open Postgres produced.
type lostCommitStore struct {
	*db.Store
	lose atomic.Int32 // how many of the next transactions lose their commit's answer
}

func (s *lostCommitStore) BeginTx(ctx context.Context) (pgx.Tx, error) {
	tx, err := s.Store.BeginTx(ctx)
	if err != nil || s.lose.Add(-1) < 0 {
		return tx, err
	}
	return lostCommitTx{tx}, nil
}

type lostCommitTx struct{ pgx.Tx }

func (t lostCommitTx) Commit(ctx context.Context) error {
	if err := t.Tx.Commit(ctx); err != nil {
		return err
	}
	return errors.New("injected: the connection died after COMMIT was sent")
}

// A capture whose commit went unanswered may be recorded, and its job will
// then charge: the 503 must not say nothing was done (a client would retry
// under a new key and pay twice) but send the client back with the same
// key, which replays the capture.
func TestUnconfirmedCommitNeverSaysNothingWasDone(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	s := sim.New(sim.Config{})
	s.SetChaos(sim.Chaos{Down: true}) // no call can take effect: the capture alone is at stake
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
	store := &lostCommitStore{Store: db.NewStore(pool)}
	store.lose.Store(1)
	r, err := app.NewRunner(app.RunnerConfig{Store: store, Jobs: rc, Kinds: apptest.PaymentKinds(t, prov),
		Deadline: guard, CaptureTimeout: guard, SyncLimit: 4, MaxAttempts: 5})
	if err != nil {
		t.Fatal(err)
	}

	req, _ := app.ParsePaymentRequest([]byte(`{"amount": 900, "currency": "usd"}`))
	_, err = r.Submit(context.Background(), app.KindPayment, "unconfirmed-1", req)
	if app.ErrorCode(err) != app.EUNAVAILABLE {
		t.Fatalf("got %v, want EUNAVAILABLE", err)
	}
	if msg := app.ErrorMessage(err); strings.Contains(msg, "nothing was done") || !strings.Contains(msg, "same Idempotency-Key") {
		t.Fatalf("503 after an unconfirmed commit says %q", msg)
	}
	if n := count(t, pool, "SELECT count(*) FROM operations"); n != 1 {
		t.Fatalf("operations after the unconfirmed commit = %d, want 1 (it was applied)", n)
	}
	out, err := r.Submit(context.Background(), app.KindPayment, "unconfirmed-1", req)
	if err != nil || !out.Replayed || out.Document.Status != app.StatusQueued {
		t.Fatalf("retry with the same key: %v %+v, want the capture replayed", err, out)
	}
}
