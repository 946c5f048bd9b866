package db

import (
	"context"
	"fmt"
	"time"

	"github.com/spillway/spillway/app"
)

// HoldJobPlace remembers a job's place in its queue before the breaker
// snoozes it: River orders waiting jobs by (priority, scheduled_at, id),
// and a snooze moves scheduled_at to the probe time, behind every job of
// its priority captured meanwhile. The place is kept in the job's
// metadata (River merges its own snooze count into it in SQL, so the key
// survives the snooze); an earlier hold's place is kept.
func HoldJobPlace(ctx context.Context, q Querier, jobID int64) error {
	_, err := q.Exec(ctx, `
		UPDATE river_job SET metadata = metadata || jsonb_build_object('breaker_hold', scheduled_at)
		WHERE id = $1 AND NOT metadata ? 'breaker_hold'`, jobID)
	if err != nil {
		return fmt.Errorf("hold job place: %w", err)
	}
	return nil
}

// ReleaseHeldJobs makes one queue's jobs ready to be worked in priority
// order when its breaker lets calls through again: jobs the breaker held
// are put back where they were (HoldJobPlace), however long their snooze
// had left, and scheduled or retryable jobs whose time has come become
// available now rather than at River's scheduler's next run (every 5 s;
// checked against v0.51.1), when workers would otherwise have fetched
// lower-priority jobs first. River fetches only available jobs, by
// (priority, scheduled_at, id); no priority or attempt changes.
func ReleaseHeldJobs(ctx context.Context, q Querier, queue string) error {
	_, err := q.Exec(ctx, `
		UPDATE river_job SET state = 'available',
			scheduled_at = CASE WHEN metadata ? 'breaker_hold'
				THEN least(scheduled_at, (metadata->>'breaker_hold')::timestamptz) ELSE scheduled_at END,
			metadata = metadata - 'breaker_hold'
		WHERE queue = $1 AND (
			(metadata ? 'breaker_hold' AND state IN ('available', 'scheduled'))
			OR (state IN ('scheduled', 'retryable') AND scheduled_at <= now()))`, queue)
	if err != nil {
		return fmt.Errorf("release held jobs: %w", err)
	}
	return nil
}

// QueueBacklog counts the jobs of queue waiting to be worked (available,
// scheduled, retryable or pending: not running, not finished) and finds
// when the oldest was created. It uses River's fetch index on (state,
// queue, …), so it costs an index scan of the backlog, which is why it is
// read in the background at most once a second per instance.
func QueueBacklog(ctx context.Context, q Querier, queue string) (app.Backlog, error) {
	var b app.Backlog
	var oldest *time.Time
	err := q.QueryRow(ctx, `SELECT count(*), min(created_at) FROM river_job
		WHERE state IN ('available', 'scheduled', 'retryable', 'pending') AND queue = $1`, queue).Scan(&b.Jobs, &oldest)
	if err != nil {
		return b, fmt.Errorf("queue backlog %s: %w", queue, err)
	}
	if oldest != nil {
		b.Oldest = *oldest
	}
	return b, nil
}
