package app

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// KindOrder is a multi-step operation: reserve every line at the
// inventory dependency, then charge the total at the payment dependency;
// when the charge is declined or fails for good, release every
// reservation before the order ends.
const KindOrder = "order"

// StepStatus is where one step of an order is. Released is a reserve
// step whose reservation was given back (its compensation done).
type StepStatus string

const (
	StepPending    StepStatus = "pending"
	StepProcessing StepStatus = "processing"
	StepSucceeded  StepStatus = "succeeded"
	StepDeclined   StepStatus = "declined" // out of stock, or the charge declined
	StepFailed     StepStatus = "failed"   // failed for good: nothing happened under its key
	StepReleased   StepStatus = "released"
)

// OrderStep is one call an order makes, with its own idempotency key.
type OrderStep struct {
	Name       string     `json:"name"` // reserve:<sku> or charge
	Dependency string     `json:"dependency"`
	Status     StepStatus `json:"status"`
	Mode       Mode       `json:"mode,omitempty"`
	Attempts   int        `json:"attempts"`
	// OutcomeUnknown: the step's latest call timed out or lost its
	// connection after it may have been sent, so it may have taken effect.
	// Until a lookup says what happened, nothing after it runs and nothing
	// before it is compensated.
	OutcomeUnknown bool `json:"outcome_unknown,omitempty"`
	// AttemptedAt is when the step's latest call started: a lookup that
	// finds nothing and cannot close the key is believed only well after
	// it (LookupSettle).
	AttemptedAt *time.Time `json:"attempted_at,omitempty"`
	// Ref is the dependency's id for what the step did: a reservation's
	// id (what a release names) or a charge's.
	Ref string `json:"ref,omitempty"`
}

// Order is what an operation of kind order carries beyond a payment's
// fields: its priced lines and its steps. The operation's amount is the
// lines' total.
type Order struct {
	Lines []PricedLine
	Steps []OrderStep
}

// PricedLine is an order line with the catalog's price at the time the
// order was recorded: what the customer is charged, whatever the catalog
// says later.
type PricedLine struct {
	SKU       string `json:"sku"`
	Quantity  int    `json:"quantity"`
	UnitPrice int64  `json:"unit_price"`
}

// StepDocument is a step as clients see it (DESIGN.md, Orders).
type StepDocument struct {
	Name       string     `json:"name"`
	Dependency string     `json:"dependency"`
	Status     StepStatus `json:"status"`
	Mode       Mode       `json:"mode,omitempty"`
	Attempts   int        `json:"attempts"`
}

// StepCharge is the name of an order's payment step.
const StepCharge = "charge"

// ReserveStepName is the name of the step that reserves sku.
func ReserveStepName(sku string) string { return "reserve:" + sku }

// IsReserve reports whether the step is a reservation, which a failed order
// releases.
func (s OrderStep) IsReserve() bool { return strings.HasPrefix(s.Name, "reserve:") }

// StepKey is the idempotency key of one step's call: derived from the
// order and the step alone, so every attempt of the step, sync or async,
// in any process, carries the same key and the step takes effect once.
// A release needs none: it names the reservation, and releasing one twice
// is releasing it once.
func StepKey(order uuid.UUID, step string) string { return order.String() + ":" + step }

// OrderEnding is how a finished order ended, and the error code a failed
// one reports.
type OrderEnding struct {
	Status Status
	Code   string // "", out_of_stock, declined, failed or cancelled
}

// OrderActionKind is what an order needs done next.
type OrderActionKind int

const (
	// OrderCall: call step Step (a reservation, or the charge).
	OrderCall OrderActionKind = iota + 1
	// OrderLookUp: step Step's outcome is unknown; ask its dependency
	// before anything else happens.
	OrderLookUp
	// OrderRelease: give back the reservation of step Step.
	OrderRelease
	// OrderFinish: the order is over; Ending says how.
	OrderFinish
)

// OrderAction is the next thing an order needs, as NextOrderAction
// decides it.
type OrderAction struct {
	Kind   OrderActionKind
	Step   int
	Ending OrderEnding
}

func (a OrderAction) String() string {
	switch a.Kind {
	case OrderCall:
		return fmt.Sprintf("call %d", a.Step)
	case OrderLookUp:
		return fmt.Sprintf("look up %d", a.Step)
	case OrderRelease:
		return fmt.Sprintf("release %d", a.Step)
	case OrderFinish:
		if a.Ending.Code != "" {
			return fmt.Sprintf("finish %s (%s)", a.Ending.Status, a.Ending.Code)
		}
		return fmt.Sprintf("finish %s", a.Ending.Status)
	}
	return "nothing"
}

