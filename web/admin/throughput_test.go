package admin

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

// The chart counts a minute that is over once, and keeps counting the
// current one afresh: a refresh shows new operations now, never loses an
// old one, and does not count the hour again.
func TestThroughputChartCountsSettledMinutesOnce(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 3, 12, 30, 20, 0, time.UTC)
	addKind := func(kind string, at time.Time, mode app.Mode) {
		t.Helper()
		op := &app.Operation{ID: uuid.New(), Kind: kind, Status: app.StatusQueued, Mode: mode, Priority: 2,
			Payment: app.PaymentRequest{Amount: 100, Currency: "usd"}, CreatedAt: at, UpdatedAt: at}
		if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { _, err := db.InsertOperationTx(ctx, tx, op); return err }); err != nil {
			t.Fatal(err)
		}
	}
	add := func(at time.Time, mode app.Mode) { t.Helper(); addKind(app.KindPayment, at, mode) }
	at := func(buckets []db.ThroughputBucket, m time.Time) db.ThroughputBucket {
		t.Helper()
		for _, b := range buckets {
			if b.Minute.Equal(m) {
				return b
			}
		}
		t.Fatalf("no bucket for %s", m)
		return db.ThroughputBucket{}
	}
	old := now.Add(-10 * time.Minute).Truncate(time.Minute)
	cur := now.Truncate(time.Minute)
	add(old.Add(5*time.Second), app.ModeSync)
	add(old.Add(6*time.Second), app.ModeAsync)
	add(cur.Add(time.Second), app.ModeSync)
	add(now.Add(-2*time.Hour), app.ModeSync) // out of the window
	// A drill's canary is not customers' traffic.
	addKind(app.KindCanary, old.Add(8*time.Second), app.ModeAsync)

	var c throughputCache
	b, err := c.read(ctx, pool, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 60 || !b[0].Minute.Equal(cur.Add(-59*time.Minute)) || !b[59].Minute.Equal(cur) {
		t.Fatalf("%d buckets from %s to %s, want the 60 minutes to %s", len(b), b[0].Minute, b[len(b)-1].Minute, cur)
	}
	if got := at(b, old); got.Sync != 1 || got.Async != 1 {
		t.Fatalf("the old minute: %+v", got)
	}
	if got := at(b, cur); got.Sync != 1 {
		t.Fatalf("the current minute: %+v", got)
	}

	// A row written into the settled minute now (it cannot happen: its
	// requests ended long ago) shows it is not counted again; one in the
	// current minute is.
	add(old.Add(7*time.Second), app.ModeSync)
	add(cur.Add(2*time.Second), app.ModeAsync)
	b, err = c.read(ctx, pool, now.Add(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if got := at(b, old); got.Sync != 1 || got.Async != 1 {
		t.Fatalf("the settled minute was counted again: %+v", got)
	}
	if got := at(b, cur); got.Sync != 1 || got.Async != 1 {
		t.Fatalf("the current minute on refresh: %+v", got)
	}

	// An hour on, the old minutes have left the window and the cache.
	if _, err := c.read(ctx, pool, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if c.has(old) || len(c.settled) > 60 {
		t.Fatalf("%d minutes held, the old one among them: %v", len(c.settled), c.has(old))
	}
}
