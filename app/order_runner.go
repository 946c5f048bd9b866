package app

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// scopeOrders namespaces idempotency keys of POST /api/v1/orders.
const scopeOrders = "orders"

// DefaultOrderDeadline bounds an order's synchronous steps together
// (ORDER_DEADLINE) when the runner is given none.
const DefaultOrderDeadline = 4 * time.Second

// CatalogStore reads the catalog in the transaction that records an
// order, so the order is priced as the catalog stood when it was
// accepted; db.Store is one.
type CatalogStore interface {
	GetProductsTx(ctx context.Context, tx pgx.Tx, skus []string) (map[string]Product, error)
}

// SubmitOrder runs one order request in one transaction, as SubmitPayment
// runs a payment: claim the key (or replay its answer), price the lines
// from the catalog, then work the steps synchronously, each within its
// dependency's deadline and all within ORDER_DEADLINE, as NextOrderAction
// decides them. A step that cannot finish in time, or whose dependency's
// breaker is open, is captured where it stands: the River job that carries
// the order on from that step is inserted in the same transaction that
// records the steps already done. Nothing is acknowledged unless the commit
// succeeded, and every step's call carries its own key, so a retry of the
// request, or the worker, does nothing twice.
func (r *Runner) SubmitOrder(ctx context.Context, key string, req OrderRequest) (*Outcome, error) {
	if r.cfg.Inventory == nil {
		return nil, Errorf(EUNAVAILABLE, "orders are not taken here: no inventory is configured (INVENTORY_URL); nothing was done")
	}
	arrival := time.Now() // monotonic: budgets are elapsed time
	budget := r.cfg.OrderDeadline
	ctx, pre, tx, end, err := r.begin(ctx, budget, req.CallbackURL)
	if err != nil {
		return nil, err
	}
	defer end()

	fp := req.Fingerprint()
	id := OperationID(scopeOrders, key)
	if _, answered, err := r.claim(pre, tx, scopeOrders, key, id, fp); answered != nil || err != nil {
		return answered, err
	}
	skus := make([]string, len(req.Lines))
	for i, l := range req.Lines {
		skus[i] = l.SKU
	}
	catalog, err := r.cfg.Catalog.GetProductsTx(pre, tx, skus)
	if err != nil {
		return nil, unavailable("read catalog", err)
	}
	lines, total, err := PriceOrder(req, catalog)
	if err != nil {
		return nil, err
	}
	now := r.stamp()
	op := &Operation{
		ID: id, Kind: KindOrder, Status: StatusProcessing, Mode: ModeSync,
		Priority:  PaymentPriority(total, r.cfg.HighValueAmount),
		Payment:   PaymentRequest{Amount: total, Currency: req.Currency, Customer: req.Customer, CallbackURL: req.CallbackURL},
		Order:     &Order{Lines: lines, Steps: NewOrderSteps(req.Lines)},
		CreatedAt: now, UpdatedAt: now,
	}
	// ORDER_DEADLINE counts from the first step, as a payment's deadline
	// from its call: time spent waiting for the database is charged to the
	// capture budget, never to the dependencies. So no order request waits
	// longer than ORDER_DEADLINE + CAPTURE_TIMEOUT.
	a := attempt{pre: pre, arrival: arrival, preUsed: time.Since(arrival)}
	reason := r.runOrderSync(ctx, op, &a, time.Now().Add(budget))
	if reason != "" && !a.charged {
		// Nothing has happened downstream yet: past the backlog bound the
		// order is refused rather than queued (orders wait in the queue
		// the inventory dependency declares).
		if err := r.cfg.Backlog.Admit(DepInventory); err != nil {
			return nil, err
		}
	}
	post, cancelPost := context.WithTimeout(ctx, a.postBudget(r.cfg.CaptureTimeout))
	defer cancelPost()
	if reason != "" {
		op.Capture(reason, r.stamp())
		opts := OrderArgs{}.InsertOpts()
		opts.Priority, opts.MaxAttempts = op.Priority, r.cfg.MaxAttempts
		res, err := r.cfg.Jobs.InsertTx(post, tx, OrderArgs{OperationID: op.ID}, &opts)
		if err != nil {
			return nil, a.unavailable("insert job", err)
		}
		op.JobID = res.Job.ID
	}
	doc, body, err := r.recordTx(post, tx, &a, op, &IdempotencyRecord{Scope: scopeOrders, Key: key, Fingerprint: fp,
		OperationID: op.ID, CreatedAt: now})
	if err != nil {
		return nil, err
	}
	r.cfg.Logger.Debug("order", "operation_id", op.ID, "status", op.Status, "mode", op.Mode, "reason", op.Reason,
		"elapsed", time.Since(arrival))
	var retryAfter time.Duration
	if reason != "" {
		retryAfter = time.Second
	}
	return &Outcome{Document: doc, Body: body, RetryAfter: retryAfter}, nil
}

// runOrderSync works the order's steps synchronously until it ends, or
// until a step cannot finish in time or now, and returns the capture
// reason then ("" when the order ended). a.charged is set once any step
// may have taken effect, so a later 503 says to retry with the same key.
func (r *Runner) runOrderSync(ctx context.Context, op *Operation, a *attempt, deadline time.Time) Reason {
	if !r.sync.TryAcquire(op.Payment.Amount >= r.cfg.HighValueAmount) {
		return ReasonOverloaded
	}
	defer r.sync.Release()
	r.cfg.Metrics.syncStarted()
	defer r.cfg.Metrics.syncEnded()
	calls := &OrderCalls{Inventory: r.cfg.Inventory, Payments: r.cfg.Provider, Breakers: r.cfg.Breakers,
		Metrics: r.cfg.Metrics, Path: "sync", Now: r.cfg.Now}
	for range 4*len(op.Order.Steps) + 4 {
		act := NextOrderAction(op.Order.Steps, false)
		if act.Kind == OrderFinish {
			op.ApplyOrderEnding(act.Ending, r.stamp())
			return ""
		}
		dep := op.Order.Steps[act.Step].Dependency
		left := time.Until(deadline)
		if left <= 0 {
			return ReasonTimeout
		}
		err := calls.Do(ctx, op, act, min(r.dependencyDeadline(dep), left))
		now := r.stamp()
		if act.Kind == OrderCall && !errors.Is(err, ErrBreakerOpen) {
			op.Attempts++
		}
		op.UpdatedAt = now
		op.TrackUnknown(now)
		for _, s := range op.Order.Steps {
			a.charged = a.charged || s.OutcomeUnknown || s.Status == StepSucceeded
		}
		var pe *ProviderError
		switch {
		case err == nil:
			op.Error = nil
		case errors.Is(err, ErrBreakerOpen):
			return ReasonBreakerOpen
		case errors.As(err, &pe):
			op.RecordFault(pe, now)
			if pe.Kind == FaultTimeout || pe.OutcomeUnknown {
				return ReasonTimeout
			}
			return ReasonProviderError
		default:
			op.Error = &OperationError{Code: "internal", Message: "the order could not go on synchronously"}
			return ReasonProviderError
		}
	}
	return ReasonProviderError
}

// dependencyDeadline bounds one synchronous call to dependency.
func (r *Runner) dependencyDeadline(dependency string) time.Duration {
	if d := r.cfg.DependencyDeadlines[dependency]; d > 0 {
		return d
	}
	return r.cfg.Deadline
}
