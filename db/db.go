// Package db owns Spillway's storage: the pgx pool, every SQL statement
// the product runs (operations, idempotency records, breakers, River's
// tables where River has no API, the admin's reads), and migrations.
//
// One style throughout: a query is a free function taking a Querier (a
// pool or a transaction), or a pgx.Tx when it needs the caller's
// transaction, and then its name ends in Tx. A row that does not exist is
// an *app.Error with code ENOTFOUND, so callers ask app.ErrorCode and never
// know db's errors. Store (store.go) is the one adapter implementing app's
// storage ports on a pool. The project-local Postgres cluster used in
// development and tests is db/localpg's; test databases are db/dbtest's.
package db

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/trace"

	"github.com/spillway/spillway/app"
)

// PoolConfig sizes the pool explicitly: pgx's default of max(4, NumCPU)
// alone caps throughput, and every sync call holds a connection.
type PoolConfig struct {
	URL      string
	MaxConns int
	MinConns int
	// Tracer, when set, records each query made within a span as a child
	// span (see NewQueryTracer); nil traces nothing and costs nothing.
	Tracer trace.Tracer
	// Pooler says URL is a pooler in transaction mode (PgBouncer), where
	// no session outlives a transaction: statements are then not
	// prepared by name, because PgBouncer 1.18 cannot send a statement to
	// the server connection that prepared it. Unnamed statements with
	// their descriptions cached here keep one round trip per statement.
	// A URL that sets default_query_exec_mode keeps its own choice.
	Pooler bool
}

// Open connects a pool and checks the database answers.
func Open(ctx context.Context, cfg PoolConfig) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	if cfg.MaxConns > 0 {
		pc.MaxConns = int32(cfg.MaxConns)
	}
	if cfg.MinConns > 0 {
		pc.MinConns = int32(cfg.MinConns)
	}
	pc.MaxConnIdleTime = 5 * time.Minute
	if cfg.Tracer != nil {
		pc.ConnConfig.Tracer = NewQueryTracer(cfg.Tracer)
	}
	if cfg.Pooler && !strings.Contains(cfg.URL, "default_query_exec_mode") {
		pc.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("open pool: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	warm(pingCtx, pool, int(pc.MinConns))
	return pool, nil
}

// warm opens n connections before the first request needs them: opening
// dozens at once under load takes long enough to push requests past their
// capture timeout.
func warm(ctx context.Context, pool *pgxpool.Pool, n int) {
	conns := make([]*pgxpool.Conn, 0, n)
	for range n {
		c, err := pool.Acquire(ctx)
		if err != nil {
			break
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Release()
	}
}

// Querier is what both a pool and a transaction offer.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// errNotFound is what a read returns when its row does not exist: app's
// ENOTFOUND code, so callers ask app.ErrorCode, as they do of any
// domain error, and nothing outside db knows db's errors (wtf's sqlite
// package does the same).
var errNotFound error = &app.Error{Code: app.ENOTFOUND, Message: "not found"}

func isNotFound(err error) bool { return app.ErrorCode(err) == app.ENOTFOUND }
