package jobs

import (
	"context"
	"fmt"
	"sync"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"go.opentelemetry.io/otel/trace"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
)

// opBatch combines what many workers ask of the operations table at the
// same moment: their reads of the operation a job works become one
// SELECT, and their writes of what came of it one statement (one
// transaction, with the notifications of those that ended), as River's
// completer batches the completions of jobs. A drain of many short jobs
// otherwise pays a round trip per read and a disk flush per outcome,
// which is what limited it, not the CPU (profile of issue 13).
//
// No goroutine waits while nothing is asked: a request that finds fewer
// than maxFlushers flushes running starts one, and a flusher takes
// everything waiting, up to maxBatch, each round, so under load a batch
// gathers while the one before it is on the wire, and alone a request
// goes out at once. Each worker still waits for its own write to commit
// before its job returns, so River completes a job only after its
// outcome is durable, exactly as with a write of its own.
type opBatch struct {
	pool     *pgxpool.Pool
	channels map[app.Channel]bool

	mu       sync.Mutex
	writes   []*pendingWrite
	writing  int
	reads    []*pendingRead
	reading  int
	maxBatch int
}

const (
	// opBatchMax bounds one statement's operations: past a few hundred a
	// batch only makes its own workers wait longer.
	opBatchMax = 256
	// opBatchFlushers is how many batches of each kind may be on the wire
	// at once: two keep the database busy while the next one gathers.
	opBatchFlushers = 2
)

type pendingWrite struct {
	op     *app.Operation
	client *river.Client[pgx.Tx] // to enqueue notifications; nil outside a worker
	// span is the asking attempt's span, whose trace its notifications
	// join (the batch writes on a context of its own); invalid when off.
	span trace.SpanContext
	done chan error
}

type pendingRead struct {
	id   uuid.UUID
	op   *app.Operation
	err  error
	done chan struct{}
}

func newOpBatch(pool *pgxpool.Pool, channels map[app.Channel]bool) *opBatch {
	return &opBatch{pool: pool, channels: channels, maxBatch: opBatchMax}
}

// get reads operation id, with the reads other workers ask for meanwhile.
// An operation that does not exist is an ENOTFOUND error, as
// db.GetOperation's.
func (b *opBatch) get(ctx context.Context, id uuid.UUID) (*app.Operation, error) {
	p := &pendingRead{id: id, done: make(chan struct{})}
	b.mu.Lock()
	b.reads = append(b.reads, p)
	if b.reading < opBatchFlushers {
		b.reading++
		go b.readLoop()
	}
	b.mu.Unlock()
	select {
	case <-p.done:
		return p.op, p.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (b *opBatch) readLoop() {
	for {
		b.mu.Lock()
		var batch []*pendingRead
		batch, b.reads = takeDistinct(b.reads, b.maxBatch, func(p *pendingRead) uuid.UUID { return p.id })
		if len(batch) == 0 {
			b.reading--
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
		ids := make([]uuid.UUID, len(batch))
		for i, p := range batch {
			ids[i] = p.id
		}
		ops, err := db.GetOperations(ctx, b.pool, ids)
		cancel()
		for _, p := range batch {
			switch op, ok := ops[p.id]; {
			case err != nil:
				p.err = err
			case !ok:
				p.err = &app.Error{Code: app.ENOTFOUND, Message: fmt.Sprintf("operation %s not found", p.id)}
			default:
				p.op = op
			}
			close(p.done)
		}
	}
}

// write records op's progress as StepWorker.record does, batched with the
// writes other workers ask for meanwhile: errEndedElsewhere when the
// stored operation had already ended.
func (b *opBatch) write(ctx context.Context, op *app.Operation) error {
	p := &pendingWrite{op: op, span: trace.SpanContextFromContext(ctx), done: make(chan error, 1)}
	if c, err := river.ClientFromContextSafely[pgx.Tx](ctx); err == nil {
		p.client = c
	}
	b.mu.Lock()
	b.writes = append(b.writes, p)
	if b.writing < opBatchFlushers {
		b.writing++
		go b.writeLoop()
	}
	b.mu.Unlock()
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		// The batch may still commit it: the job is then retried and its
		// next run finds the operation as this one left it.
		return ctx.Err()
	}
}

func (b *opBatch) writeLoop() {
	for {
		b.mu.Lock()
		var batch []*pendingWrite
		batch, b.writes = takeDistinct(b.writes, b.maxBatch, func(p *pendingWrite) uuid.UUID { return p.op.ID })
		if len(batch) == 0 {
			b.writing--
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
		errs, err := b.writeBatch(ctx, batch)
		if err != nil && len(batch) > 1 {
			// One operation the batch cannot write must not fail the
			// others: each is tried alone, and only its own fails.
			for i, p := range batch {
				var one []error
				if one, err = b.writeBatch(ctx, batch[i:i+1]); err == nil {
					err = one[0]
				}
				p.done <- err
			}
		} else {
			for i, p := range batch {
				if err != nil {
					p.done <- err
				} else {
					p.done <- errs[i]
				}
			}
		}
		cancel()
	}
}

// writeBatch writes batch's operations in one transaction, with the
// notifications of those that ended: one statement alone when none of
// them ended with notifications to send.
func (b *opBatch) writeBatch(ctx context.Context, batch []*pendingWrite) ([]error, error) {
	ops := make([]*app.Operation, len(batch))
	var client *river.Client[pgx.Tx]
	notify := false
	for i, p := range batch {
		ops[i] = p.op
		if len(app.NotificationJobs(p.op, b.channels)) > 0 {
			notify = true
			if client = p.client; client == nil {
				return nil, fmt.Errorf("enqueue notifications of operation %s: no River client in the worker's context", p.op.ID)
			}
		}
	}
	var updated []bool
	if !notify {
		var err error
		if updated, err = db.UpdateOpenOperations(ctx, b.pool, ops); err != nil {
			return nil, err
		}
	} else {
		tx, err := b.pool.Begin(ctx)
		if err != nil {
			return nil, err
		}
		defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
		if updated, err = db.UpdateOpenOperations(ctx, tx, ops); err != nil {
			return nil, err
		}
		var jobs []river.InsertManyParams
		for i, op := range ops {
			if updated[i] {
				jobs = append(jobs, insertedWithin(batch[i].span, app.NotificationJobs(op, b.channels))...)
			}
		}
		if len(jobs) > 0 {
			if _, err := client.InsertManyTx(ctx, tx, jobs); err != nil {
				return nil, fmt.Errorf("enqueue notifications: %w", err)
			}
		}
		if err := tx.Commit(ctx); err != nil {
			return nil, err
		}
	}
	errs := make([]error, len(batch))
	for i := range batch {
		if !updated[i] {
			errs[i] = errEndedElsewhere
		}
	}
	return errs, nil
}

// takeDistinct splits up to max items with distinct ids off the front of
// pending, leaving the rest (a second request for an id already taken
// among them) in their order for the next round.
func takeDistinct[T any](pending []T, max int, id func(T) uuid.UUID) (batch, rest []T) {
	seen := make(map[uuid.UUID]bool, min(len(pending), max))
	for _, p := range pending {
		if len(batch) < max && !seen[id(p)] {
			seen[id(p)] = true
			batch = append(batch, p)
		} else {
			rest = append(rest, p)
		}
	}
	return batch, rest
}
