package jobs

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/spillway/spillway/db"
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

// retentionBatch is how many records one statement deletes.
const retentionBatch = 5000

func (w *RetentionWorker) Work(ctx context.Context, _ *river.Job[RetentionArgs]) error {
	cutoff := w.now().Add(-w.ttl)
	for {
		n, err := db.ExpireIdempotencyKeys(ctx, w.pool, cutoff, retentionBatch)
		if err != nil || n < retentionBatch {
			return err
		}
	}
}
