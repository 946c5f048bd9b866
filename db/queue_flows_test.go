package db_test

import (
	"context"
	"testing"
	"time"

	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/db/dbtest"
)

// A queue's flow counts its running jobs and the jobs that reached any
// final state since a moment, each exactly up to the limit; at the limit
// the span starts at the limit-th latest finish, so count over span is
// still a rate. Other queues' jobs and older finishes do not count.
func TestReadQueueFlowsCountsUpToTheLimit(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	ctx := context.Background()
	now := time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)
	since := now.Add(-5 * time.Minute)
	if _, err := pool.Exec(ctx, `
		INSERT INTO river_job (args, kind, max_attempts, priority, queue, state, finalized_at, attempt, attempted_at)
		SELECT '{}', 'k', 5, 1, queue, state::river_job_state, finalized_at, 1, $1::timestamptz
		FROM (VALUES
			('payments', 'running', NULL::timestamptz),
			('payments', 'completed', $1::timestamptz - interval '1 minute'),
			('payments', 'discarded', $1::timestamptz - interval '2 minutes'),
			('payments', 'cancelled', $1::timestamptz - interval '3 minutes'),
			('payments', 'completed', $1::timestamptz - interval '4 minutes'),
			('payments', 'completed', $1::timestamptz - interval '6 minutes'),
			('orders', 'completed', $1::timestamptz - interval '1 minute'),
			('orders', 'available', NULL)
		) v(queue, state, finalized_at)`, now); err != nil {
		t.Fatal(err)
	}
	read := func(limit int) map[string]db.QueueFlow {
		t.Helper()
		fs, err := db.ReadQueueFlows(ctx, pool, []string{"payments", "orders", "idle"}, since, limit)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]db.QueueFlow{}
		for _, f := range fs {
			out[f.Queue] = f
		}
		return out
	}
	got := read(1000)
	if f := got["payments"]; f.Running != 1 || f.Finished != 4 || !f.FinishedSince.Equal(since) {
		t.Errorf("payments under the limit: %+v, want 1 running, 4 finished since %v", f, since)
	}
	if f := got["orders"]; f.Running != 0 || f.Finished != 1 {
		t.Errorf("orders: %+v, want 1 finished", f)
	}
	if f := got["idle"]; f.Running != 0 || f.Finished != 0 || !f.FinishedSince.Equal(since) {
		t.Errorf("a queue with no jobs: %+v", f)
	}
	// At a limit of 3 the 3 latest count, over the span since the third
	// (3 minutes ago, a cancellation).
	if f := read(3)["payments"]; f.Finished != 3 || !f.FinishedSince.Equal(now.Add(-3*time.Minute)) {
		t.Errorf("payments at the limit: %+v, want 3 finished since %v", f, now.Add(-3*time.Minute))
	}
}
