package db

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spillway/spillway/app"
)

var _ app.OperatorStore = (*Store)(nil)

// LockJobsTx locks the given jobs that are in one of states and returns
// them with their operations' ids, in id order; the others are left out.
func (s *Store) LockJobsTx(ctx context.Context, tx pgx.Tx, ids []int64, states []string) ([]app.JobRef, error) {
	rows, err := tx.Query(ctx, `
		SELECT j.id, j.state::text, j.priority, o.id
		FROM river_job j LEFT JOIN operations o ON o.job_id = j.id
		WHERE j.id = ANY($1) AND j.state::text = ANY($2) ORDER BY j.id FOR UPDATE OF j`, ids, states)
	if err != nil {
		return nil, fmt.Errorf("lock jobs: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (app.JobRef, error) {
		var j app.JobRef
		err := r.Scan(&j.ID, &j.State, &j.Priority, &j.OperationID)
		return j, err
	})
}

// JobOperations reads the operations of those of the given jobs in one of
// states.
func (s *Store) JobOperations(ctx context.Context, ids []int64, states []string) ([]*app.Operation, error) {
	ops, err := queryOperations(ctx, s.Pool, `SELECT `+operationColumns+` FROM operations
		WHERE job_id IN (SELECT id FROM river_job WHERE id = ANY($1) AND state::text = ANY($2))`, ids, states)
	if err != nil {
		return nil, fmt.Errorf("job operations: %w", err)
	}
	return ops, nil
}

// ReviseOperationTx writes op's mutable fields if the stored operation is
// in one of from: an operator's verdict, a lookup's answer, a reopen.
func (s *Store) ReviseOperationTx(ctx context.Context, tx pgx.Tx, op *app.Operation, from []app.Status) (bool, error) {
	return ReviseOperation(ctx, tx, op, from)
}

// SetJobPriorityTx changes waiting jobs' River priority, and their
// operations' to match what the API reports.
//
// River (checked against v0.51.1) has no API for this: JobUpdate only
// merges output into metadata. Workers fetch `state = 'available'` ordered
// by (priority, scheduled_at, id), so updating the column of a job that is
// still waiting (available, scheduled, retryable, pending) is all it
// takes; a running or finished job's priority means nothing and is left
// alone. Re-check this against River's fetch query when upgrading.
func (s *Store) SetJobPriorityTx(ctx context.Context, tx pgx.Tx, ids []int64, priority int, now time.Time) error {
	if priority < 1 || priority > 4 {
		return app.FieldErrorf("priority", "priority must be 1 to 4")
	}
	if _, err := tx.Exec(ctx, `
		UPDATE river_job SET priority = $2
		WHERE id = ANY($1) AND state IN ('available', 'scheduled', 'retryable', 'pending')`, ids, priority); err != nil {
		return fmt.Errorf("set job priority: %w", err)
	}
	if _, err := tx.Exec(ctx, `
		UPDATE operations SET priority = $2, updated_at = $3 WHERE job_id = ANY($1) AND status IN ('queued', 'processing')`,
		ids, priority, now); err != nil {
		return fmt.Errorf("set operation priority: %w", err)
	}
	return nil
}

// MarkRunNowTx tells the payment worker that an operator asked for these
// jobs to run now, even outside the off-peak window they were deferred to.
func (s *Store) MarkRunNowTx(ctx context.Context, tx pgx.Tx, ids []int64) error {
	if _, err := tx.Exec(ctx, `UPDATE river_job SET metadata = metadata || '{"run_now": true}' WHERE id = ANY($1)`, ids); err != nil {
		return fmt.Errorf("mark run now: %w", err)
	}
	return nil
}

// InsertAuditTx appends an audit entry inside tx.
func (s *Store) InsertAuditTx(ctx context.Context, tx pgx.Tx, e app.AuditEntry) error {
	return InsertAudit(ctx, tx, e)
}
