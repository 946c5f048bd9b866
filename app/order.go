package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
)

// KindOrder is a step kind: reserve every line at the inventory
// dependency, then charge the total at the payment dependency; when the
// charge is declined or fails for good, release every reservation before
// the order ends.
const KindOrder = "order"

// Step types of an order, and the name of its payment step.
const (
	StepTypeReserve = "reserve"
	StepCharge      = "charge"
)

// ReserveStepName is the name of the step that reserves sku.
func ReserveStepName(sku string) string { return StepTypeReserve + ":" + sku }

// PricedLine is an order line with the catalog's price at the time the
// order was recorded: what the customer is charged, whatever the catalog
// says later.
type PricedLine struct {
	SKU       string `json:"sku"`
	Quantity  int    `json:"quantity"`
	UnitPrice int64  `json:"unit_price"`
}

// OrderLine is one line of an order: a product of our catalog and how many.
type OrderLine struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

// CatalogStore reads the catalog in the transaction that records an
// order, so the order is priced as the catalog stood when it was
// accepted; db.Store is one.
type CatalogStore interface {
	GetProductsTx(ctx context.Context, tx pgx.Tx, skus []string) (map[string]Product, error)
}

// OrderKindConfig is what orders need: the inventory the lines are
// reserved at, the provider the total is charged at, and the catalog the
// lines are priced from.
type OrderKindConfig struct {
	Inventory InventoryService
	Payments  PaymentProvider
	Catalog   CatalogStore
}

// NewOrderKind declares orders.
func NewOrderKind(cfg OrderKindConfig) (*StepKind, error) {
	if cfg.Inventory == nil || cfg.Payments == nil || cfg.Catalog == nil {
		return nil, errors.New("orders: Inventory, Payments and Catalog are required")
	}
	return &StepKind{
		Name:    KindOrder,
		Scope:   ScopeOrders,
		Queue:   QueueOrders,
		NewArgs: func(op *Operation) river.JobArgs { return OrderArgs{OperationID: op.ID} },
		Plan: func(ctx context.Context, tx pgx.Tx, r StepRequest) (Plan, error) {
			return planOrder(ctx, tx, cfg.Catalog, r)
		},
		Handlers: map[string]StepHandler{
			StepTypeReserve: reserveStep{inventory: cfg.Inventory},
			StepCharge:      chargeStep{payments: cfg.Payments},
		},
		Describe: describeOrderEnding,
		Result:   orderResult,
	}, nil
}

// ScopeOrders namespaces idempotency keys of POST /api/v1/orders.
const ScopeOrders = "orders"

// planOrder prices the lines from the catalog and lays out the steps: a
// reservation per line, in the order given, then the charge.
func planOrder(ctx context.Context, tx pgx.Tx, catalog CatalogStore, r StepRequest) (Plan, error) {
	req, ok := r.(OrderRequest)
	if !ok {
		return Plan{}, fmt.Errorf("orders: a %T is not an order request", r)
	}
	skus := make([]string, len(req.Lines))
	for i, l := range req.Lines {
		skus[i] = l.SKU
	}
	products, err := catalog.GetProductsTx(ctx, tx, skus)
	if err != nil {
		return Plan{}, unavailable("read catalog", err)
	}
	lines, total, err := PriceOrder(req, products)
	if err != nil {
		return Plan{}, err
	}
	return Plan{Steps: NewOrderSteps(req.Lines), Lines: lines,
		Payment: PaymentRequest{Amount: total, Currency: req.Currency, Customer: req.Customer, CallbackURL: req.CallbackURL}}, nil
}

// NewOrderSteps returns the steps of an order of lines: a reservation per
// line, in the order given, which a failed order releases, then the charge.
func NewOrderSteps(lines []OrderLine) []Step {
	steps := make([]Step, 0, len(lines)+1)
	for _, l := range lines {
		steps = append(steps, Step{Name: ReserveStepName(l.SKU), Dependency: DepInventory, Status: StepPending, Compensable: true})
	}
	return append(steps, Step{Name: StepCharge, Dependency: DepPayment, Status: StepPending})
}

