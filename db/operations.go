package db

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/spillway/spillway/app"
)

const operationColumns = `id, kind, status, mode, coalesce(reason, ''), attempts, priority, amount, currency,
	coalesce(customer_email, ''), coalesce(customer_phone, ''), coalesce(description, ''), coalesce(callback_url, ''),
	coalesce(job_id, 0), key_gen, outcome_unknown_since, attempted_at, result, error, created_at, updated_at, completed_at,
	lines, steps, cancel_requested_at`

func scanOperation(row pgx.Row) (*app.Operation, error) {
	var (
		op           app.Operation
		email, phone string
		result, oerr []byte
		lines, steps []byte
	)
	err := row.Scan(&op.ID, &op.Kind, &op.Status, &op.Mode, &op.Reason, &op.Attempts, &op.Priority,
		&op.Payment.Amount, &op.Payment.Currency, &email, &phone, &op.Payment.Description, &op.Payment.CallbackURL,
		&op.JobID, &op.KeyGen, &op.OutcomeUnknownSince, &op.AttemptedAt, &result, &oerr, &op.CreatedAt, &op.UpdatedAt, &op.CompletedAt, &lines, &steps,
		&op.CancelRequestedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, err
	}
	if email != "" || phone != "" {
		op.Payment.Customer = &app.Customer{Email: email, Phone: phone}
	}
	if result != nil {
		op.Result = result
	}
	if oerr != nil {
		op.Error = &app.OperationError{}
		if err := json.Unmarshal(oerr, op.Error); err != nil {
			return nil, fmt.Errorf("decode operation error: %w", err)
		}
	}
	if lines != nil {
		if err := json.Unmarshal(lines, &op.Lines); err != nil {
			return nil, fmt.Errorf("decode order lines: %w", err)
		}
	}
	if steps != nil {
		if err := json.Unmarshal(steps, &op.Steps); err != nil {
			return nil, fmt.Errorf("decode steps: %w", err)
		}
	}
	return &op, nil
}

// GetOperation reads one operation; an ENOTFOUND error if there is none.
func GetOperation(ctx context.Context, q Querier, id uuid.UUID) (*app.Operation, error) {
	op, err := scanOperation(q.QueryRow(ctx, `SELECT `+operationColumns+` FROM operations WHERE id = $1`, id))
	if err != nil && !isNotFound(err) {
		return nil, fmt.Errorf("get operation: %w", err)
	}
	return op, err
}

