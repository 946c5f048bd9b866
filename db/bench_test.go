package db_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/db/dbtest"
)

// The benchmark's minimal servers write rows the bench's counts see as the
// product's own: a bare capture is open with its job, a bare sync payment
// is done.
func TestBareFloorRowsAreCountedLikeTheProducts(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var jobID int64
		if err := tx.QueryRow(ctx, `
			INSERT INTO river_job (args, kind, max_attempts, priority, queue, state, scheduled_at)
			VALUES ('{}', 'payment', 25, 3, 'payments', 'available', now()) RETURNING id`).Scan(&jobID); err != nil {
			return err
		}
		return db.InsertBareCaptureTx(ctx, tx, uuid.New(), 3, 1999, "usd", jobID)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.InsertBareSyncPayment(ctx, pool, uuid.New(), 1999, "usd", []byte(`{"id":"ch_1","status":"succeeded"}`)); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		count func(context.Context, db.Querier) (int64, error)
		want  int64
	}{
		"operations":       {db.CountOperations, 2},
		"open operations":  {db.CountOpenOperations, 1},
		"unfinalized jobs": {db.CountUnfinalizedJobs, 1},
		"payment jobs": {func(ctx context.Context, q db.Querier) (int64, error) {
			return db.CountJobs(ctx, q, app.PaymentArgs{}.Kind())
		}, 1},
	} {
		if n, err := c.count(ctx, pool); err != nil || n != c.want {
			t.Errorf("%s: %d, %v; want %d", name, n, err, c.want)
		}
	}
	// No idempotency record: the minimal server skips it, so none of its
	// rows passes for an acknowledged request of Spillway's.
	if keys, err := db.CapturedPaymentKeys(ctx, pool); err != nil || len(keys) != 0 {
		t.Errorf("captured keys %q, %v; want none", keys, err)
	}
}

// The bench steers a breaker as an operator's SQL would: every instance is
// told, and breaker_transitions keeps only the breaker's own decisions,
// which the bench times.
func TestSetBreakerStateNotifiesAndRecordsNoTransition(t *testing.T) {
	t.Parallel()
	pool, url := dbtest.NewWithURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store := db.NewStore(pool)
	before, err := store.EnsureBreaker(ctx, "payment", app.DefaultBreakerPolicy(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	listener, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close(context.Background())
	if _, err := listener.Exec(ctx, "LISTEN "+db.BreakerChannel); err != nil {
		t.Fatal(err)
	}
	since := time.Now().Add(-time.Hour)

	if err := db.SetBreakerState(ctx, pool, "payment", app.BreakerForcedOpen); err != nil {
		t.Fatal(err)
	}
	n, err := listener.WaitForNotification(ctx)
	if err != nil || n.Payload != "payment" {
		t.Fatalf("notification %+v, %v; want payload payment", n, err)
	}
	after, err := store.GetBreaker(ctx, "payment")
	if err != nil || after.State != app.BreakerForcedOpen || after.Generation != before.Generation+1 {
		t.Fatalf("breaker %+v, %v; want forced_open at generation %d", after, err, before.Generation+1)
	}
	if n, err := db.CountBreakerTransitions(ctx, pool, "payment", app.BreakerForcedOpen); err != nil || n != 0 {
		t.Errorf("transitions to forced_open: %d, %v; want 0", n, err)
	}
	if opened, closed, err := db.FirstBreakerTransitions(ctx, pool, "payment", since, since); err != nil || opened != nil || closed != nil {
		t.Errorf("first transitions %v %v, %v; want none", opened, closed, err)
	}
	if err := db.SetBreakerState(ctx, pool, "no-such-breaker", app.BreakerClosed); err == nil {
		t.Error("a missing breaker was set")
	}
}
