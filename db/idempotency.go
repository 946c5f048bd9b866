package db

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
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

// LookupKeyTx returns the record for a key (nil if none) and whether the
// operation opID exists, in one round trip.
func (s *Store) LookupKeyTx(ctx context.Context, tx pgx.Tx, scope, key string, opID uuid.UUID) (*app.IdempotencyRecord, bool, error) {
	r := app.IdempotencyRecord{Scope: scope, Key: key}
	var (
		found, exists bool
		opIDs         *uuid.UUID
		createdAt     *time.Time
	)
	err := tx.QueryRow(ctx, `
		SELECT k.fingerprint, k.operation_id, k.response, k.created_at, k.key IS NOT NULL,
			EXISTS (SELECT 1 FROM operations WHERE id = $3)
		FROM (SELECT 1) AS one
		LEFT JOIN idempotency_keys k ON k.scope = $1 AND k.key = $2`, scope, key, opID).
		Scan(&r.Fingerprint, &opIDs, &r.Response, &createdAt, &found, &exists)
	if err != nil {
		return nil, false, fmt.Errorf("look up idempotency key: %w", err)
	}
	if !found {
		return nil, exists, nil
	}
	r.OperationID, r.CreatedAt = *opIDs, *createdAt
	return &r, exists, nil
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
