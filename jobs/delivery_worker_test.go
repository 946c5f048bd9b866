package jobs_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/db/dbtest"
	"github.com/spillway/spillway/jobs"
	"github.com/spillway/spillway/jobs/notify"
)

const testWebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// An endpoint that answered 410 Gone to one ending of an operation is not
// sent the operation's next ending (after an operator's retry): that job is
// recorded as skipped and cancelled without a request. Another operation
// calling back the same URL is not affected.
func TestWebhookGoneStopsLaterDeliveriesOfTheOperation(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	ctx := context.Background()
	var requests atomic.Int32
	gone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		w.WriteHeader(http.StatusGone)
	}))
	t.Cleanup(gone.Close)
	hook, err := notify.NewWebhook(notify.WebhookConfig{Secret: testWebhookSecret, AllowPrivate: true})
	if err != nil {
		t.Fatal(err)
	}
	w := jobs.NewDeliveryWorker(jobs.Config{Pool: pool, Senders: &jobs.Senders{Webhook: hook},
		Logger: slog.New(slog.DiscardHandler), Now: time.Now})

	op := insertOperation(t, pool, gone.URL+"/hooks", app.StatusFailed)
	other := insertOperation(t, pool, gone.URL+"/hooks", app.StatusFailed)
	work := func(id uuid.UUID, status app.Status, jobID int64) error {
		t.Helper()
		return w.Work(ctx, &river.Job[app.DeliveryArgs]{
			JobRow: &rivertype.JobRow{ID: jobID, Attempt: 1},
			Args:   app.DeliveryArgs{OperationID: id, Channel: app.ChannelWebhook, Status: status},
		})
	}

	// The failure is told, and the endpoint says it is gone.
	if err := work(op, app.StatusFailed, 1); !isCancel(err) {
		t.Fatalf("first delivery: %v, want the job cancelled", err)
	}
	if n := requests.Load(); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
	// An operator retried the operation and it succeeded: news, but not
	// for an endpoint that is gone.
	if _, err := pool.Exec(ctx, `UPDATE operations SET status = 'succeeded', completed_at = now() WHERE id = $1`, op); err != nil {
		t.Fatal(err)
	}
	if err := work(op, app.StatusSucceeded, 2); !isCancel(err) {
		t.Fatalf("second delivery: %v, want the job cancelled", err)
	}
	if n := requests.Load(); n != 1 {
		t.Fatalf("%d requests after the endpoint answered 410, want 1", n)
	}
	if got := outcomes(t, pool, op); len(got) != 2 || got[0] != "disabled" || got[1] != "skipped" {
		t.Fatalf("deliveries of the operation: %v, want [disabled skipped]", got)
	}

	// The disable belongs to the operation that heard the 410.
	if err := work(other, app.StatusFailed, 3); !isCancel(err) {
		t.Fatalf("other operation: %v", err)
	}
	if n := requests.Load(); n != 2 {
		t.Fatalf("%d requests, want the other operation's delivery sent", n)
	}
}

func isCancel(err error) bool {
	var c *river.JobCancelError
	return errors.As(err, &c)
}

// insertOperation writes a finished async payment calling back callbackURL,
// as the runner and the payment worker would have left it.
func insertOperation(t *testing.T, pool *pgxpool.Pool, callbackURL string, status app.Status) uuid.UUID {
	t.Helper()
	now := time.Now().UTC()
	op := &app.Operation{
		ID: uuid.New(), Kind: "payment", Status: status, Mode: app.ModeAsync, Reason: app.ReasonTimeout,
		Priority: app.PriorityNormal, CreatedAt: now, UpdatedAt: now, CompletedAt: &now,
		Payment: app.PaymentRequest{Amount: 1999, Currency: "usd", CallbackURL: callbackURL},
	}
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit
	if ok, err := db.InsertOperationTx(ctx, tx, op); err != nil || !ok {
		t.Fatalf("insert operation: %v (inserted %v)", err, ok)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	return op.ID
}

// outcomes lists the operation's webhook delivery outcomes in order.
func outcomes(t *testing.T, pool *pgxpool.Pool, id uuid.UUID) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT outcome FROM deliveries WHERE operation_id = $1 AND channel = 'webhook' ORDER BY id`, id)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return got
}
