package db

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/rivertype"

	"github.com/spillway/spillway/app"
)

// QueueDepth is how many jobs a queue holds in one state.
type QueueDepth struct {
	Queue string
	State rivertype.JobState
	Count int
}

// MetricsCountCap is where /metrics stops counting a queue's jobs in one
// state one by one: below it spillway_queue_jobs is exact, at it the
// planner's estimate (AdminQueueDepths). Counting every job exactly was a
// scan of river_job at every refresh, hundreds of milliseconds at a
// million jobs, just when a backlog makes the database busiest; past ten
// thousand, what an alert or a dashboard needs is the size, not the unit.
const MetricsCountCap = 10_000

// ListQueueDepths counts River's jobs by queue and state for /metrics:
// exactly up to MetricsCountCap per queue and state, the planner's
// estimate (at least the cap) past it, in one read-only transaction whose
// statements each take at most metricsStatementTimeout.
func ListQueueDepths(ctx context.Context, pool *pgxpool.Pool) ([]QueueDepth, error) {
	var out []QueueDepth
	err := ReadWithin(ctx, pool, metricsStatementTimeout, func(q Querier) error {
		ds, err := AdminQueueDepths(ctx, q, MetricsCountCap)
		for _, d := range ds {
			out = append(out, QueueDepth{Queue: d.Queue, State: d.State, Count: d.Count})
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// QueueRow is a queue River's clients registered, with its pause state.
type QueueRow struct {
	Name     string
	PausedAt *time.Time
}

// ListQueues reads River's queues.
func ListQueues(ctx context.Context, q Querier) ([]QueueRow, error) {
	rows, err := q.Query(ctx, `SELECT name, paused_at FROM river_queue ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list queues: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[QueueRow])
}

// OldestWaiting is when the longest-waiting runnable job became due
// (zero when none waits).
func OldestWaiting(ctx context.Context, q Querier, now time.Time) (time.Time, error) {
	var t *time.Time
	// The state compared as River's enum, so River's fetch index serves it
	// (as text it was a scan of the whole table).
	err := q.QueryRow(ctx, `SELECT min(scheduled_at) FROM river_job WHERE state = $2::river_job_state AND scheduled_at <= $1`,
		now, string(rivertype.JobStateAvailable)).Scan(&t)
	if err != nil || t == nil {
		return time.Time{}, err
	}
	return *t, nil
}

// ThroughputBucket is one minute of operations by how they were handled.
type ThroughputBucket struct {
	Minute time.Time
	Sync   int
	Async  int
}

// Throughput returns one bucket per minute from since to now (empty
// minutes included) of operations created, split sync / async. A drill's
// canaries are not customers' work and are left out: a shadow drill would
// otherwise show as traffic failing over.
func Throughput(ctx context.Context, q Querier, since, now time.Time) ([]ThroughputBucket, error) {
	rows, err := q.Query(ctx, `
		SELECT m, coalesce(s, 0), coalesce(a, 0)
		FROM generate_series(date_trunc('minute', $1::timestamptz), date_trunc('minute', $2::timestamptz), interval '1 minute') m
		LEFT JOIN (
			SELECT date_trunc('minute', created_at) AS minute,
				count(*) FILTER (WHERE mode = 'sync') AS s, count(*) FILTER (WHERE mode = 'async') AS a
			FROM operations WHERE created_at >= date_trunc('minute', $1::timestamptz) AND kind <> $3 GROUP BY 1
		) b ON b.minute = m
		ORDER BY m`, since, now, app.KindCanary)
	if err != nil {
		return nil, fmt.Errorf("throughput: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[ThroughputBucket])
}

// SyncLatencyP95 is the 95th percentile of the time from arrival to a
// synchronous answer over operations completed synchronously since a
// moment, and how many there were. It is the caller's view of a sync call
// (provider plus our database work); the breaker's counts keep no
// latencies.
func SyncLatencyP95(ctx context.Context, q Querier, since time.Time) (time.Duration, int, error) {
	var p95 *float64
	var n int
	err := q.QueryRow(ctx, `
		SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - created_at)), count(*)
		FROM operations WHERE mode = 'sync' AND completed_at IS NOT NULL AND created_at >= $1`, since).Scan(&p95, &n)
	if err != nil {
		return 0, 0, fmt.Errorf("sync latency: %w", err)
	}
	if p95 == nil {
		return 0, n, nil
	}
	return time.Duration(*p95 * float64(time.Second)), n, nil
}

// BreakerTransition is one line of a breaker's history.
type BreakerTransition struct {
	Name     string
	From     string
	To       string
	Reason   string
	Calls    int
	Failures int
	Slow     int
	Instance string
	Actor    string
	At       time.Time
}

// ListBreakerTransitions returns the latest transitions, of one breaker
// when name is set, newest first.
func ListBreakerTransitions(ctx context.Context, q Querier, name string, limit int) ([]BreakerTransition, error) {
	rows, err := q.Query(ctx, `
		SELECT name, from_state, to_state, reason, calls, failures, slow, instance, actor, at
		FROM breaker_transitions WHERE $1 = '' OR name = $1 ORDER BY at DESC, id DESC LIMIT $2`, name, limit)
	if err != nil {
		return nil, fmt.Errorf("breaker transitions: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[BreakerTransition])
}

// QueueFlow is how one queue's acknowledged work moves, as the overview
// reads it: what runs now, and what finished lately.
type QueueFlow struct {
	Queue string
	// Running counts its jobs a worker holds, exact up to the limit asked
	// for (workers bound it far below).
	Running int
	// Finished counts its jobs that reached a final state (completed,
	// discarded, cancelled) since the moment asked about, exactly up to
	// the limit; FinishedSince is the start of the span they cover: that
	// moment, or when the limit-th latest finished if there were as many,
	// so Finished over now−FinishedSince is a rate either way.
	Finished      int
	FinishedSince time.Time
}

// ReadQueueFlows reads each queue's flow in one statement. Every count is
// bounded by limit and served by River's indexes: the running jobs by the
// fetch index (state, queue, …), the finished ones by (state,
// finalized_at), read newest first per final state and cut at limit, so
// a busy hour costs at most 3×limit index entries per queue however many
// jobs finished in it. The queue is a filter on those entries, not part
// of the index: a queue that finishes little beside a busy one reads
// past the busy one's entries in the window.
func ReadQueueFlows(ctx context.Context, q Querier, queues []string, since time.Time, limit int) ([]QueueFlow, error) {
	rows, err := q.Query(ctx, `
		SELECT q.queue,
			(SELECT count(*) FROM (SELECT 1 FROM river_job j
				WHERE j.state = 'running' AND j.queue = q.queue LIMIT $3) r),
			f.n, f.first
		FROM unnest($1::text[]) q(queue), LATERAL (
			SELECT count(*) AS n, min(t.finalized_at) AS first FROM (
				SELECT e.finalized_at FROM unnest('{completed,discarded,cancelled}'::river_job_state[]) s, LATERAL (
					SELECT finalized_at FROM river_job
					WHERE state = s AND finalized_at >= $2 AND queue = q.queue
					ORDER BY finalized_at DESC LIMIT $3) e
				ORDER BY e.finalized_at DESC LIMIT $3
			) t
		) f`, queues, since, limit)
	if err != nil {
		return nil, fmt.Errorf("queue flows: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (QueueFlow, error) {
		var f QueueFlow
		var first *time.Time
		err := r.Scan(&f.Queue, &f.Running, &f.Finished, &first)
		f.FinishedSince = since
		if first != nil && f.Finished >= limit {
			f.FinishedSince = *first
		}
		return f, err
	})
	if err != nil {
		return nil, fmt.Errorf("queue flows: %w", err)
	}
	return out, nil
}
