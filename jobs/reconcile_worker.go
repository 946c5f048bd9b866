package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
)

// ReconcileArgs is the periodic job that closes operations River gave up on.
type ReconcileArgs struct{}

func (ReconcileArgs) Kind() string { return "reconcile_operations" }

func (ReconcileArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: 30 * time.Second}}
}

// ReconcileWorker is the safety net for the one path a worker cannot close
// itself: a job that River discarded or cancelled without our worker
// running its last attempt (say it was rescued after a crash with no
// attempts left, or an operator cancelled it). Such an operation must not
// stay "queued" forever, and its client must still hear how it ended.
type ReconcileWorker struct {
	river.WorkerDefaults[ReconcileArgs]
	pool     *pgxpool.Pool
	now      func() time.Time
	channels map[app.Channel]bool
}

func (w *ReconcileWorker) Work(ctx context.Context, _ *river.Job[ReconcileArgs]) error {
	rows, err := w.pool.Query(ctx, `
		SELECT o.id, j.state::text FROM operations o JOIN river_job j ON j.id = o.job_id
		WHERE o.status IN ('queued', 'processing') AND j.state IN ('discarded', 'cancelled')
		LIMIT 1000`)
	if err != nil {
		return fmt.Errorf("reconcile operations: %w", err)
	}
	type stuck struct {
		id    [16]byte
		state string
	}
	var found []stuck
	for rows.Next() {
		var s stuck
		if err := rows.Scan(&s.id, &s.state); err != nil {
			rows.Close()
			return err
		}
		found = append(found, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, s := range found {
		if err := w.close(ctx, s.id, s.state); err != nil {
			return err
		}
	}
	return nil
}

func (w *ReconcileWorker) close(ctx context.Context, id [16]byte, jobState string) error {
	tx, err := w.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	op, err := db.GetOperation(ctx, tx, id)
	if err != nil {
		return err
	}
	now := w.now()
	if jobState == "cancelled" {
		op.Cancel("the job was cancelled", now)
	} else {
		op.Fail("attempts_exhausted", "the job ended without completing the operation", now)
	}
	if err := updateOperationTx(ctx, tx, op, w.channels); err != nil {
		return err
	}
	return tx.Commit(ctx)
}
