package db

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/spillway/spillway/app"
)

// OperationChannel is the NOTIFY channel on which a status change of an
// operation is announced (by trigger), with its id as payload.
const OperationChannel = "spillway_operations"

// OperationEvents returns an operation's events after the given event id,
// oldest first.
func OperationEvents(ctx context.Context, q Querier, opID uuid.UUID, after int64) ([]app.OperationEvent, error) {
	rows, err := q.Query(ctx, `
		SELECT id, status, attempts, at FROM operation_events
		WHERE operation_id = $1 AND id > $2 ORDER BY id LIMIT 100`, opID, after)
	if err != nil {
		return nil, fmt.Errorf("operation events: %w", err)
	}
	defer rows.Close()
	var evs []app.OperationEvent
	for rows.Next() {
		var e app.OperationEvent
		if err := rows.Scan(&e.ID, &e.Status, &e.Attempts, &e.At); err != nil {
			return nil, err
		}
		evs = append(evs, e)
	}
	return evs, rows.Err()
}

// WatchOperation registers (or refreshes) this instance's interest in an
// operation's changes until ttl from now; only watched operations are
// announced with NOTIFY.
func WatchOperation(ctx context.Context, q Querier, opID uuid.UUID, instance string, ttl time.Duration) error {
	_, err := q.Exec(ctx, `
		INSERT INTO operation_watchers (operation_id, instance, expires_at)
		VALUES ($1, $2, now() + $3 * interval '1 millisecond')
		ON CONFLICT (operation_id, instance) DO UPDATE SET expires_at = excluded.expires_at`,
		opID, instance, ttl.Milliseconds())
	if err != nil {
		return fmt.Errorf("watch operation: %w", err)
	}
	return nil
}

// UnwatchOperation drops this instance's interest, and any expired rows.
func UnwatchOperation(ctx context.Context, q Querier, opID uuid.UUID, instance string) error {
	_, err := q.Exec(ctx, `DELETE FROM operation_watchers WHERE (operation_id = $1 AND instance = $2) OR expires_at < now()`, opID, instance)
	if err != nil {
		return fmt.Errorf("unwatch operation: %w", err)
	}
	return nil
}