// InsertOperationTx inserts op; false means an operation with its id exists.
func InsertOperationTx(ctx context.Context, tx pgx.Tx, op *app.Operation) (bool, error) {
	tag, err := tx.Exec(ctx, insertOperation, insertOperationArgs(op)...)
	if err != nil {
		return false, fmt.Errorf("insert operation: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// RecordTx writes a new operation with its key's first answer, one row,
// at tx's commit when tx is pipelined (WriteAtCommitTx), so the write and
// COMMIT share a round trip. It fails, and the transaction commits
// nothing, if the operation already exists: a request is never
// acknowledged without its own row.
func RecordTx(ctx context.Context, tx pgx.Tx, op *app.Operation, rec *app.IdempotencyRecord) error {
	b := &pgx.Batch{}
	b.Queue(recordOperation, append(insertOperationArgs(op), rec.Key, rec.Fingerprint, []byte(rec.Response))...)
	if err := WriteAtCommitTx(ctx, tx, b); err != nil {
		return fmt.Errorf("record operation: %w", err)
	}
	return nil
}

// newOperationColumns are the columns a new operation is written with,
// and newOperationValues their parameters, in insertOperationArgs's order.
const (
	newOperationColumns = `id, kind, status, mode, reason, attempts, priority, amount, currency,
		customer_email, customer_phone, description, callback_url, job_id, result, error,
		created_at, updated_at, completed_at, key_gen, outcome_unknown_since, attempted_at, lines, steps`
	newOperationValues = `$1, $2, $3, $4, nullif($5, ''), $6, $7, $8, $9, nullif($10, ''), nullif($11, ''),
		nullif($12, ''), nullif($13, ''), nullif($14, 0), $15, $16, $17, $18, $19, $20, $21, $22, $23, $24`
)

// recordOperation is insertOperation with the key's answer and without ON
// CONFLICT: a duplicate must abort the transaction, since the COMMIT that
// follows in the same pipeline would otherwise commit the request's job
// without it.
const recordOperation = `INSERT INTO operations (` + newOperationColumns + `, idempotency_key, fingerprint, response)
	VALUES (` + newOperationValues + `, $25, $26, $27)`

const insertOperation = `INSERT INTO operations (` + newOperationColumns + `) VALUES (` + newOperationValues + `)
	ON CONFLICT (id) DO NOTHING`

func insertOperationArgs(op *app.Operation) []any {
	var email, phone string
	if c := op.Payment.Customer; c != nil {
		email, phone = c.Email, c.Phone
	}
	return []any{op.ID, op.Kind, op.Status, op.Mode, op.Reason, op.Attempts, op.Priority, op.Payment.Amount,
		op.Payment.Currency, email, phone, op.Payment.Description, op.Payment.CallbackURL, op.JobID,
		nullJSON(op.Result), errorJSON(op.Error), op.CreatedAt, op.UpdatedAt, op.CompletedAt, op.KeyGen, op.OutcomeUnknownSince, op.AttemptedAt,
		linesJSON(op), stepsJSON(op)}
}

// UpdateOpenOperation writes op's mutable fields unless the stored
// operation is already terminal (say, cancelled by an operator while a
// worker was calling the provider); false means it was.
func UpdateOpenOperation(ctx context.Context, q Querier, op *app.Operation) (bool, error) {
	return ReviseOperation(ctx, q, op, []app.Status{app.StatusQueued, app.StatusProcessing})
}

// ReviseOperation writes op's mutable fields if the stored operation is in
// one of from; false means it was not.
func ReviseOperation(ctx context.Context, q Querier, op *app.Operation, from []app.Status) (bool, error) {
	// The cancel request is read back, never written here: an operator
	// may make it while a worker holds an older copy of the operation.
	err := q.QueryRow(ctx, `
		UPDATE operations SET status = $2, mode = $3, reason = nullif($4, ''), attempts = $5,
			job_id = nullif($6, 0), result = $7, error = $8, updated_at = $9, completed_at = $10,
			key_gen = $11, outcome_unknown_since = $12, attempted_at = $13, steps = coalesce($15, steps)
		WHERE id = $1 AND status = ANY($14)
		RETURNING cancel_requested_at`, op.ID, op.Status, op.Mode, op.Reason, op.Attempts, op.JobID,
		nullJSON(op.Result), errorJSON(op.Error), op.UpdatedAt, op.CompletedAt, op.KeyGen, op.OutcomeUnknownSince,
		op.AttemptedAt, from, stepsJSON(op)).Scan(&op.CancelRequestedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("update operation: %w", err)
	}
	return true, nil
}

// RequestCancelTx records an operator's cancel of an open operation; the
// first request's time is kept. False means the operation is not open.
func RequestCancelTx(ctx context.Context, tx pgx.Tx, id uuid.UUID, now time.Time) (bool, error) {
	tag, err := tx.Exec(ctx, `
		UPDATE operations SET cancel_requested_at = coalesce(cancel_requested_at, $2), updated_at = $2
		WHERE id = $1 AND status IN ('queued', 'processing')`, id, now)
	if err != nil {
		return false, fmt.Errorf("request cancel: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

func nullJSON(b json.RawMessage) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// linesJSON and stepsJSON are an operation's lines and steps as stored;
// nil for an operation without (a payment has neither). The lines never
// change after the order is recorded; the steps change with every call.
func linesJSON(op *app.Operation) []byte {
	if op.Lines == nil {
		return nil
	}
	b, _ := json.Marshal(op.Lines) // plain fields: cannot fail
	return b
}

func stepsJSON(op *app.Operation) []byte {
	if op.Steps == nil {
		return nil
	}
	b, _ := json.Marshal(op.Steps)
	return b
}

func errorJSON(e *app.OperationError) []byte {
	if e == nil {
		return nil
	}
	b, _ := json.Marshal(e)
	return b
}

// EndedJob is an open operation whose River job is discarded or cancelled.
type EndedJob struct {
	OperationID uuid.UUID
	JobID       int64
	JobState    string
}

// OperationsWithEndedJobs lists up to limit open operations whose job River
// discarded or cancelled, oldest change first.
func OperationsWithEndedJobs(ctx context.Context, q Querier, limit int) ([]EndedJob, error) {
	rows, err := q.Query(ctx, `
		SELECT o.id, j.id, j.state::text FROM operations o JOIN river_job j ON j.id = o.job_id
		WHERE o.status IN ('queued', 'processing') AND j.state IN ('discarded', 'cancelled')
		ORDER BY o.updated_at LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("operations with ended jobs: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[EndedJob])
}

// JobEndedTx locks a job and reports whether it is still discarded or
// cancelled.
func JobEndedTx(ctx context.Context, tx pgx.Tx, jobID int64) (bool, error) {
	var ended bool
	err := tx.QueryRow(ctx, `SELECT state IN ('discarded', 'cancelled') FROM river_job WHERE id = $1 FOR UPDATE`, jobID).Scan(&ended)
	if errors.Is(err, pgx.ErrNoRows) {
		return true, nil // deleted: nothing will work it again
	}
	if err != nil {
		return false, fmt.Errorf("lock job: %w", err)
	}
	return ended, nil
}

// unresolvedWhere is the condition of an operation an operator must look
// at: open, and either its outcome unknown since before $1 or its job ended
// (so nothing but an operator will settle it) since before $1.
const unresolvedWhere = `
	o.status IN ('queued', 'processing') AND (o.outcome_unknown_since < $1 OR (o.updated_at < $1 AND EXISTS (
		SELECT 1 FROM river_job j WHERE j.id = o.job_id AND j.state IN ('discarded', 'cancelled'))))`

// CountUnresolved counts the operations flagged for operators (see
// ListUnresolved), by the condition's two indexed halves: the partial
// index on outcome_unknown_since, and River's jobs in the two ended states
// joined to their operations. One WHERE with an OR would probe the job of
// every open operation, a million of them behind a deferred backlog.
func CountUnresolved(ctx context.Context, q Querier, before time.Time) (int, error) {
	var n int
	err := q.QueryRow(ctx, `
		SELECT count(*) FROM (
			SELECT o.id FROM operations o
			WHERE o.outcome_unknown_since < $1 AND o.outcome_unknown_since IS NOT NULL AND o.status IN ('queued', 'processing')
			UNION
			SELECT o.id FROM river_job j JOIN operations o ON o.job_id = j.id
			WHERE j.state IN ('discarded', 'cancelled') AND o.status IN ('queued', 'processing') AND o.updated_at < $1
		) u`, before).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count unresolved: %w", err)
	}
	return n, nil
}

// ListUnresolved returns up to limit operations still unresolved since
// before a moment, oldest first: those RECONCILE_AFTER flags for an
// operator.
func ListUnresolved(ctx context.Context, q Querier, before time.Time, limit int) ([]*app.Operation, error) {
	ops, err := queryOperations(ctx, q, `SELECT `+operationColumns+` FROM operations o WHERE`+unresolvedWhere+`
		ORDER BY coalesce(o.outcome_unknown_since, o.updated_at) LIMIT $2`, before, limit)
	if err != nil {
		return nil, fmt.Errorf("list unresolved: %w", err)
	}
	return ops, nil
}

// queryOperations runs a query of operationColumns and scans every row.
func queryOperations(ctx context.Context, q Querier, sql string, args ...any) ([]*app.Operation, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*app.Operation, error) { return scanOperation(r) })
}
