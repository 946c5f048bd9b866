package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/db/localpg"
)

// benchDB is one scenario's fresh, migrated database.
type benchDB struct {
	name string
	url  string
	pool *pgxpool.Pool // small: for the bench's own set-up and checks
}

// freshDB (re)creates database bench_<name> and migrates it as `serve`
// would. Names are fixed, so a crashed run's leftovers are replaced rather
// than piling up.
func (b *bench) freshDB(ctx context.Context, name string) (*benchDB, error) {
	name = "bench_" + name
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	url, err := localpg.CreateTestDatabase(ctx, b.baseURL, name)
	if err != nil {
		return nil, err
	}
	pool, err := db.Open(ctx, db.PoolConfig{URL: url, MaxConns: 4})
	if err != nil {
		return nil, err
	}
	m, err := db.NewMigrator(pool)
	if err != nil {
		pool.Close()
		return nil, err
	}
	err = m.Up(ctx, io.Discard)
	m.Close()
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("migrate %s: %w", name, err)
	}
	return &benchDB{name: name, url: url, pool: pool}, nil
}

// close drops the database unless BENCH_KEEP=1.
func (b *bench) dropDB(d *benchDB) {
	d.pool.Close()
	if b.keep {
		b.logf("kept database %s", d.name)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := localpg.DropDatabase(ctx, b.baseURL, d.name); err != nil {
		b.logf("drop %s: %v", d.name, err)
	}
}

func benchConnect(ctx context.Context, url string) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return pgx.Connect(ctx, url)
}

// count runs a count(*) query.
func (d *benchDB) count(ctx context.Context, sql string, args ...any) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var n int64
	err := d.pool.QueryRow(ctx, sql, args...).Scan(&n)
	return n, err
}

// setBreaker puts the payment breaker in state the way an operator's SQL
// would: a new generation, then NOTIFY so every instance rereads it at once.
func (d *benchDB) setBreaker(ctx context.Context, state string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
			UPDATE breakers SET state = $1, generation = generation + 1, since = now(), open_until = NULL,
				trips = CASE WHEN $1 = 'closed' THEN 0 ELSE trips END, updated_at = now()
			WHERE name = 'payment'`, state)
		if err != nil {
			return fmt.Errorf("set breaker %s: %w", state, err)
		}
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("set breaker %s: no payment breaker row (did the server start?)", state)
		}
		_, err = tx.Exec(ctx, `SELECT pg_notify($1, 'payment')`, db.BreakerChannel)
		return err
	})
}
