package db

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// OperationChannel is the NOTIFY channel on which a status change of an
// operation is announced (by trigger), with its id as payload.
const OperationChannel = "spillway_operations"

// OperationEvent is one recorded status change.
type OperationEvent struct {
	ID       int64     `json:"-"`
	Status   string    `json:"status"`
	Attempts int       `json:"attempts"`
	At       time.Time `json:"at"`
}

// OperationEvents returns an operation's events after the given event id,
// oldest first.
func OperationEvents(ctx context.Context, q Querier, opID uuid.UUID, after int64) ([]OperationEvent, error) {
	rows, err := q.Query(ctx, `
		SELECT id, status, attempts, at FROM operation_events
		WHERE operation_id = $1 AND id > $2 ORDER BY id LIMIT 100`, opID, after)
	if err != nil {
		return nil, fmt.Errorf("operation events: %w", err)
	}
	defer rows.Close()
	var evs []OperationEvent
	for rows.Next() {
		var e OperationEvent
		if err := rows.Scan(&e.ID, &e.Status, &e.Attempts, &e.At); err != nil {
			return nil, err
		}
		evs = append(evs, e)
	}
	return evs, rows.Err()
}
