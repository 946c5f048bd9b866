package db

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spillway/spillway/app"
)

const operationColumns = `id, kind, status, mode, coalesce(reason, ''), attempts, priority, amount, currency,
	coalesce(customer_email, ''), coalesce(customer_phone, ''), coalesce(description, ''), coalesce(callback_url, ''),
	coalesce(job_id, 0), result, error, created_at, updated_at, completed_at`

func scanOperation(row pgx.Row) (*app.Operation, error) {
	var (
		op           app.Operation
		email, phone string
		result, oerr []byte
	)
	err := row.Scan(&op.ID, &op.Kind, &op.Status, &op.Mode, &op.Reason, &op.Attempts, &op.Priority,
		&op.Payment.Amount, &op.Payment.Currency, &email, &phone, &op.Payment.Description, &op.Payment.CallbackURL,
		&op.JobID, &result, &oerr, &op.CreatedAt, &op.UpdatedAt, &op.CompletedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
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
	return &op, nil
}

// GetOperation reads one operation; ErrNotFound if there is none.
func GetOperation(ctx context.Context, q Querier, id uuid.UUID) (*app.Operation, error) {
	op, err := scanOperation(q.QueryRow(ctx, `SELECT `+operationColumns+` FROM operations WHERE id = $1`, id))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("get operation: %w", err)
	}
	return op, err
}

// GetOperationTx reads one operation inside tx.
func (s *Store) GetOperationTx(ctx context.Context, tx pgx.Tx, id uuid.UUID) (*app.Operation, error) {
	return GetOperation(ctx, tx, id)
}

// InsertOperationTx inserts op; false means an operation with its id exists.
func (s *Store) InsertOperationTx(ctx context.Context, tx pgx.Tx, op *app.Operation) (bool, error) {
	tag, err := tx.Exec(ctx, insertOperation, insertOperationArgs(op)...)
	if err != nil {
		return false, fmt.Errorf("insert operation: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// RecordTx writes a new operation and its key's first answer in one round
// trip (a pipelined batch; the statements still run in order). It fails if
// the operation already exists: a request is never acknowledged without
// its own row.
func (s *Store) RecordTx(ctx context.Context, tx pgx.Tx, op *app.Operation, rec *app.IdempotencyRecord) error {
	b := &pgx.Batch{}
	b.Queue(insertOperation, insertOperationArgs(op)...).Exec(func(tag pgconn.CommandTag) error {
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("operation %s already exists", op.ID)
		}
		return nil
	})
	b.Queue(insertIdempotency, rec.Scope, rec.Key, rec.Fingerprint, rec.OperationID, []byte(rec.Response), rec.CreatedAt)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("record operation: %w", err)
	}
	return nil
}

const insertOperation = `
	INSERT INTO operations (id, kind, status, mode, reason, attempts, priority, amount, currency,
		customer_email, customer_phone, description, callback_url, job_id, result, error,
		created_at, updated_at, completed_at)
	VALUES ($1, $2, $3, $4, nullif($5, ''), $6, $7, $8, $9, nullif($10, ''), nullif($11, ''),
		nullif($12, ''), nullif($13, ''), nullif($14, 0), $15, $16, $17, $18, $19)
	ON CONFLICT (id) DO NOTHING`

func insertOperationArgs(op *app.Operation) []any {
	var email, phone string
	if c := op.Payment.Customer; c != nil {
		email, phone = c.Email, c.Phone
	}
	return []any{op.ID, op.Kind, op.Status, op.Mode, op.Reason, op.Attempts, op.Priority, op.Payment.Amount,
		op.Payment.Currency, email, phone, op.Payment.Description, op.Payment.CallbackURL, op.JobID,
		nullJSON(op.Result), errorJSON(op.Error), op.CreatedAt, op.UpdatedAt, op.CompletedAt}
}

// UpdateOpenOperationTx writes op's mutable fields unless the stored
// operation is already terminal (say, cancelled by an operator while a
// worker was calling the provider); false means it was.
func UpdateOpenOperationTx(ctx context.Context, tx pgx.Tx, op *app.Operation) (bool, error) {
	tag, err := tx.Exec(ctx, `
		UPDATE operations SET status = $2, mode = $3, reason = nullif($4, ''), attempts = $5,
			job_id = nullif($6, 0), result = $7, error = $8, updated_at = $9, completed_at = $10
		WHERE id = $1 AND status IN ('queued', 'processing')`, op.ID, op.Status, op.Mode, op.Reason, op.Attempts, op.JobID,
		nullJSON(op.Result), errorJSON(op.Error), op.UpdatedAt, op.CompletedAt)
	if err != nil {
		return false, fmt.Errorf("update operation: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// StartAttempt marks an open operation as processing and counts the attempt,
// committed before the provider call so a crash mid-call still shows it.
// It returns ErrNotFound if the operation is gone and (op, false) if it is
// already terminal.
//
// The marker is committed without waiting for the disk: if a crash loses
// it, the operation merely still reads queued and the attempt goes
// uncounted, while the outcome that follows is written durably. That saves
// a disk flush per job, which is much of a drain's cost.
func StartAttempt(ctx context.Context, pool *pgxpool.Pool, id uuid.UUID) (*app.Operation, bool, error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return nil, false, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	var op *app.Operation
	b := &pgx.Batch{}
	b.Queue(`SET LOCAL synchronous_commit TO off`)
	b.Queue(`
		UPDATE operations SET status = 'processing', attempts = attempts + 1, updated_at = now()
		WHERE id = $1 AND status IN ('queued', 'processing')
		RETURNING `+operationColumns, id).QueryRow(func(row pgx.Row) error {
		var err error
		op, err = scanOperation(row)
		return err
	})
	err = tx.SendBatch(ctx, b).Close()
	if err == nil {
		err = tx.Commit(ctx)
	}
	if errors.Is(err, ErrNotFound) {
		op, err := GetOperation(ctx, pool, id)
		if err != nil {
			return nil, false, err
		}
		return op, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("start attempt: %w", err)
	}
	return op, true, nil
}

func nullJSON(b json.RawMessage) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func errorJSON(e *app.OperationError) []byte {
	if e == nil {
		return nil
	}
	b, _ := json.Marshal(e)
	return b
}
