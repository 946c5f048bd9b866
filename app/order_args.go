package app

import (
	"github.com/google/uuid"
	"github.com/riverqueue/river"
)

// QueueOrders is the River queue captured orders run on. An order's steps
// call different dependencies; each call still goes through its own
// dependency's breaker (StepCalls), so one queue serves them all.
const QueueOrders = "orders"

// OrderArgs is the River job that carries a captured order on from the
// step where it stands (a StepJobArgs).
type OrderArgs struct {
	OperationID uuid.UUID `json:"operation_id"`
}

func (OrderArgs) Kind() string { return "order" }

// Operation is the order the job carries on.
func (a OrderArgs) Operation() uuid.UUID { return a.OperationID }

func (OrderArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueOrders, Priority: PriorityNormal}
}
