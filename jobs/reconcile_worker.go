package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
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
// attempts left, or an operator deleted it). Such an operation must not
// stay "queued" forever.
type ReconcileWorker struct {
	river.WorkerDefaults[ReconcileArgs]
	pool *pgxpool.Pool
	now  func() time.Time
}

func (w *ReconcileWorker) Work(ctx context.Context, _ *river.Job[ReconcileArgs]) error {
	_, err := w.pool.Exec(ctx, `
		UPDATE operations o
		SET status = CASE WHEN j.state = 'cancelled' THEN 'cancelled' ELSE 'failed' END,
			error = jsonb_build_object('code', CASE WHEN j.state = 'cancelled' THEN 'cancelled' ELSE 'attempts_exhausted' END,
				'message', 'the job ended without completing the operation'),
			completed_at = $1, updated_at = $1
		FROM river_job j
		WHERE j.id = o.job_id AND o.status IN ('queued', 'processing')
			AND j.state IN ('discarded', 'cancelled')`, w.now())
	if err != nil {
		return fmt.Errorf("reconcile operations: %w", err)
	}
	return nil
}
