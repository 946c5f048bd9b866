package db

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/spillway/spillway/app"
)

// revision is one operation's mutable fields as UpdateOpenOperations
// sends them: the same columns ReviseOperation writes, as one JSON
// record each, so a batch of any size is one statement with one
// parameter.
type revision struct {
	ID                  uuid.UUID           `json:"id"`
	Status              app.Status          `json:"status"`
	Mode                app.Mode            `json:"mode"`
	Reason              string              `json:"reason"`
	Attempts            int                 `json:"attempts"`
	JobID               int64               `json:"job_id"`
	Result              json.RawMessage     `json:"result"`
	Error               *app.OperationError `json:"error"`
	UpdatedAt           time.Time           `json:"updated_at"`
	CompletedAt         *time.Time          `json:"completed_at"`
	KeyGen              int                 `json:"key_gen"`
	OutcomeUnknownSince *time.Time          `json:"outcome_unknown_since"`
	AttemptedAt         *time.Time          `json:"attempted_at"`
	Steps               json.RawMessage     `json:"steps"`
}

// UpdateOpenOperations writes each of ops' mutable fields, as
// UpdateOpenOperation does one's, in one statement: updated[i] is false
// when ops[i] was already terminal (an operator ended it), and true ones
// have their cancel request read back. The ids must be distinct (an
// UPDATE … FROM touches a row once, whichever record matched it).
func UpdateOpenOperations(ctx context.Context, q Querier, ops []*app.Operation) ([]bool, error) {
	// The ids again as an array give the planner the primary key to find
	// the rows by: it cannot see into the JSON, and for the hundred rows
	// it guesses a set function returns it may scan the whole table.
	recs, ids := make([]revision, len(ops)), make([]uuid.UUID, len(ops))
	for i, op := range ops {
		ids[i] = op.ID
		recs[i] = revision{ID: op.ID, Status: op.Status, Mode: op.Mode, Reason: string(op.Reason), Attempts: op.Attempts,
			JobID: op.JobID, Result: nullJSON(op.Result), Error: op.Error, UpdatedAt: op.UpdatedAt, CompletedAt: op.CompletedAt,
			KeyGen: op.KeyGen, OutcomeUnknownSince: op.OutcomeUnknownSince, AttemptedAt: op.AttemptedAt, Steps: stepsJSON(op)}
	}
	batch, err := json.Marshal(recs)
	if err != nil {
		return nil, fmt.Errorf("update operations: %w", err)
	}
	rows, err := q.Query(ctx, `
		UPDATE operations o SET status = v.status, mode = v.mode, reason = nullif(v.reason, ''), attempts = v.attempts,
			job_id = nullif(v.job_id, 0), result = v.result, error = v.error, updated_at = v.updated_at,
			completed_at = v.completed_at, key_gen = v.key_gen, outcome_unknown_since = v.outcome_unknown_since,
			attempted_at = v.attempted_at, steps = coalesce(v.steps, o.steps)
		FROM jsonb_to_recordset($1::jsonb) AS v(id uuid, status text, mode text, reason text, attempts integer,
			job_id bigint, result jsonb, error jsonb, updated_at timestamptz, completed_at timestamptz, key_gen integer,
			outcome_unknown_since timestamptz, attempted_at timestamptz, steps jsonb)
		WHERE o.id = ANY($2) AND o.id = v.id AND o.status IN ('queued', 'processing')
		RETURNING o.id, o.cancel_requested_at`, string(batch), ids)
	if err != nil {
		return nil, fmt.Errorf("update operations: %w", err)
	}
	defer rows.Close()
	at := make(map[uuid.UUID]int, len(ops))
	for i, op := range ops {
		at[op.ID] = i
	}
	updated := make([]bool, len(ops))
	for rows.Next() {
		var (
			id        uuid.UUID
			requested *time.Time
		)
		if err := rows.Scan(&id, &requested); err != nil {
			return nil, fmt.Errorf("update operations: %w", err)
		}
		if i, ok := at[id]; ok {
			updated[i] = true
			ops[i].CancelRequestedAt = requested
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("update operations: %w", err)
	}
	return updated, nil
}
