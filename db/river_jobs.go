package db

import (
	"context"
	"fmt"
)

// MakeDueJobsAvailable does for one queue what River's scheduler does on
// its next run: scheduled and retryable jobs whose time has come become
// available. River (checked against v0.51.1) fetches only `available`
// jobs, by (priority, scheduled_at, id), and its scheduler runs every 5 s;
// doing its step early changes no job's priority, time or attempts.
func MakeDueJobsAvailable(ctx context.Context, q Querier, queue string) error {
	_, err := q.Exec(ctx, `
		UPDATE river_job SET state = 'available'
		WHERE queue = $1 AND state IN ('scheduled', 'retryable') AND scheduled_at <= now()`, queue)
	if err != nil {
		return fmt.Errorf("make due jobs available: %w", err)
	}
	return nil
}
