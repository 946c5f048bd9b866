package db

import (
	"context"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/spillway/spillway/migrations"
)

// Migrator runs the goose history (River's schema, then ours) on a pool.
type Migrator struct {
	provider *goose.Provider
	close    func() error
}

// NewMigrator prepares migrations. goose's Postgres session locker makes two
// instances that start together take turns instead of racing.
func NewMigrator(pool *pgxpool.Pool) (*Migrator, error) {
	sqlDB := stdlib.OpenDBFromPool(pool)
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, fmt.Errorf("migration locker: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migrations.SQL,
		goose.WithGoMigrations(migrations.River(pool)...),
		goose.WithSessionLocker(locker),
	)
	if err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("migrations: %w", err)
	}
	return &Migrator{provider: p, close: sqlDB.Close}, nil
}

// Close releases the migrator's database handle (not the pool).
func (m *Migrator) Close() error { return m.close() }

// Up applies every pending migration.
func (m *Migrator) Up(ctx context.Context, log io.Writer) error {
	res, err := m.provider.Up(ctx)
	for _, r := range res {
		fmt.Fprintf(log, "migrated up %d (%s) in %s\n", r.Source.Version, r.Source.Path, r.Duration.Round(1e6))
	}
	if err != nil {
		return fmt.Errorf("migrate up: %w", err)
	}
	return nil
}

// Down rolls back the most recent migration.
func (m *Migrator) Down(ctx context.Context, log io.Writer) error {
	r, err := m.provider.Down(ctx)
	if r != nil {
		fmt.Fprintf(log, "migrated down %d (%s)\n", r.Source.Version, r.Source.Path)
	}
	if err != nil {
		return fmt.Errorf("migrate down: %w", err)
	}
	return nil
}

// Status prints each migration and whether it is applied.
func (m *Migrator) Status(ctx context.Context, log io.Writer) error {
	st, err := m.provider.Status(ctx)
	if err != nil {
		return fmt.Errorf("migrate status: %w", err)
	}
	for _, s := range st {
		applied := "pending"
		if s.State == goose.StateApplied {
			applied = "applied " + s.AppliedAt.Format("2006-01-02 15:04:05")
		}
		name := s.Source.Path
		if name == "" {
			name = "river schema"
		}
		fmt.Fprintf(log, "%5d  %-28s %s\n", s.Source.Version, name, applied)
	}
	return nil
}

// MigrateUp applies every pending migration on pool.
func MigrateUp(ctx context.Context, pool *pgxpool.Pool, log io.Writer) error {
	m, err := NewMigrator(pool)
	if err != nil {
		return err
	}
	defer m.Close()
	return m.Up(ctx, log)
}
