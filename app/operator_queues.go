package app

import (
	"context"
	"errors"
	"maps"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river/rivertype"
)

// QueueStore is the storage queue actions need.
type QueueStore interface {
	// LockQueueTx locks River's row for the queue and says whether it is
	// paused; ENOTFOUND when no worker has registered the queue.
	LockQueueTx(ctx context.Context, tx pgx.Tx, name string) (paused bool, err error)
}

// GatedQueues maps each queue that follows a breaker to its dependency:
// such a queue is paused and resumed by the gate, not by hand.
func (o *Operator) GatedQueues() map[string]string { return maps.Clone(o.cfg.GatedQueues) }

// PauseQueue stops River's workers taking jobs from the named queue.
func (o *Operator) PauseQueue(ctx context.Context, actor Actor, name string) error {
	return o.setQueuePaused(ctx, actor, name, true)
}

// ResumeQueue lets River's workers take jobs from the named queue again.
func (o *Operator) ResumeQueue(ctx context.Context, actor Actor, name string) error {
	return o.setQueuePaused(ctx, actor, name, false)
}

// setQueuePaused pauses or resumes a queue and records it, in one
// transaction (River's QueuePauseTx notifies clients on commit). A queue
// that follows a breaker is refused: the gate would undo it.
func (o *Operator) setQueuePaused(ctx context.Context, actor Actor, name string, pause bool) error {
	if err := o.needJobs(); err != nil {
		return err
	}
	if dep, ok := o.cfg.GatedQueues[name]; ok {
		return Errorf(ECONFLICT, "The %s queue follows the %s breaker, which pauses it while open "+
			"and resumes it when calls go through again. To hold it, force the %s breaker open on the Breakers page.", name, dep, dep)
	}
	action := "queue.resume"
	if pause {
		action = "queue.pause"
	}
	return o.inTx(ctx, func(tx pgx.Tx) error {
		paused, err := o.cfg.Store.LockQueueTx(ctx, tx, name)
		if ErrorCode(err) == ENOTFOUND {
			return Errorf(ENOTFOUND, "There is no queue %q that a worker has registered.", name)
		}
		if err != nil {
			return err
		}
		if pause {
			err = o.cfg.Jobs.QueuePauseTx(ctx, tx, name, nil)
		} else {
			err = o.cfg.Jobs.QueueResumeTx(ctx, tx, name, nil)
		}
		if errors.Is(err, rivertype.ErrNotFound) {
			return Errorf(ENOTFOUND, "There is no queue %q.", name)
		}
		if err != nil {
			return err
		}
		return o.cfg.Store.InsertAuditTx(ctx, tx, o.audit(actor, action, "queue "+name,
			map[string]bool{"paused": paused}, map[string]bool{"paused": pause}, "", o.cfg.Now()))
	})
}
