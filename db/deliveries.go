package db

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/spillway/spillway/app"
)

// DeliveryRecord is one attempt to notify a client on one channel, as the
// delivery worker writes it.
type DeliveryRecord struct {
	OperationID  uuid.UUID
	Channel      string
	Target       string
	Attempt      int
	Outcome      string // sent | failed | disabled | skipped
	ResponseCode int
	Error        string
}

const insertDelivery = `
	INSERT INTO deliveries (operation_id, channel, target, attempt, outcome, response_code, error)
	VALUES ($1, $2, $3, $4, $5, nullif($6, 0), nullif($7, ''))`

// InsertDelivery records an attempt.
func InsertDelivery(ctx context.Context, q Querier, d DeliveryRecord) error {
	if _, err := q.Exec(ctx, insertDelivery, d.OperationID, d.Channel, d.Target, d.Attempt, d.Outcome, d.ResponseCode, app.ClipText(d.Error, 1000)); err != nil {
		return fmt.Errorf("record delivery: %w", err)
	}
	return nil
}

// TargetDisabled reports whether target asked, in answer to an earlier
// delivery of this operation on channel, to be sent nothing more (a
// webhook endpoint's 410 Gone, recorded as outcome disabled). The
// delivery worker asks before every send, so an operation's later endings
// (after an operator's retry) are not pushed at an endpoint that is gone.
func TargetDisabled(ctx context.Context, q Querier, opID uuid.UUID, channel, target string) (bool, error) {
	var disabled bool
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM deliveries
		WHERE operation_id = $1 AND channel = $2 AND target = $3 AND outcome = 'disabled')`,
		opID, channel, target).Scan(&disabled)
	if err != nil {
		return false, fmt.Errorf("read disabled deliveries: %w", err)
	}
	return disabled, nil
}
