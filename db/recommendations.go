package db

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// alsoBoughtTimeout bounds the "customers also bought" query: it scans
// recent orders, and it is the first thing the shop gives up under
// distress (the recommendations feature), so it must never hold a
// connection long.
const alsoBoughtTimeout = 150 * time.Millisecond

// AlsoBought returns up to limit SKUs most often ordered together with
// sku in orders that succeeded in the last 30 days, most frequent first.
func (s *Store) AlsoBought(ctx context.Context, sku string, limit int) ([]string, error) {
	var out []string
	err := pgx.BeginTxFunc(ctx, s.Pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, fmt.Sprintf(`SET LOCAL statement_timeout = %d`, alsoBoughtTimeout.Milliseconds())); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `
			SELECT other.line->>'sku' AS sku
			FROM operations o
			CROSS JOIN LATERAL jsonb_array_elements(o.lines) AS this(line)
			CROSS JOIN LATERAL jsonb_array_elements(o.lines) AS other(line)
			WHERE o.kind = 'order' AND o.status = 'succeeded' AND o.created_at > now() - interval '30 days'
				AND this.line->>'sku' = $1 AND other.line->>'sku' <> $1
			GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT $2`, sku, limit)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("also bought with %s: %w", sku, err)
	}
	return out, nil
}
