package db

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/spillway/spillway/app"
)

// ClaimKeyTx takes a transaction-scoped advisory lock on the operation the
// key names without waiting and reads the key's record, in one round trip
// (a pipelined batch; each statement still gets its own snapshot, so the
// read sees whatever the previous holder of the lock committed).
// Uncommitted idempotency rows are invisible to other transactions, so
// this lock is how a second request learns the first is still in flight
// (409) instead of blocking on the unique index for the whole deadline.
// The lock is on the operation id, which is derived from scope and key
// alone, so the orphan sweep can take the same lock knowing only a
// charge's reference. A hash collision only yields a spurious 409, never
// a wrong replay.
func ClaimKeyTx(ctx context.Context, tx pgx.Tx, scope, key string, opID uuid.UUID) (app.KeyClaim, error) {
	var (
		claim     app.KeyClaim
		r         = app.IdempotencyRecord{Scope: scope, Key: key}
		found     bool
		opIDs     *uuid.UUID
		createdAt *time.Time
	)
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_try_advisory_xact_lock(`+operationLockKey+`)`, opID).
		QueryRow(func(row pgx.Row) error { return row.Scan(&claim.Locked) })
	// The read runs either way but counts only when the lock was taken:
	// while another request holds the key its answer is not committed yet.
	b.Queue(`
		SELECT k.fingerprint, k.operation_id, k.response, k.created_at, k.key IS NOT NULL,
			EXISTS (SELECT 1 FROM operations WHERE id = $3),
			(SELECT count(*) FROM orphan_charges WHERE reference = $3::text AND status = 'refunded')
		FROM (SELECT 1) AS one
		LEFT JOIN idempotency_keys k ON k.scope = $1 AND k.key = $2`, scope, key, opID).
		QueryRow(func(row pgx.Row) error {
			return row.Scan(&r.Fingerprint, &opIDs, &r.Response, &createdAt, &found, &claim.OperationExists, &claim.RefundedOrphans)
		})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return claim, fmt.Errorf("claim idempotency key: %w", err)
	}
	if !claim.Locked {
		return app.KeyClaim{}, nil
	}
	if found {
		r.OperationID, r.CreatedAt = *opIDs, *createdAt
		claim.Record = &r
	}
	return claim, nil
}

// operationLockKey is the advisory lock of the operation whose id is $1:
// held by the request that may create it, and by the orphan sweep while it
// decides about a charge made for it.
const operationLockKey = `hashtextextended($1::uuid::text, 0)`

const insertIdempotency = `
	INSERT INTO idempotency_keys (scope, key, fingerprint, operation_id, response, created_at)
	VALUES ($1, $2, $3, $4, $5, $6)`

// ExpireIdempotencyKeys deletes up to limit records created before cutoff
// and says how many it deleted; callers repeat until fewer than limit go,
// so a large backlog never holds long locks.
func ExpireIdempotencyKeys(ctx context.Context, q Querier, cutoff time.Time, limit int) (int, error) {
	tag, err := q.Exec(ctx, `
		DELETE FROM idempotency_keys WHERE ctid IN (
			SELECT ctid FROM idempotency_keys WHERE created_at < $1 LIMIT $2)`, cutoff, limit)
	if err != nil {
		return 0, fmt.Errorf("expire idempotency keys: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
