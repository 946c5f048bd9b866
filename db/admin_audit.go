package db

import (
	"context"
	"fmt"

	"github.com/spillway/spillway/app"
)

// AuditEntry is one admin action in the audit log (app owns the type).
type AuditEntry = app.AuditEntry

// InsertAudit appends an entry; pass the action's own transaction so the
// entry exists exactly when the change does.
func InsertAudit(ctx context.Context, q Querier, e AuditEntry) error {
	var actor *int64
	if e.ActorID != 0 {
		actor = &e.ActorID
	}
	_, err := q.Exec(ctx, `
		INSERT INTO admin_audit_log (at, actor_id, actor_email, action, target, before, after, detail, ip, request_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		e.At, actor, e.ActorEmail, e.Action, e.Target, nullJSON(e.Before), nullJSON(e.After), e.Detail, e.IP, e.RequestID)
	if err != nil {
		return fmt.Errorf("insert audit entry: %w", err)
	}
	return nil
}

// ListAudit returns up to limit entries older than beforeID (0: newest
// first from the top), newest first.
func ListAudit(ctx context.Context, q Querier, beforeID int64, limit int) ([]AuditEntry, error) {
	if beforeID <= 0 {
		beforeID = 1<<63 - 1
	}
	rows, err := q.Query(ctx, `
		SELECT id, at, coalesce(actor_id, 0), actor_email, action, target, before, after, detail, ip, request_id
		FROM admin_audit_log WHERE id < $1 ORDER BY id DESC LIMIT $2`, beforeID, limit)
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var before, after []byte
		if err := rows.Scan(&e.ID, &e.At, &e.ActorID, &e.ActorEmail, &e.Action, &e.Target, &before, &after,
			&e.Detail, &e.IP, &e.RequestID); err != nil {
			return nil, fmt.Errorf("list audit: %w", err)
		}
		e.Before, e.After = before, after
		out = append(out, e)
	}
	return out, rows.Err()
}
