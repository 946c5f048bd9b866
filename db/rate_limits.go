package db

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TakeTokens takes up to want tokens from the named token bucket in the
// rate_limits table, which every instance draws from. The bucket row is locked only
// for this short transaction; time is the database's, so instances with
// skewed clocks still share one rate.
func TakeTokens(ctx context.Context, pool *pgxpool.Pool, name string, rate float64, burst, want int) (int, time.Duration, error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	var tokens, elapsed float64
	err = tx.QueryRow(ctx, `
		SELECT tokens, extract(epoch FROM clock_timestamp() - updated_at)
		FROM rate_limits WHERE name = $1 FOR UPDATE`, name).Scan(&tokens, &elapsed)
	if errors.Is(err, pgx.ErrNoRows) {
		tokens, elapsed = float64(burst), 0
		if _, err := tx.Exec(ctx, `INSERT INTO rate_limits (name, tokens, updated_at) VALUES ($1, $2, clock_timestamp())
			ON CONFLICT (name) DO NOTHING`, name, tokens); err != nil {
			return 0, 0, fmt.Errorf("create rate limit %s: %w", name, err)
		}
	} else if err != nil {
		return 0, 0, fmt.Errorf("read rate limit %s: %w", name, err)
	}
	avail := math.Min(float64(burst), tokens+math.Max(0, elapsed)*rate)
	got := int(math.Min(math.Floor(avail), float64(want)))
	if _, err := tx.Exec(ctx, `UPDATE rate_limits SET tokens = $2, updated_at = clock_timestamp() WHERE name = $1`,
		name, avail-float64(got)); err != nil {
		return 0, 0, fmt.Errorf("take tokens %s: %w", name, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, 0, err
	}
	var wait time.Duration
	if got == 0 {
		wait = time.Duration((1 - (avail - float64(got))) / rate * float64(time.Second))
	}
	return got, wait, nil
}