// NextOrderAction decides an order's next action from its steps alone;
// cancelled says an operator cancelled it. It is the whole order state
// machine, and every path through an order (the sync runner, a worker
// after a capture, the reconciler after a crash, an operator) follows it:
//
//   - An unknown outcome comes first: it is looked up before any later step
//     runs and before any reservation is released, since releasing stock
//     for a charge that went through would sell it twice.
//   - A step that did not succeed (out of stock, the charge declined or
//     failed for good), or a cancel, turns the order into compensation:
//     every reservation made is released, one at a time, each exactly once
//     and retried until it is; only then does the order end.
//   - Otherwise the first step not yet done is called (again, under the
//     same key, if an earlier call of it was cut short); when all are done
//     the order has succeeded, and a cancel that comes too late changes
//     nothing: the customer paid for what was reserved.
func NextOrderAction(steps []OrderStep, cancelled bool) OrderAction {
	for i, s := range steps {
		if s.OutcomeUnknown {
			return OrderAction{Kind: OrderLookUp, Step: i}
		}
	}
	done := true
	for _, s := range steps {
		done = done && s.Status == StepSucceeded
	}
	if done {
		return OrderAction{Kind: OrderFinish, Ending: OrderEnding{Status: StatusSucceeded}}
	}
	ending, ok := orderEnding(steps, cancelled)
	if !ok {
		for i, s := range steps {
			if s.Status != StepSucceeded {
				return OrderAction{Kind: OrderCall, Step: i}
			}
		}
	}
	// Ending: a step still processing was cut short (a crash, a cancel
	// between attempts) and may have taken effect; it is known before
	// anything is given back.
	for i, s := range steps {
		if s.Status == StepProcessing {
			return OrderAction{Kind: OrderLookUp, Step: i}
		}
	}
	for i, s := range steps {
		if s.IsReserve() && s.Status == StepSucceeded {
			return OrderAction{Kind: OrderRelease, Step: i}
		}
	}
	return OrderAction{Kind: OrderFinish, Ending: ending}
}

// orderEnding says whether the order has failed, and how, so that what
// remains is compensation: the first step that did not succeed decides
// the code, and an operator's cancel counts only when no step did.
func orderEnding(steps []OrderStep, cancelled bool) (OrderEnding, bool) {
	for _, s := range steps {
		switch s.Status {
		case StepDeclined:
			if s.IsReserve() {
				return OrderEnding{Status: StatusDeclined, Code: "out_of_stock"}, true
			}
			return OrderEnding{Status: StatusDeclined, Code: "declined"}, true
		case StepFailed:
			return OrderEnding{Status: StatusFailed, Code: "failed"}, true
		}
	}
	if cancelled {
		return OrderEnding{Status: StatusCancelled, Code: "cancelled"}, true
	}
	return OrderEnding{}, false
}

// OrderLine is one line of an order: a product of our catalog and how many.
type OrderLine struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

// NewOrderSteps returns the steps of an order of lines: a reservation per
// line, in the order given, then the charge.
func NewOrderSteps(lines []OrderLine) []OrderStep {
	steps := make([]OrderStep, 0, len(lines)+1)
	for _, l := range lines {
		steps = append(steps, OrderStep{Name: ReserveStepName(l.SKU), Dependency: DepInventory, Status: StepPending})
	}
	return append(steps, OrderStep{Name: StepCharge, Dependency: DepPayment, Status: StepPending})
}

// ApplyOrderEnding ends an order as NextOrderAction decided, once every
// reservation it must give back has been given back.
func (o *Operation) ApplyOrderEnding(e OrderEnding, now time.Time) {
	o.OutcomeUnknownSince = nil
	switch e.Status {
	case StatusSucceeded:
		o.Error = nil
		// The charge's reference, as a payment records it: what the orphan
		// sweep matches the provider's charges against, so a paid order's
		// charge is never taken for an orphan and refunded.
		var ref string
		for _, s := range o.Order.Steps {
			if s.Name == StepCharge {
				ref = s.Ref
			}
		}
		o.complete(StatusSucceeded, PaymentResult{ProviderRef: ref}, now)
	case StatusDeclined:
		msg := "the payment was declined; every reservation was released"
		if e.Code == "out_of_stock" {
			msg = "a line is out of stock; nothing was charged and every reservation was released"
		}
		o.Error = &OperationError{Code: e.Code, Message: msg}
		o.complete(StatusDeclined, nil, now)
	case StatusCancelled:
		o.Cancel("cancelled by an operator; every reservation was released", now)
	default:
		o.Fail(e.Code, "a step failed for good; nothing was charged and every reservation was released", now)
	}
}

// TrackUnknown keeps the operation's unknown-outcome mark in step with its
// steps': set from the first step whose outcome we do not know, cleared
// when none is left. While it is set the order may have taken effect
// somewhere, so nothing reports it failed or cancelled (MayHaveCharged).
func (o *Operation) TrackUnknown(now time.Time) {
	unknown := false
	for _, s := range o.Order.Steps {
		unknown = unknown || s.OutcomeUnknown
	}
	switch {
	case unknown && o.OutcomeUnknownSince == nil:
		o.OutcomeUnknownSince = &now
		o.Reason = ReasonOutcomeUnknown
	case !unknown:
		o.OutcomeUnknownSince = nil
	}
}
