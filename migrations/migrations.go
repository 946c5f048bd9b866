// Package migrations holds Spillway's database history for goose: River's
// schema, one goose step per River migration version, followed by our own
// SQL files. Keeping both in one history means a single `migrate up` brings
// any database to exactly the schema this binary needs.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// SQL holds our own migrations, numbered after River's.
//
//go:embed *.sql
var SQL embed.FS

// RiverVersion is the River schema version the pinned River (v0.51.1) needs.
// Goose versions 1..RiverVersion are River's migrations of the same numbers.
const RiverVersion = 8

// River returns one goose migration per River schema version. River's
// migration 006 cannot share a transaction with the ones before it, so each
// runs on its own through rivermigrate, pinned to its target version so a
// River upgrade never changes what an old goose version means.
func River(pool *pgxpool.Pool) []*goose.Migration {
	ms := make([]*goose.Migration, 0, RiverVersion)
	for v := 1; v <= RiverVersion; v++ {
		up := func(ctx context.Context, _ *sql.DB) error {
			return migrateRiver(ctx, pool, rivermigrate.DirectionUp, v)
		}
		// Down to v-1; River's -1 means "remove everything" for version 1.
		target := v - 1
		if target == 0 {
			target = -1
		}
		down := func(ctx context.Context, _ *sql.DB) error {
			return migrateRiver(ctx, pool, rivermigrate.DirectionDown, target)
		}
		ms = append(ms, goose.NewGoMigration(int64(v), &goose.GoFunc{RunDB: up}, &goose.GoFunc{RunDB: down}))
	}
	return ms
}

func migrateRiver(ctx context.Context, pool *pgxpool.Pool, dir rivermigrate.Direction, target int) error {
	m, err := rivermigrate.New[pgx.Tx](riverpgxv5.New(pool), &rivermigrate.Config{})
	if err != nil {
		return fmt.Errorf("river migrator: %w", err)
	}
	if _, err := m.Migrate(ctx, dir, &rivermigrate.MigrateOpts{TargetVersion: target}); err != nil {
		return fmt.Errorf("river migrate %s to %d: %w", dir, target, err)
	}
	return nil
}
