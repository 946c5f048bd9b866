package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
)

// RetentionArgs is the periodic job that expires idempotency records.
type RetentionArgs struct{}

func (RetentionArgs) Kind() string { return "expire_idempotency_keys" }

func (RetentionArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: 5 * time.Minute}}
}

// RetentionWorker deletes idempotency records older than the TTL, in
// batches so a large backlog never holds long locks. Operations are kept:
// a retry after expiry derives the same operation id, finds the operation
// and is answered with its current state instead of charging again.
type RetentionWorker struct {
	river.WorkerDefaults[RetentionArgs]
	pool *pgxpool.Pool
	ttl  time.Duration
	now  func() time.Time
}

func (w *RetentionWorker) Work(ctx context.Context, _ *river.Job[RetentionArgs]) error {
	cutoff := w.now().Add(-w.ttl)
	for {
		tag, err := w.pool.Exec(ctx, `
			DELETE FROM idempotency_keys WHERE ctid IN (
				SELECT ctid FROM idempotency_keys WHERE created_at < $1 LIMIT 5000)`, cutoff)
		if err != nil {
			return fmt.Errorf("expire idempotency keys: %w", err)
		}
		if tag.RowsAffected() < 5000 {
			return nil
		}
	}
}
