package db

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spillway/spillway/app"
)

// AwaitingOperator is what waits for a person, as /metrics reports it.
type AwaitingOperator struct {
	// Unresolved counts open operations whose outcome has been unknown (or
	// whose job ended) since before the moment asked about.
	Unresolved int
	// Orphans counts orphan charges still open.
	Orphans int
}

// metricsStatementTimeout bounds each query a scrape runs: a scrape must
// not add load to a database already struggling.
const metricsStatementTimeout = 2 * time.Second

// ReadAwaitingOperator counts, in one read-only transaction whose
// statements may each take at most metricsStatementTimeout (ReadWithin),
// what an operator must settle: the overview's two alerts.
func ReadAwaitingOperator(ctx context.Context, pool *pgxpool.Pool, before time.Time) (AwaitingOperator, error) {
	var out AwaitingOperator
	err := ReadWithin(ctx, pool, metricsStatementTimeout, func(q Querier) error {
		var err error
		if out.Unresolved, err = CountUnresolved(ctx, q, before); err != nil {
			return err
		}
		out.Orphans, err = CountOrphans(ctx, q, app.OrphanOpen)
		return err
	})
	if err != nil {
		return AwaitingOperator{}, fmt.Errorf("read what awaits an operator: %w", err)
	}
	return out, nil
}
