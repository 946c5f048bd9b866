package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/spillway/spillway/app"
)

// OrphanWatermark is how far the named sweep has judged charges; ok is
// false before its first run.
func OrphanWatermark(ctx context.Context, q Querier, name string) (t time.Time, ok bool, err error) {
	err = q.QueryRow(ctx, `SELECT swept_until FROM orphan_sweeps WHERE name = $1`, name).Scan(&t)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return t, false, fmt.Errorf("orphan watermark: %w", err)
	}
	return t, true, nil
}

// SetOrphanWatermark records how far the named sweep has judged charges.
func SetOrphanWatermark(ctx context.Context, q Querier, name string, t, now time.Time) error {
	_, err := q.Exec(ctx, `
		INSERT INTO orphan_sweeps (name, swept_until, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET swept_until = greatest(orphan_sweeps.swept_until, excluded.swept_until),
			updated_at = excluded.updated_at`, name, t, now)
	if err != nil {
		return fmt.Errorf("set orphan watermark: %w", err)
	}
	return nil
}

// GetOperations reads the operations with the given ids that exist.
func GetOperations(ctx context.Context, q Querier, ids []uuid.UUID) (map[uuid.UUID]*app.Operation, error) {
	ops, err := queryOperations(ctx, q, `SELECT `+operationColumns+` FROM operations WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("get operations: %w", err)
	}
	out := make(map[uuid.UUID]*app.Operation, len(ops))
	for _, op := range ops {
		out[op.ID] = op
	}
	return out, nil
}

// InsertOrphan records a charge found with no operation of ours; false
// means it was known already.
func InsertOrphan(ctx context.Context, q Querier, o app.OrphanCharge) (bool, error) {
	tag, err := q.Exec(ctx, `
		INSERT INTO orphan_charges (charge_id, reference, amount, currency, status, created_at, found_at)
		VALUES ($1, $2, $3, $4, 'open', $5, $6) ON CONFLICT (charge_id) DO NOTHING`,
		o.ChargeID, app.ClipText(o.Reference, 255), o.Amount, app.ClipText(o.Currency, 16), o.CreatedAt, o.FoundAt)
	if err != nil {
		return false, fmt.Errorf("insert orphan charge: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

const orphanColumns = `charge_id, reference, amount, currency, status, created_at, found_at, resolved_at,
	coalesce(refund_id, ''), coalesce(error, '')`

func scanOrphan(row pgx.Row) (app.OrphanCharge, error) {
	var o app.OrphanCharge
	err := row.Scan(&o.ChargeID, &o.Reference, &o.Amount, &o.Currency, &o.Status, &o.CreatedAt, &o.FoundAt,
		&o.ResolvedAt, &o.RefundID, &o.Error)
	return o, err
}

// ListOrphans returns up to limit orphan charges, those in status when it
// is set, newest found first.
func ListOrphans(ctx context.Context, q Querier, status app.OrphanStatus, limit int) ([]app.OrphanCharge, error) {
	rows, err := q.Query(ctx, `SELECT `+orphanColumns+` FROM orphan_charges
		WHERE $1 = '' OR status = $1 ORDER BY found_at DESC, charge_id LIMIT $2`, status, limit)
	if err != nil {
		return nil, fmt.Errorf("list orphan charges: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (app.OrphanCharge, error) { return scanOrphan(r) })
}

// CountOrphans counts the orphan charges in status.
func CountOrphans(ctx context.Context, q Querier, status app.OrphanStatus) (int, error) {
	var n int
	if err := q.QueryRow(ctx, `SELECT count(*) FROM orphan_charges WHERE status = $1`, status).Scan(&n); err != nil {
		return 0, fmt.Errorf("count orphan charges: %w", err)
	}
	return n, nil
}

// LockOrphanTx locks an open orphan charge and the operation its
// reference would be, without waiting: a request that could create that
// operation holds the same lock (see ClaimKeyTx) until it commits. False
// means either is busy, or the charge is no longer open.
func LockOrphanTx(ctx context.Context, tx pgx.Tx, chargeID string, opID *uuid.UUID) (bool, error) {
	if opID != nil {
		var locked bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock(`+operationLockKey+`)`, *opID).Scan(&locked); err != nil || !locked {
			return false, err
		}
	}
	var open bool
	err := tx.QueryRow(ctx, `SELECT status = 'open' FROM orphan_charges WHERE charge_id = $1 FOR UPDATE SKIP LOCKED`, chargeID).Scan(&open)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return open, err
}

// ResolveOrphanTx records what became of an orphan charge; an error text
// with status open records a refund that failed, to be tried again.
func ResolveOrphanTx(ctx context.Context, tx pgx.Tx, chargeID string, status app.OrphanStatus, refundID, errText string, now time.Time) error {
	var resolved *time.Time
	if status != app.OrphanOpen {
		resolved = &now
	}
	_, err := tx.Exec(ctx, `UPDATE orphan_charges SET status = $2, refund_id = nullif($3, ''), error = nullif($4, ''),
		resolved_at = $5 WHERE charge_id = $1`, chargeID, status, refundID, app.ClipText(errText, 1000), resolved)
	if err != nil {
		return fmt.Errorf("resolve orphan charge: %w", err)
	}
	return nil
}
