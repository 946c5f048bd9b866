package db

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spillway/spillway/app"
)

// GetCachedStock reads the stored stock of skus, by SKU; a SKU never read
// live (no row, or only a refresh claim) is absent.
func GetCachedStock(ctx context.Context, q Querier, skus []string) (map[string]app.CachedStock, error) {
	rows, err := q.Query(ctx, `SELECT sku, available, as_of FROM stock_cache
		WHERE sku = ANY($1) AND as_of IS NOT NULL`, skus)
	if err != nil {
		return nil, fmt.Errorf("get cached stock: %w", err)
	}
	cs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[app.CachedStock])
	if err != nil {
		return nil, fmt.Errorf("get cached stock: %w", err)
	}
	m := make(map[string]app.CachedStock, len(cs))
	for _, c := range cs {
		m[c.SKU] = c
	}
	return m, nil
}

// PutCachedStock stores values read live. A value never replaces a newer
// one: two instances' reads may land out of order.
func PutCachedStock(ctx context.Context, q Querier, values []app.CachedStock) error {
	skus := make([]string, len(values))
	avail := make([]int32, len(values))
	asOf := make([]time.Time, len(values))
	for i, v := range values {
		skus[i], avail[i], asOf[i] = v.SKU, int32(v.Available), v.AsOf
	}
	_, err := q.Exec(ctx, `INSERT INTO stock_cache (sku, available, as_of)
		SELECT * FROM unnest($1::text[], $2::int[], $3::timestamptz[])
		ON CONFLICT (sku) DO UPDATE SET available = EXCLUDED.available, as_of = EXCLUDED.as_of
		WHERE stock_cache.as_of IS NULL OR stock_cache.as_of <= EXCLUDED.as_of`, skus, avail, asOf)
	if err != nil {
		return fmt.Errorf("put cached stock: %w", err)
	}
	return nil
}

// ClaimStockRefresh claims sku's refresh for token until until, unless a
// claim that has not lapsed at now holds it, and reports whether it did.
// One statement, so two instances claiming at once cannot both win.
func ClaimStockRefresh(ctx context.Context, q Querier, sku, token string, now, until time.Time) (bool, error) {
	tag, err := q.Exec(ctx, `INSERT INTO stock_cache (sku, refresh_token, refresh_until) VALUES ($1, $2, $3)
		ON CONFLICT (sku) DO UPDATE SET refresh_token = EXCLUDED.refresh_token, refresh_until = EXCLUDED.refresh_until
		WHERE stock_cache.refresh_until IS NULL OR stock_cache.refresh_until <= $4`, sku, token, until, now)
	if err != nil {
		return false, fmt.Errorf("claim stock refresh %s: %w", sku, err)
	}
	return tag.RowsAffected() == 1, nil
}

// ReleaseStockRefresh frees sku's refresh claim if token still holds it.
func ReleaseStockRefresh(ctx context.Context, q Querier, sku, token string) error {
	_, err := q.Exec(ctx, `UPDATE stock_cache SET refresh_token = NULL, refresh_until = NULL
		WHERE sku = $1 AND refresh_token = $2`, sku, token)
	if err != nil {
		return fmt.Errorf("release stock refresh %s: %w", sku, err)
	}
	return nil
}
