package jobs

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db/dbtest"
)

// Many workers' writes at once are combined, and each learns what became
// of its own: an operation an operator ended meanwhile keeps its ending
// (errEndedElsewhere), one the database refuses fails alone, and every
// other is written.
func TestOpBatchWritesEachAsAlone(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	ctx := context.Background()
	const n = 60
	ids := make([]uuid.UUID, n)
	for i := range ids {
		ids[i] = uuid.New()
		if _, err := pool.Exec(ctx, `INSERT INTO operations (id, kind, status, mode, priority, amount, currency, created_at, updated_at)
			VALUES ($1, 'payment', 'queued', 'async', 2, 100, 'usd', now(), now())`, ids[i]); err != nil {
			t.Fatal(err)
		}
	}
	ended, refused := ids[7], ids[23]
	if _, err := pool.Exec(ctx, `UPDATE operations SET status = 'cancelled', completed_at = now() WHERE id = $1`, ended); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE operations SET cancel_requested_at = now() WHERE id = $1`, ids[3]); err != nil {
		t.Fatal(err)
	}
	b := newOpBatch(pool, nil)
	errs := make([]error, n)
	ops := make([]*app.Operation, n)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Go(func() {
			op, err := b.get(ctx, ids[i])
			if err != nil {
				errs[i] = err
				return
			}
			now := app.StorageTime(time.Now())
			op.Status, op.Attempts, op.UpdatedAt, op.AttemptedAt = app.StatusProcessing, 1, now, &now
			if ids[i] == refused {
				op.Status = "lost" // the table's CHECK refuses it
			}
			ops[i] = op
			errs[i] = b.write(ctx, op)
		})
	}
	wg.Wait()
	for i, id := range ids {
		var status string
		var attempts int
		if err := pool.QueryRow(ctx, `SELECT status, attempts FROM operations WHERE id = $1`, id).Scan(&status, &attempts); err != nil {
			t.Fatal(err)
		}
		switch id {
		case ended:
			if !errors.Is(errs[i], errEndedElsewhere) || status != "cancelled" {
				t.Errorf("operation ended elsewhere: write %v, status %s; want errEndedElsewhere, cancelled", errs[i], status)
			}
		case refused:
			if errs[i] == nil || errors.Is(errs[i], errEndedElsewhere) || status != "queued" {
				t.Errorf("refused operation: write %v, status %s; want its own error, queued", errs[i], status)
			}
		default:
			if errs[i] != nil || status != "processing" || attempts != 1 {
				t.Errorf("operation %d: write %v, status %s, attempts %d; want nil, processing, 1", i, errs[i], status, attempts)
			}
		}
	}
	if !ops[3].CancelRequested() {
		t.Error("a cancel request made before the write was not read back")
	}
	if _, err := b.get(ctx, uuid.New()); app.ErrorCode(err) != app.ENOTFOUND {
		t.Errorf("get of a missing operation: %v, want ENOTFOUND", err)
	}
}

// Two writes of one operation never share a statement (an UPDATE … FROM
// would apply only one of them): the later waits for the next round.
func TestTakeDistinctLeavesARepeatForTheNextRound(t *testing.T) {
	t.Parallel()
	a, c := uuid.New(), uuid.New()
	batch, rest := takeDistinct([]uuid.UUID{a, a, c}, 10, func(id uuid.UUID) uuid.UUID { return id })
	if len(batch) != 2 || batch[0] != a || batch[1] != c || len(rest) != 1 || rest[0] != a {
		t.Fatalf("batch %v rest %v", batch, rest)
	}
	batch, rest = takeDistinct([]uuid.UUID{a, c}, 1, func(id uuid.UUID) uuid.UUID { return id })
	if len(batch) != 1 || len(rest) != 1 {
		t.Fatalf("max 1: batch %v rest %v", batch, rest)
	}
}
