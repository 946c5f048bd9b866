package db

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spillway/spillway/app"
)

// The benchmark (cmd/spillway-bench) reads and writes Spillway's tables
// only through the functions below, so that a schema change meets its
// checks here, beside the product's own queries, rather than in a tool
// nobody runs in CI. None of them is on the product's path.

// CapturedPaymentKeys returns the Idempotency-Key of every payment captured
// async whose River job row exists: what the benchmark holds each 202
// against.
func CapturedPaymentKeys(ctx context.Context, q Querier) ([]string, error) {
	rows, err := q.Query(ctx, `
		SELECT o.idempotency_key FROM operations o
		JOIN river_job j ON j.id = o.job_id
		WHERE o.kind = 'payment' AND o.mode = 'async' AND o.idempotency_key IS NOT NULL`)
	if err != nil {
		return nil, fmt.Errorf("captured payment keys: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// CountOperations counts every operation, whatever its status.
func CountOperations(ctx context.Context, q Querier) (int64, error) {
	return benchCount(ctx, q, `SELECT count(*) FROM operations`)
}

// CountOpenOperations counts the operations still queued or processing:
// a drained backlog has none.
func CountOpenOperations(ctx context.Context, q Querier) (int64, error) {
	return benchCount(ctx, q, `SELECT count(*) FROM operations WHERE status IN ('queued', 'processing')`)
}

// CountJobs counts River's jobs of one kind, finalized or not.
func CountJobs(ctx context.Context, q Querier, kind string) (int64, error) {
	return benchCount(ctx, q, `SELECT count(*) FROM river_job WHERE kind = $1`, kind)
}

// CountUnfinalizedJobs counts River's jobs of any kind not yet completed,
// cancelled or discarded.
func CountUnfinalizedJobs(ctx context.Context, q Querier) (int64, error) {
	return benchCount(ctx, q, `SELECT count(*) FROM river_job WHERE finalized_at IS NULL`)
}

// CountBreakerTransitions counts a breaker's recorded transitions into
// state to.
func CountBreakerTransitions(ctx context.Context, q Querier, name string, to app.BreakerState) (int64, error) {
	return benchCount(ctx, q, `SELECT count(*) FROM breaker_transitions WHERE name = $1 AND to_state = $2`, name, to)
}

// FirstBreakerTransitions returns when a breaker first went open at or
// after openedAfter, and first went closed at or after closedAfter; nil
// where it has not.
func FirstBreakerTransitions(ctx context.Context, q Querier, name string, openedAfter, closedAfter time.Time) (opened, closed *time.Time, err error) {
	err = q.QueryRow(ctx, `
		SELECT min(at) FILTER (WHERE to_state = 'open' AND at >= $2), min(at) FILTER (WHERE to_state = 'closed' AND at >= $3)
		FROM breaker_transitions WHERE name = $1`, name, openedAfter, closedAfter).Scan(&opened, &closed)
	if err != nil {
		return nil, nil, fmt.Errorf("first breaker transitions: %w", err)
	}
	return opened, closed, nil
}

// SetBreakerState puts a breaker in state the way an operator's SQL
// would, not as the admin UI does: a new generation, no transition row and
// no audit entry, then NOTIFY so every instance rereads it at once. The
// benchmark sets states this way so that its scenarios leave
// breaker_transitions to the breakers' own decisions, which it measures.
func SetBreakerState(ctx context.Context, pool *pgxpool.Pool, name string, state app.BreakerState) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
			UPDATE breakers SET state = $1, generation = generation + 1, since = now(), open_until = NULL,
				trips = CASE WHEN $1 = 'closed' THEN 0 ELSE trips END, updated_at = now()
			WHERE name = $2`, state, name)
		if err != nil {
			return fmt.Errorf("set breaker %s: %w", state, err)
		}
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("set breaker %s: no %s breaker row (did the server start?)", state, name)
		}
		_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, BreakerChannel, name)
		return err
	})
}

// InsertBareCaptureTx writes the operation row of a captured payment and
// nothing else (no idempotency record, no events): the benchmark's minimal
// server, the floor Spillway's capture is compared with, writes this and
// its River job in one transaction, as testdata/bench/capture.sql does.
func InsertBareCaptureTx(ctx context.Context, tx pgx.Tx, id uuid.UUID, priority int, amount int64, currency string, jobID int64) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO operations (id, kind, status, mode, reason, attempts, priority, amount, currency, job_id, created_at, updated_at)
		VALUES ($1, 'payment', 'queued', 'async', 'breaker_open', 0, $2, $3, $4, $5, now(), now())`,
		id, priority, amount, currency, jobID)
	return err
}

// InsertBareSyncPayment writes the operation row of a payment the provider
// has just charged, and nothing else: the one-row transaction of the
// benchmark's minimal sync server, the floor Spillway's sync path is
// compared with.
func InsertBareSyncPayment(ctx context.Context, q Querier, id uuid.UUID, amount int64, currency string, result []byte) error {
	_, err := q.Exec(ctx, `
		INSERT INTO operations (id, kind, status, mode, attempts, priority, amount, currency, result, created_at, updated_at, completed_at)
		VALUES ($1, 'payment', 'succeeded', 'sync', 1, 3, $2, $3, $4, now(), now(), now())`,
		id, amount, currency, result)
	return err
}

func benchCount(ctx context.Context, q Querier, sql string, args ...any) (int64, error) {
	var n int64
	if err := q.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count: %w", err)
	}
	return n, nil
}
