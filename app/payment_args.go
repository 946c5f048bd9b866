package app

import (
	"github.com/google/uuid"
	"github.com/riverqueue/river"
)

// QueuePayments is the River queue payment jobs run on.
const QueuePayments = "payments"

// PaymentArgs is the River job that finishes a captured payment. It carries
// only the operation id: the operation row is the single source of truth, so
// the job can never disagree with what the client was told.
type PaymentArgs struct {
	OperationID uuid.UUID `json:"operation_id"`
	// Offpeak work runs only inside the off-peak window, unless an
	// operator ran it now (job metadata "run_now": true).
	Offpeak bool `json:"offpeak,omitempty"`
}

func (PaymentArgs) Kind() string { return "payment" }

func (PaymentArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueuePayments, Priority: PriorityNormal}
}

// Operation is the payment the job finishes (StepJobArgs).
func (a PaymentArgs) Operation() uuid.UUID { return a.OperationID }

// OffpeakOnly says the job waits for the off-peak window (OffpeakOnly).
func (a PaymentArgs) OffpeakOnly() bool { return a.Offpeak }
