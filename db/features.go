package db

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spillway/spillway/app"
)

// ListFeatureOverrides reads every operator's override, by name.
func ListFeatureOverrides(ctx context.Context, q Querier) ([]app.FeatureOverride, error) {
	rows, err := q.Query(ctx, `SELECT name, reason, actor, created_at FROM feature_overrides ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list feature overrides: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[app.FeatureOverride])
}

// lockFeatureOverrideTx reads the feature's override under a row lock,
// nil when there is none.
func lockFeatureOverrideTx(ctx context.Context, tx pgx.Tx, name string) (*app.FeatureOverride, error) {
	var o app.FeatureOverride
	err := tx.QueryRow(ctx, `SELECT name, reason, actor, created_at FROM feature_overrides WHERE name = $1 FOR UPDATE`, name).
		Scan(&o.Name, &o.Reason, &o.Actor, &o.At)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read feature override: %w", err)
	}
	return &o, nil
}

// SetFeatureOverrideTx stores o, returning the override it replaced.
func SetFeatureOverrideTx(ctx context.Context, tx pgx.Tx, o app.FeatureOverride) (*app.FeatureOverride, error) {
	before, err := lockFeatureOverrideTx(ctx, tx, o.Name)
	if err != nil {
		return nil, err
	}
	_, err = tx.Exec(ctx, `
		INSERT INTO feature_overrides (name, reason, actor, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (name) DO UPDATE SET reason = excluded.reason, actor = excluded.actor, created_at = excluded.created_at`,
		o.Name, o.Reason, o.Actor, o.At)
	if err != nil {
		return nil, fmt.Errorf("set feature override: %w", err)
	}
	return before, nil
}

// ClearFeatureOverrideTx deletes the feature's override, returning it (nil
// when there was none).
func ClearFeatureOverrideTx(ctx context.Context, tx pgx.Tx, name string) (*app.FeatureOverride, error) {
	var o app.FeatureOverride
	err := tx.QueryRow(ctx, `DELETE FROM feature_overrides WHERE name = $1 RETURNING name, reason, actor, created_at`, name).
		Scan(&o.Name, &o.Reason, &o.Actor, &o.At)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("clear feature override: %w", err)
	}
	return &o, nil
}

// PoolStat is what pgxpool says of a pool's pressure.
func PoolStat(pool *pgxpool.Pool) app.PoolStat {
	st := pool.Stat()
	return app.PoolStat{Acquired: st.AcquiredConns(), Constructing: st.ConstructingConns(), Max: st.MaxConns(),
		EmptyAcquires: st.EmptyAcquireCount()}
}
