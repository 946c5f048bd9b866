package db_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/db/dbtest"
)

// roundTrips counts what a pool sends: each query and each batch is one
// round trip.
type roundTrips struct{ n atomic.Int32 }

func (r *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	r.n.Add(1)
	return ctx
}
func (r *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (r *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	r.n.Add(1)
	return ctx
}
func (r *roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (r *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// tracedPool is a second pool on a test database whose round trips are
// counted.
func tracedPool(t *testing.T) (*pgxpool.Pool, *roundTrips) {
	t.Helper()
	_, url := dbtest.NewWithURL(t)
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	rt := &roundTrips{}
	cfg.ConnConfig.Tracer = rt
	cfg.MinConns, cfg.MaxConns = 1, 1 // one connection: a leaked one would hang the next Begin
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := pool.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	return pool, rt
}

func testOperation(id uuid.UUID) *app.Operation {
	now := time.Now().UTC().Truncate(time.Microsecond)
	return &app.Operation{ID: id, Kind: app.KindPayment, Status: app.StatusSucceeded, Mode: app.ModeSync, Priority: 2,
		Payment: app.PaymentRequest{Amount: 500, Currency: "usd"}, CreatedAt: now, UpdatedAt: now, CompletedAt: &now}
}

func countOperations(t *testing.T, pool *pgxpool.Pool, id uuid.UUID) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM operations WHERE id = $1`, id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A request's transaction is two round trips: BEGIN with the claim, the
// row with COMMIT. What it recorded is there afterwards, once, with the
// key's answer.
func TestPipelinedRequestTakesTwoRoundTrips(t *testing.T) {
	t.Parallel()
	pool, rt := tracedPool(t)
	ctx := context.Background()
	store := db.NewStore(pool)
	id := app.OperationID("payments", "rt-1")
	rt.n.Store(0)
	tx, err := store.BeginTx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit
	claim, err := store.ClaimKeyTx(ctx, tx, "payments", "rt-1", id)
	if err != nil || !claim.Locked || claim.Record != nil || claim.OperationExists {
		t.Fatalf("claim %+v, %v: want the key free and locked", claim, err)
	}
	op := testOperation(id)
	rec := &app.IdempotencyRecord{Scope: "payments", Key: "rt-1", Fingerprint: []byte{1, 2}, OperationID: id,
		Response: []byte(`{"id":"x"}`), CreatedAt: op.CreatedAt}
	if err := store.RecordTx(ctx, tx, op, rec); err != nil {
		t.Fatal(err)
	}
	if n := countOperations(t, pool2(t, pool), id); n != 0 {
		t.Fatalf("the queued row is visible before the commit (%d)", n)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if n := rt.n.Load(); n != 2 {
		t.Fatalf("%d round trips, want 2 (BEGIN+claim, row+COMMIT)", n)
	}
	if err := tx.Rollback(ctx); !errors.Is(err, pgx.ErrTxClosed) {
		t.Fatalf("rollback after commit: %v, want ErrTxClosed", err)
	}

	// The answer is read back on the next claim, from the same row.
	tx, err = store.BeginTx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit
	claim, err = store.ClaimKeyTx(ctx, tx, "payments", "rt-1", id)
	if err != nil || claim.Record == nil || string(claim.Record.Response) != `{"id":"x"}` ||
		!claim.Record.Matches([]byte{1, 2}) || !claim.Record.CreatedAt.Equal(op.CreatedAt) {
		t.Fatalf("claim %+v, %v: want the recorded answer", claim, err)
	}
}

// pool2 is a plain pool on the same database, for looking from outside a
// transaction.
func pool2(t *testing.T, p *pgxpool.Pool) *pgxpool.Pool {
	t.Helper()
	cfg := p.Config()
	cfg.ConnConfig.Tracer = nil
	q, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Close)
	return q
}

// A queued write that fails aborts the transaction before its COMMIT
// runs: nothing of the transaction is committed, not even what was sent
// before, Commit says why, and the connection serves the next request.
func TestPipelinedCommitOfAFailingWriteCommitsNothing(t *testing.T) {
	t.Parallel()
	pool, _ := tracedPool(t)
	ctx := context.Background()
	store := db.NewStore(pool)
	first, dup := uuid.New(), uuid.New()
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		_, err := db.InsertOperationTx(ctx, tx, testOperation(dup))
		return err
	}); err != nil {
		t.Fatal(err)
	}

	tx, err := store.BeginTx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit
	if _, err := tx.Exec(ctx, `INSERT INTO operations (id, kind, status, mode, priority, amount, currency, created_at, updated_at)
		VALUES ($1, 'payment', 'queued', 'async', 2, 100, 'usd', now(), now())`, first); err != nil {
		t.Fatal(err)
	}
	rec := &app.IdempotencyRecord{Key: "dup", Fingerprint: []byte{1}, Response: []byte(`{}`)}
	if err := store.RecordTx(ctx, tx, testOperation(dup), rec); err != nil {
		t.Fatal(err)
	}
	var pe *pgconn.PgError
	if err := tx.Commit(ctx); !errors.As(err, &pe) || pe.Code != "23505" {
		t.Fatalf("commit: %v, want the duplicate's unique violation", err)
	}
	if n := countOperations(t, pool, first); n != 0 {
		t.Fatalf("the statement before the failed write was committed (%d rows)", n)
	}
	// The pool's one connection is free and outside any transaction.
	if err := pool.QueryRow(ctx, `SELECT 1`).Scan(new(int)); err != nil {
		t.Fatal(err)
	}
}

// COMMIT of a transaction a statement aborted commits nothing and says
// so, as pgx's own Commit does.
func TestPipelinedCommitOfAnAbortedTransaction(t *testing.T) {
	t.Parallel()
	pool, _ := tracedPool(t)
	ctx := context.Background()
	tx, err := db.NewStore(pool).BeginTx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit
	if _, err := tx.Exec(ctx, `SELECT 1/0`); err == nil {
		t.Fatal("division by zero succeeded")
	}
	if err := db.WriteAtCommitTx(ctx, tx, &pgx.Batch{}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); !errors.Is(err, pgx.ErrTxCommitRollback) {
		t.Fatalf("commit: %v, want ErrTxCommitRollback", err)
	}
}

// A transaction that sent nothing costs no round trip, and a nested one
// is a savepoint whose rollback keeps the outer transaction's work.
func TestPipelinedEmptyAndNested(t *testing.T) {
	t.Parallel()
	pool, rt := tracedPool(t)
	ctx := context.Background()
	store := db.NewStore(pool)
	rt.n.Store(0)
	tx, err := store.BeginTx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil || rt.n.Load() != 0 {
		t.Fatalf("empty commit: %v after %d round trips, want none", err, rt.n.Load())
	}

	kept, undone := uuid.New(), uuid.New()
	tx, err = store.BeginTx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit
	if ok, err := db.InsertOperationTx(ctx, tx, testOperation(kept)); err != nil || !ok {
		t.Fatal(ok, err)
	}
	sp, err := tx.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := db.InsertOperationTx(ctx, sp, testOperation(undone)); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if err := sp.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if countOperations(t, pool, kept) != 1 || countOperations(t, pool, undone) != 0 {
		t.Fatal("the savepoint's rollback did not keep exactly the outer work")
	}
}

// An admin read is read-only and cut off at its timeout, its BEGIN, mode
// and timeout costing one round trip.
func TestReadWithinIsReadOnlyAndBounded(t *testing.T) {
	t.Parallel()
	pool, rt := tracedPool(t)
	ctx := context.Background()
	rt.n.Store(0)
	err := db.ReadWithin(ctx, pool, time.Minute, func(q db.Querier) error {
		_, err := q.Exec(ctx, `DELETE FROM operations`)
		return err
	})
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "25006" {
		t.Fatalf("a write in an admin read: %v, want read_only_sql_transaction", err)
	}
	if n := rt.n.Load(); n != 3 { // BEGIN+mode+timeout, the DELETE, the ROLLBACK
		t.Fatalf("%d round trips, want 3", n)
	}
	err = db.ReadWithin(ctx, pool, 50*time.Millisecond, func(q db.Querier) error {
		_, err := q.Exec(ctx, `SELECT pg_sleep(5)`)
		return err
	})
	if !db.IsStatementTimeout(err) {
		t.Fatalf("a slow admin read: %v, want a statement timeout", err)
	}
}
