package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spillway/spillway/app"
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
	name = "bench_" + name + b.dbSuffix
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

// count runs one of db's counts, bounded.
func (d *benchDB) count(ctx context.Context, count func(context.Context, db.Querier) (int64, error)) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return count(ctx, d.pool)
}

// setBreaker puts the payment breaker in state as an operator's SQL would
// (db.SetBreakerState), so every instance rereads it at once.
func (d *benchDB) setBreaker(ctx context.Context, state app.BreakerState) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return db.SetBreakerState(ctx, d.pool, paymentBreaker, state)
}

// paymentBreaker is the breaker every scenario steers and reads: the
// payment provider's.
const paymentBreaker = "payment"
