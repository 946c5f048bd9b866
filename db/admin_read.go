package db

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/rivertype"

	"github.com/spillway/spillway/app"
)

// AdminCountCap is where the admin stops counting rows one by one: below
// it a count is exact (a bounded index scan, a few milliseconds), at it the
// figure is the planner's estimate, shown as "about".
const AdminCountCap = 1_000

// ReadWithin runs fn in a read-only transaction whose statements are cut
// off by Postgres after timeout (statement_timeout, SET LOCAL), so one slow
// admin section cannot hold a connection, nor the page, for longer. A
// query cut off returns an error IsStatementTimeout recognises. BEGIN, the
// read-only mode and the timeout go in one round trip (a pipelined
// transaction), so a section costs its own queries and a COMMIT.
func ReadWithin(ctx context.Context, pool *pgxpool.Pool, timeout time.Duration, fn func(Querier) error) error {
	tx, err := BeginPipelined(ctx, pool)
	if err != nil {
		return fmt.Errorf("begin read: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	ms := strconv.FormatInt(max(timeout.Milliseconds(), 1), 10)
	b := &pgx.Batch{}
	b.Queue(`SET TRANSACTION READ ONLY`)
	b.Queue(`SELECT set_config('statement_timeout', $1, true)`, ms)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("begin read: %w", err)
	}
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// IsStatementTimeout says whether err is Postgres cancelling a statement
// (statement_timeout, SQLSTATE 57014).
func IsStatementTimeout(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "57014"
}

// AdminQueueDepth is how many jobs a queue holds in one state, exact or
// estimated.
type AdminQueueDepth struct {
	Queue     string
	State     rivertype.JobState
	Count     int
	Estimated bool
}

// AdminQueueDepths counts River's jobs by queue and state without reading
// the whole table: the (state, queue) pairs present are found by skipping
// through River's fetch index (state, queue, priority, scheduled_at, id)
// one pair at a time, each pair is counted exactly up to limit with an
// index-only scan, and a pair at limit gets the planner's estimate instead
// (from the statistics autovacuum keeps), marked Estimated. A full count of
// a million-row river_job takes hundreds of milliseconds; this takes a few.
func AdminQueueDepths(ctx context.Context, q Querier, limit int) ([]AdminQueueDepth, error) {
	rows, err := q.Query(ctx, `
		WITH RECURSIVE p(state, queue) AS (
			(SELECT state, queue FROM river_job ORDER BY state, queue LIMIT 1)
			UNION ALL
			SELECT x.state, x.queue FROM p, LATERAL (
				SELECT j.state, j.queue FROM river_job j WHERE (j.state, j.queue) > (p.state, p.queue)
				ORDER BY j.state, j.queue LIMIT 1) x
		)
		SELECT p.queue, p.state::text, (SELECT count(*) FROM (
			SELECT 1 FROM river_job j WHERE j.state = p.state AND j.queue = p.queue LIMIT $1) c)
		FROM p ORDER BY 1, 2`, limit)
	if err != nil {
		return nil, fmt.Errorf("queue depths: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AdminQueueDepth, error) {
		var d AdminQueueDepth
		return d, r.Scan(&d.Queue, &d.State, &d.Count)
	})
	if err != nil {
		return nil, fmt.Errorf("queue depths: %w", err)
	}
	for i, d := range out {
		if d.Count < limit {
			continue
		}
		est, err := planRows(ctx, q, `SELECT 1 FROM river_job WHERE state = $1::river_job_state AND queue = $2`, string(d.State), d.Queue)
		if err != nil {
			return nil, fmt.Errorf("queue depths: %w", err)
		}
		out[i].Count, out[i].Estimated = max(est, limit), true
	}
	return out, nil
}

// planRows is the planner's estimate of the rows sql returns (EXPLAIN,
// nothing run).
func planRows(ctx context.Context, q Querier, sql string, args ...any) (int, error) {
	var plan []byte
	if err := q.QueryRow(ctx, `EXPLAIN (FORMAT JSON) `+sql, args...).Scan(&plan); err != nil {
		return 0, fmt.Errorf("estimate: %w", err)
	}
	var p []struct {
		Plan struct {
			Rows float64 `json:"Plan Rows"`
		} `json:"Plan"`
	}
	if err := json.Unmarshal(plan, &p); err != nil || len(p) == 0 {
		return 0, fmt.Errorf("estimate: unreadable plan %.200s", plan)
	}
	return int(p[0].Plan.Rows), nil
}

// CountAdminJobsBounded counts the jobs matching f exactly up to limit;
// past it, it returns the planner's estimate (at least limit) and
// estimated true. Filters on the operation join it; others count
// river_job alone.
func CountAdminJobsBounded(ctx context.Context, q Querier, f app.JobFilter, limit int, now time.Time) (n int, estimated bool, err error) {
	where, args := jobWhere(f, nil, now)
	from := ` FROM river_job j `
	if strings.Contains(where, "o.") {
		from = adminJobFrom
	}
	args = append(args, limit)
	if err := q.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1`+from+where+` LIMIT $`+strconv.Itoa(len(args))+`) c`, args...).Scan(&n); err != nil {
		return 0, false, fmt.Errorf("count jobs: %w", err)
	}
	if n < limit {
		return n, false, nil
	}
	est, err := planRows(ctx, q, `SELECT 1`+from+where, args[:len(args)-1]...)
	if err != nil {
		return 0, false, fmt.Errorf("count jobs: %w", err)
	}
	return max(est, limit), true, nil
}

// waitingPairs are the (state, queue) pairs of River's jobs in states,
// found by skipping through the fetch index, one state at a time (a row
// comparison across states is no tight index bound: it read on through
// the rest of the index, 200 ms at a million jobs, where this takes one
// probe per pair), so a list in worker order can read each pair's jobs in
// index order.
func waitingPairs(ctx context.Context, q Querier, states []rivertype.JobState) ([][2]string, error) {
	rows, err := q.Query(ctx, `
		SELECT s::text, q.queue FROM unnest($1::river_job_state[]) s, LATERAL (
			WITH RECURSIVE p(queue) AS (
				(SELECT queue FROM river_job WHERE state = s ORDER BY queue LIMIT 1)
				UNION ALL
				SELECT (SELECT j.queue FROM river_job j WHERE j.state = s AND j.queue > p.queue ORDER BY j.queue LIMIT 1)
				FROM p WHERE p.queue IS NOT NULL
			)
			SELECT queue FROM p WHERE queue IS NOT NULL
		) q
		ORDER BY s, q.queue`, stateStrings(states))
	if err != nil {
		return nil, fmt.Errorf("job queues: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]string, error) {
		var p [2]string
		return p, r.Scan(&p[0], &p[1])
	})
}

// ReadSections runs a page's sections in order in one ReadWithin
// transaction: one connection, one BEGIN (pipelined) and one COMMIT for
// them all, where a ReadWithin each waited for the pool and paid its
// BEGIN and COMMIT as many times. A section whose statement Postgres cuts
// off aborts the transaction, so the sections after it go on in a new
// one: the page loses that section only, and timedOut[i] says which. err
// is any other failure, which ends the reading (the page's error).
func ReadSections(ctx context.Context, pool *pgxpool.Pool, timeout time.Duration, sections ...func(Querier) error) (timedOut []bool, err error) {
	timedOut = make([]bool, len(sections))
	next := 0
	for next < len(sections) {
		from := next
		err := ReadWithin(ctx, pool, timeout, func(q Querier) error {
			for next < len(sections) {
				i := next
				next++
				if err := sections[i](q); err != nil {
					timedOut[i] = IsStatementTimeout(err)
					return err
				}
			}
			return nil
		})
		// A failure before any section ran (the BEGIN) is no section's.
		if err != nil && (!IsStatementTimeout(err) || next == from) {
			return timedOut, err
		}
	}
	return timedOut, nil
}
