package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
)

// recordTimeout bounds the writes that record an attempt's outcome. They
// run on a context no cancel can take away (an operator's, a shutdown's):
// once a dependency may have acted, what it did must be written down.
const recordTimeout = 15 * time.Second

// updateOperationTx writes an open operation's new state and, when that
// state is terminal, enqueues its notifications in the same transaction.
// An operation someone else already closed is left alone.
func updateOperationTx(ctx context.Context, tx pgx.Tx, op *app.Operation, channels map[app.Channel]bool) error {
	updated, err := db.UpdateOpenOperation(ctx, tx, op)
	if err != nil || !updated {
		return err
	}
	return enqueueNotificationsTx(ctx, tx, op, channels)
}

// enqueueNotificationsTx inserts the delivery jobs of a terminal operation
// in the transaction that made it terminal.
func enqueueNotificationsTx(ctx context.Context, tx pgx.Tx, op *app.Operation, channels map[app.Channel]bool) error {
	jobs := app.NotificationJobs(op, channels)
	if len(jobs) == 0 {
		return nil
	}
	client, err := river.ClientFromContextSafely[pgx.Tx](ctx)
	if err != nil {
		return fmt.Errorf("enqueue notifications: %w", err)
	}
	if _, err := client.InsertManyTx(ctx, tx, jobs); err != nil {
		return fmt.Errorf("enqueue notifications: %w", err)
	}
	return nil
}

// runNow reports whether an operator asked for the job to run at once,
// outside its window.
func runNow(metadata []byte) bool {
	var m struct {
		RunNow bool `json:"run_now"`
	}
	_ = json.Unmarshal(metadata, &m)
	return m.RunNow
}

// Backoff returns the wait after the given attempt (1-based): base·2^(n-1)
// capped at max, scaled into [½, 1) of that by r in [0, 1).
func Backoff(attempt int, base, max time.Duration, r float64) time.Duration {
	d := base
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	if d > max || d <= 0 {
		d = max
	}
	return d/2 + time.Duration(r*float64(d/2))
}

func deref(t *time.Time, def time.Time) time.Time {
	if t == nil {
		return def
	}
	return *t
}