func describeOrderEnding(e Ending) string {
	switch {
	case e.Status == StatusDeclined && e.Code == codeOutOfStock:
		return "a line is out of stock; nothing was charged and every reservation was released"
	case e.Status == StatusDeclined:
		return "the payment was declined; every reservation was released"
	case e.Status == StatusCancelled:
		return "cancelled by an operator; every reservation was released"
	case e.Status == StatusFailed:
		return "a step failed for good; nothing was charged and every reservation was released"
	}
	return ""
}

// orderResult is the charge's reference, as a payment records it: what
// the orphan sweep matches the provider's charges against, so a paid
// order's charge is never taken for an orphan and refunded.
func orderResult(op *Operation) any {
	for _, s := range op.Steps {
		if s.Name == StepCharge {
			return PaymentResult{ProviderRef: s.Ref}
		}
	}
	return nil
}

// codeOutOfStock is the code of a declined reservation, and of the order
// it ends.
const codeOutOfStock = "out_of_stock"

// reserveStep reserves one line at the inventory; its compensation
// releases the reservation.
type reserveStep struct{ inventory InventoryService }

func (h reserveStep) Call(ctx context.Context, op *Operation, s *Step, key string) (StepResult, error) {
	line, ok := orderLine(op, s)
	if !ok {
		return StepResult{}, &ProviderError{Kind: FaultRejected, Err: fmt.Errorf("order %s has no line for step %s", op.ID, s.Name)}
	}
	res, err := h.inventory.Reserve(ctx, Reservation{IdempotencyKey: key, SKU: line.SKU, Quantity: line.Quantity,
		Reference: op.ID.String()})
	if err != nil {
		return StepResult{}, err
	}
	if res.OutOfStock() {
		return StepResult{Status: StepDeclined, Code: codeOutOfStock}, nil
	}
	return StepResult{Status: StepSucceeded, Ref: res.ID}, nil
}

func (h reserveStep) LookUp(ctx context.Context, _ *Operation, _ *Step, key string, last, now time.Time) (StepResult, error) {
	l, err := h.inventory.LookupReservation(ctx, key)
	if err != nil {
		return StepResult{}, err
	}
	switch {
	case l.Status == ReservationReserved:
		return StepResult{Status: StepSucceeded, Ref: l.ID}, nil
	case l.Status == ReservationReleased:
		return StepResult{Status: StepReleased, Ref: l.ID}, nil
	case l.NothingReserved(last, now) && l.Status == ReservationOutOfStock:
		return StepResult{Status: StepDeclined, Code: codeOutOfStock}, nil
	case l.NothingReserved(last, now):
		return StepResult{Status: StepFailed}, nil
	}
	return StepResult{}, nil
}

func (h reserveStep) Compensate(ctx context.Context, _ *Operation, s *Step) error {
	_, err := h.inventory.Release(ctx, s.Ref)
	return err
}

// chargeStep charges the order's total. A charge is not compensated: it is
// the last step, so nothing after it can fail.
type chargeStep struct{ payments PaymentProvider }

func (h chargeStep) Call(ctx context.Context, op *Operation, _ *Step, key string) (StepResult, error) {
	res, err := charge(ctx, h.payments, Charge{IdempotencyKey: key, Amount: op.Payment.Amount,
		Currency: op.Payment.Currency, Reference: op.ID.String()})
	if res.Status == StepDeclined {
		// An order reports a declined charge as declined, whatever the
		// provider's code.
		res.Code = "declined"
	}
	return res, err
}

func (h chargeStep) LookUp(ctx context.Context, _ *Operation, _ *Step, key string, last, now time.Time) (StepResult, error) {
	l, err := h.payments.Lookup(ctx, key)
	if err != nil {
		return StepResult{}, err
	}
	switch {
	case l.Status == LookupSucceeded:
		return StepResult{Status: StepSucceeded, Ref: l.ProviderRef}, nil
	case l.Status == LookupDeclined:
		return StepResult{Status: StepDeclined, Ref: l.ProviderRef, Code: "declined"}, nil
	case l.NothingCharged(last, now):
		return StepResult{Status: StepFailed}, nil
	}
	return StepResult{}, nil
}

func (chargeStep) Compensate(context.Context, *Operation, *Step) error {
	return errors.New("a charge is not compensated by an order")
}

// orderLine is the line a reserve step is for.
func orderLine(op *Operation, s *Step) (PricedLine, bool) {
	for _, l := range op.Lines {
		if ReserveStepName(l.SKU) == s.Name {
			return l, true
		}
	}
	return PricedLine{}, false
}
