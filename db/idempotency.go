package db

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/spillway/spillway/app"
)

// TryLockKeyTx takes a transaction-scoped advisory lock on the key without
// waiting. Uncommitted idempotency rows are invisible to other transactions,
// so this lock is how a second request learns the first is still in flight
// (409) instead of blocking on the unique index for the whole deadline.
// A hash collision only yields a spurious 409, never a wrong replay.
func (s *Store) TryLockKeyTx(ctx context.Context, tx pgx.Tx, scope, key string) (bool, error) {
	var ok bool
	err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock(hashtextextended($1 || ':' || $2, 0))`, scope, key).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("advisory lock: %w", err)
	}
	return ok, nil
}

// GetIdempotencyTx returns the record for a key, or nil if there is none.
func (s *Store) GetIdempotencyTx(ctx context.Context, tx pgx.Tx, scope, key string) (*app.IdempotencyRecord, error) {
	r := app.IdempotencyRecord{Scope: scope, Key: key}
	err := tx.QueryRow(ctx, `
		SELECT fingerprint, operation_id, response, created_at
		FROM idempotency_keys WHERE scope = $1 AND key = $2`, scope, key).
		Scan(&r.Fingerprint, &r.OperationID, &r.Response, &r.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get idempotency key: %w", err)
	}
	return &r, nil
}

// InsertIdempotencyTx records the first answer for a key.
func (s *Store) InsertIdempotencyTx(ctx context.Context, tx pgx.Tx, r *app.IdempotencyRecord) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO idempotency_keys (scope, key, fingerprint, operation_id, response, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`,
		r.Scope, r.Key, r.Fingerprint, r.OperationID, []byte(r.Response), r.CreatedAt)
	if err != nil {
		return fmt.Errorf("insert idempotency key: %w", err)
	}
	return nil
}
