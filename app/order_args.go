package app

import (
	"github.com/google/uuid"
	"github.com/riverqueue/river"
)

// QueueOrders is the River queue captured orders run on. An order's steps
// call different dependencies; each call still goes through its own
// dependency's breaker (OrderCalls), so one queue serves them all.
const QueueOrders = "orders"

// OrderArgs is the River job that carries a captured order on from the
// step where it stands. Like PaymentArgs it carries only the operation id:
// the order's steps, stored with the operation, say where it stands.
type OrderArgs struct {
	OperationID uuid.UUID `json:"operation_id"`
}

func (OrderArgs) Kind() string { return "order" }

func (OrderArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueOrders, Priority: PriorityNormal}
}
