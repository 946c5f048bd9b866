package db

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spillway/spillway/app"
)

// SeedDeferredPayments writes n payments deferred to the off-peak window, as
// Spillway captures them (app.StepRunner with DeferOffpeak): an operation
// queued, async, reason "deferred", and its payment job in the payments
// queue, scheduled for runAt plus up to an hour, with the args a real one
// carries ({"operation_id", "offpeak": true}). They are a real backlog the
// drain must not work now: River fetches only available jobs, and these
// stay scheduled until the window opens. One statement, so a million rows
// take seconds, not an HTTP round trip each; the bench calls it in batches.
func SeedDeferredPayments(ctx context.Context, q Querier, n int, runAt time.Time) error {
	_, err := q.Exec(ctx, `
		WITH g AS (
			SELECT gen_random_uuid() AS op, i, now() - (i % 86400) * interval '1 second' AS created
			FROM generate_series(1, $1::int) i
		), j AS (
			INSERT INTO river_job (state, queue, kind, args, priority, max_attempts, scheduled_at, created_at, metadata)
			SELECT 'scheduled', $2, $3, jsonb_build_object('operation_id', op, 'offpeak', true), $4, 25,
				$5::timestamptz + (i % 3600) * interval '1 second', created, '{}'
			FROM g
			RETURNING id, (args->>'operation_id')::uuid AS op, created_at
		)
		INSERT INTO operations (id, kind, status, mode, reason, attempts, priority, amount, currency,
			customer_email, description, job_id, created_at, updated_at)
		SELECT op, $3, 'queued', 'async', 'deferred', 0, $4, 100 + (id % 10000), 'usd',
			'seed' || id || '@example.com', 'deferred seed payment', id, created_at, created_at
		FROM j`,
		n, app.QueuePayments, app.PaymentArgs{}.Kind(), app.PriorityNormal, runAt)
	if err != nil {
		return fmt.Errorf("seed deferred payments: %w", err)
	}
	return nil
}

// VacuumAnalyze does what autovacuum would do after a bulk load: it sets
// the visibility map (so index-only scans stay index-only) and refreshes
// the planner's statistics and pg_class.reltuples.
func VacuumAnalyze(ctx context.Context, q Querier, tables ...string) error {
	for _, t := range tables {
		if _, err := q.Exec(ctx, `VACUUM (ANALYZE) `+pgx.Identifier{t}.Sanitize()); err != nil {
			return fmt.Errorf("vacuum analyze %s: %w", t, err)
		}
	}
	return nil
}

// CountOpenOperationsSince counts the operations created at or after since
// still queued or processing: the drain of one round's captures, apart
// from an older backlog (the index on created_at bounds it to the round).
func CountOpenOperationsSince(ctx context.Context, q Querier, since time.Time) (int64, error) {
	return benchCount(ctx, q, `SELECT count(*) FROM operations WHERE created_at >= $1 AND status IN ('queued', 'processing')`, since)
}
