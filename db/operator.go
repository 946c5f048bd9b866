package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river/rivertype"

	"github.com/spillway/spillway/app"
)

// LockJobsTx locks the given jobs that are in one of states and returns
// them with their operations' ids, in id order; the others are left out.
func LockJobsTx(ctx context.Context, tx pgx.Tx, ids []int64, states []rivertype.JobState) ([]app.JobRef, error) {
	rows, err := tx.Query(ctx, `
		SELECT j.id, j.state::text, j.priority, o.id, coalesce(`+attemptUnrecorded+`, false)
		FROM river_job j LEFT JOIN operations o ON o.job_id = j.id
		WHERE j.id = ANY($1) AND j.state::text = ANY($2) ORDER BY j.id FOR UPDATE OF j`, ids, stateStrings(states))
	if err != nil {
		return nil, fmt.Errorf("lock jobs: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (app.JobRef, error) {
		var j app.JobRef
		err := r.Scan(&j.ID, &j.State, &j.Priority, &j.OperationID, &j.AttemptUnrecorded)
		return j, err
	})
}

// JobOperations reads the operations of those of the given jobs in one of
// states, each with whether an attempt of its job went unrecorded.
func JobOperations(ctx context.Context, q Querier, ids []int64, states []rivertype.JobState) ([]app.JobOperation, error) {
	rows, err := q.Query(ctx, `SELECT `+operationColumns+`,
			coalesce((SELECT `+attemptUnrecorded+` FROM river_job j WHERE j.id = o.job_id), false)
		FROM operations o
		WHERE job_id IN (SELECT id FROM river_job WHERE id = ANY($1) AND state::text = ANY($2))`, ids, stateStrings(states))
	if err != nil {
		return nil, fmt.Errorf("job operations: %w", err)
	}
	ops, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (app.JobOperation, error) {
		var jo app.JobOperation
		op, err := scanOperation(extraScan{r, []any{&jo.AttemptUnrecorded}})
		jo.Operation = op
		return jo, err
	})
	if err != nil {
		return nil, fmt.Errorf("job operations: %w", err)
	}
	return ops, nil
}

// attemptUnrecorded is true when job j began an attempt after its
// operation o was last written: a worker writes the outcome with the
// operation's updated_at, so such an attempt ended without one (its worker
// died or was stopped mid-call) and may have charged. River stamps
// attempted_at with the database's clock and the operation is stamped
// with the instance's, so a clock behind the database's can only make
// this true more often, which costs a lookup.
const attemptUnrecorded = `j.attempted_at > o.updated_at`

// extraScan scans a row of operationColumns followed by extra columns.
type extraScan struct {
	pgx.Row
	extra []any
}

func (e extraScan) Scan(dest ...any) error { return e.Row.Scan(append(dest, e.extra...)...) }

// SetJobPriorityTx changes waiting jobs' River priority, and their
// operations' to match what the API reports.
//
// River (checked against v0.51.1) has no API for this: JobUpdate only
// merges output into metadata. Workers fetch `state = 'available'` ordered
// by (priority, scheduled_at, id), so updating the column of a job that is
// still waiting (app.WaitingStates) is all it takes; a running or finished
// job's priority means nothing and is left alone. Re-check this against
// River's fetch query when upgrading.
func SetJobPriorityTx(ctx context.Context, tx pgx.Tx, ids []int64, priority int, now time.Time) error {
	if priority < 1 || priority > 4 {
		return app.FieldErrorf("priority", "priority must be 1 to 4")
	}
	if _, err := tx.Exec(ctx, `UPDATE river_job SET priority = $2 WHERE id = ANY($1) AND state::text = ANY($3)`,
		ids, priority, stateStrings(app.WaitingStates)); err != nil {
		return fmt.Errorf("set job priority: %w", err)
	}
	if _, err := tx.Exec(ctx, `
		UPDATE operations SET priority = $2, updated_at = $3 WHERE job_id = ANY($1) AND status = ANY($4)`,
		ids, priority, now, []app.Status{app.StatusQueued, app.StatusProcessing}); err != nil {
		return fmt.Errorf("set operation priority: %w", err)
	}
	return nil
}

// MarkRunNow tells the payment worker that an operator asked for these
// jobs to run now, even outside the off-peak window they were deferred to.
func MarkRunNow(ctx context.Context, q Querier, ids []int64) error {
	if _, err := q.Exec(ctx, `UPDATE river_job SET metadata = metadata || '{"run_now": true}' WHERE id = ANY($1)`, ids); err != nil {
		return fmt.Errorf("mark run now: %w", err)
	}
	return nil
}

// LockQueueTx locks River's row for a queue and says whether it is
// paused; ENOTFOUND when no worker has registered it.
func LockQueueTx(ctx context.Context, tx pgx.Tx, name string) (bool, error) {
	var pausedAt *time.Time
	err := tx.QueryRow(ctx, `SELECT paused_at FROM river_queue WHERE name = $1 FOR UPDATE`, name).Scan(&pausedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, app.Errorf(app.ENOTFOUND, "no queue %q", name)
	}
	if err != nil {
		return false, fmt.Errorf("lock queue %s: %w", name, err)
	}
	return pausedAt != nil, nil
}
