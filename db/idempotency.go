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
// key names without waiting and reads the key's answer, kept on that
// operation's row, in one round trip (a pipelined batch; each statement
// still gets its own snapshot, so the read sees whatever the previous
// holder of the lock committed). On a pipelined transaction BEGIN rides in
// the same round trip. An uncommitted operation is invisible to other
// transactions, so this lock is how a second request learns the first is
// still in flight (409) instead of blocking on the primary key for the
// whole deadline. The lock is on the operation id, which is derived from
// scope and key alone, so the orphan sweep can take the same lock knowing
// only a charge's reference. A hash collision only yields a spurious 409,
// never a wrong replay.
func ClaimKeyTx(ctx context.Context, tx pgx.Tx, scope, key string, opID uuid.UUID) (app.KeyClaim, error) {
	var (
		claim     app.KeyClaim
		r         = app.IdempotencyRecord{Scope: scope, Key: key, OperationID: opID}
		createdAt *time.Time
	)
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_try_advisory_xact_lock(`+operationLockKey+`)`, opID).
		QueryRow(func(row pgx.Row) error { return row.Scan(&claim.Locked) })
	// The read runs either way but counts only when the lock was taken:
	// while another request holds the key its operation is not committed.
	b.Queue(`
		SELECT o.fingerprint, o.response, o.created_at,
			(SELECT count(*) FROM orphan_charges WHERE reference = $1::text AND status = 'refunded')
		FROM (SELECT 1) AS one
		LEFT JOIN operations o ON o.id = $1`, opID).
		QueryRow(func(row pgx.Row) error {
			return row.Scan(&r.Fingerprint, &r.Response, &createdAt, &claim.RefundedOrphans)
		})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return claim, fmt.Errorf("claim idempotency key: %w", err)
	}
	if !claim.Locked {
		return app.KeyClaim{}, nil
	}
	switch {
	case createdAt == nil:
	case r.Response == nil:
		// An operation without an answer to replay: one not made by a
		// request, or one whose answer expired before answers were kept
		// on the operation (migration 00028).
		claim.OperationExists = true
	default:
		r.CreatedAt = *createdAt
		claim.Record = &r
	}
	return claim, nil
}

// operationLockKey is the advisory lock of the operation whose id is $1:
// held by the request that may create it, and by the orphan sweep while it
// decides about a charge made for it.
const operationLockKey = `hashtextextended($1::uuid::text, 0)`
