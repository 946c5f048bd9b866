package db

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pipelinedTx is a transaction that spends no round trip of its own:
// BEGIN travels with the first batch it sends (pgx's Batch.BeginTx), and
// COMMIT with the writes queued for it (WriteAtCommitTx). A sync request's
// transaction so takes two round trips, the claim and the final writes,
// where a plain pgx.Tx takes four (BEGIN, claim, writes, COMMIT). Every
// instance's requests share a few cores with Postgres, so each round trip
// saved is CPU saved on both sides.
//
// Once begun, every statement runs on pgx's own transaction, in the order
// sent. The writes queued for the commit run at Commit, in the same
// pipeline as COMMIT: one that fails aborts the transaction before COMMIT
// runs, so nothing of it is committed, and Commit returns its error.
type pipelinedTx struct {
	c     *pgxpool.Conn
	tx    pgx.Tx     // pgx's transaction once BEGIN was sent; nil before
	done  bool       // ended; the connection is back in the pool
	atEnd *pgx.Batch // writes sent with COMMIT
}

var _ pgx.Tx = (*pipelinedTx)(nil)

// BeginPipelined acquires a connection for a pipelined transaction; BEGIN
// is sent with the first statement.
func BeginPipelined(ctx context.Context, pool *pgxpool.Pool) (pgx.Tx, error) {
	c, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	return &pipelinedTx{c: c}, nil
}

// WriteAtCommitTx queues b to run with tx's COMMIT when tx is pipelined
// (its callbacks run then, and an error of one is Commit's), and otherwise
// runs it now.
func WriteAtCommitTx(ctx context.Context, tx pgx.Tx, b *pgx.Batch) error {
	p, ok := tx.(*pipelinedTx)
	if !ok {
		return tx.SendBatch(ctx, b).Close()
	}
	if p.done {
		return pgx.ErrTxClosed
	}
	if p.atEnd == nil {
		p.atEnd = &pgx.Batch{}
	}
	p.atEnd.QueuedQueries = append(p.atEnd.QueuedQueries, b.QueuedQueries...)
	return nil
}

// begun is pgx's transaction, begun with a round trip of its own if no
// batch has begun it yet: for a first statement that is no batch.
func (t *pipelinedTx) begun(ctx context.Context) (pgx.Tx, error) {
	if t.done {
		return nil, pgx.ErrTxClosed
	}
	if t.tx == nil {
		tx, err := t.c.Begin(ctx)
		if err != nil {
			return nil, err
		}
		t.tx = tx
	}
	return t.tx, nil
}

func (t *pipelinedTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if t.done {
		return pgx.FailedBatchResults(b, pgx.ErrTxClosed)
	}
	if t.tx != nil {
		return t.tx.SendBatch(ctx, b)
	}
	withBegin := &pgx.Batch{}
	withBegin.BeginTx(pgx.TxOptions{})
	withBegin.QueuedQueries = append(withBegin.QueuedQueries, b.QueuedQueries...)
	br := t.c.SendBatch(ctx, withBegin)
	t.tx = br.Tx()
	// BEGIN's own result comes first: the caller reads from its first
	// statement on.
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return pgx.FailedBatchResults(b, fmt.Errorf("begin: %w", err))
	}
	return br
}

func (t *pipelinedTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	tx, err := t.begun(ctx)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	return tx.Exec(ctx, sql, args...)
}

func (t *pipelinedTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	tx, err := t.begun(ctx)
	if err != nil {
		return nil, err
	}
	return tx.Query(ctx, sql, args...)
}

func (t *pipelinedTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	tx, err := t.begun(ctx)
	if err != nil {
		return errRow{err}
	}
	return tx.QueryRow(ctx, sql, args...)
}

func (t *pipelinedTx) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	tx, err := t.begun(ctx)
	if err != nil {
		return 0, err
	}
	return tx.CopyFrom(ctx, table, columns, src)
}

func (t *pipelinedTx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	tx, err := t.begun(ctx)
	if err != nil {
		return nil, err
	}
	return tx.Prepare(ctx, name, sql)
}

// Begin starts a nested transaction (a savepoint, as pgx's).
func (t *pipelinedTx) Begin(ctx context.Context) (pgx.Tx, error) {
	tx, err := t.begun(ctx)
	if err != nil {
		return nil, err
	}
	return tx.Begin(ctx)
}

// LargeObjects needs the transaction begun; nothing here stores large
// objects, so one not yet begun has none.
func (t *pipelinedTx) LargeObjects() pgx.LargeObjects {
	if t.tx == nil {
		return pgx.LargeObjects{}
	}
	return t.tx.LargeObjects()
}

func (t *pipelinedTx) Conn() *pgx.Conn { return t.c.Conn() }

// Commit sends the queued writes and COMMIT in one round trip. A
// transaction that never sent a statement and queued none has nothing to
// commit.
func (t *pipelinedTx) Commit(ctx context.Context) error {
	if t.done {
		return pgx.ErrTxClosed
	}
	defer t.release()
	b := t.atEnd
	t.atEnd = nil
	switch {
	case b == nil && t.tx == nil:
		return nil
	case b == nil:
		return t.tx.Commit(ctx)
	}
	b.Queue("commit").Exec(func(tag pgconn.CommandTag) error {
		// COMMIT of a transaction an earlier statement aborted answers
		// ROLLBACK, without an error: it committed nothing.
		if tag.String() == "ROLLBACK" {
			return pgx.ErrTxCommitRollback
		}
		return nil
	})
	err := t.SendBatch(ctx, b).Close()
	if err != nil && t.c.Conn().PgConn().TxStatus() != 'I' {
		// A write failed, so COMMIT never ran: end the transaction before
		// the connection goes back (pgx closes it if that fails).
		_ = t.tx.Rollback(context.WithoutCancel(ctx))
	}
	return err
}

// Rollback ends the transaction; after Commit it answers pgx.ErrTxClosed,
// as pgx's own does.
func (t *pipelinedTx) Rollback(ctx context.Context) error {
	if t.done {
		return pgx.ErrTxClosed
	}
	defer t.release()
	t.atEnd = nil
	if t.tx == nil {
		return nil
	}
	return t.tx.Rollback(ctx)
}

// release gives the connection back; the pool closes one left inside a
// transaction or broken.
func (t *pipelinedTx) release() {
	t.done = true
	t.c.Release()
}

// errRow carries an error where pgx wants a row.
type errRow struct{ err error }

func (e errRow) Scan(...any) error { return e.err }
