package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/apptest"
	"github.com/spillway/spillway/app/sim"
	"github.com/spillway/spillway/cmd/spillway/service/servicetest"
	"github.com/spillway/spillway/db"
)

// captureOrder records an order and its job in one transaction, as a
// capture does, and returns it.
func captureOrder(t *testing.T, p *servicetest.Product, key string, lines ...app.PricedLine) *app.Operation {
	t.Helper()
	ctx := context.Background()
	var total int64
	var ls []app.OrderLine
	for _, l := range lines {
		total += l.UnitPrice * int64(l.Quantity)
		ls = append(ls, app.OrderLine{SKU: l.SKU, Quantity: l.Quantity})
	}
	now := app.StorageTime(time.Now())
	op := &app.Operation{ID: app.OperationID("orders", key), Kind: app.KindOrder, Priority: app.PriorityNormal,
		Payment: app.PaymentRequest{Amount: total, Currency: "usd"}, CreatedAt: now, UpdatedAt: now,
		Lines: lines, Steps: app.NewOrderSteps(ls)}
	op.Capture(app.ReasonProviderError, now)
	tx, err := p.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	res, err := p.River.InsertTx(ctx, tx, app.OrderArgs{OperationID: op.ID}, nil)
	if err != nil {
		t.Fatal(err)
	}
	op.JobID = res.Job.ID
	if _, err := db.InsertOperationTx(ctx, tx, op); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	return op
}

// ended waits for the order to end and returns it as stored.
func ended(t *testing.T, p *servicetest.Product, id uuid.UUID) *app.Operation {
	t.Helper()
	var op *app.Operation
	apptest.WaitFor(t, "order "+id.String()+" to end", func() bool {
		var err error
		op, err = db.GetOperation(context.Background(), p.Pool, id)
		if err != nil {
			t.Fatal(err)
		}
		return op.Status.Terminal()
	})
	return op
}

// A captured order is carried on by the worker, step by step, each step
// taking effect once at its dependency however the dependencies behave,
// and a failed order gives back every reservation exactly once.
func TestOrderWorkerCarriesCapturedOrdersToTheirEnd(t *testing.T) {
	t.Parallel()
	tea := app.PricedLine{SKU: "sku-tea", Quantity: 2, UnitPrice: 450}
	mug := app.PricedLine{SKU: "sku-mug", Quantity: 1, UnitPrice: 1200}
	soldOut := app.PricedLine{SKU: "sku-sold-out", Quantity: 1, UnitPrice: 9900}
	declined := app.PricedLine{SKU: "sku-kettle", Quantity: 1, UnitPrice: 3902} // a total ending in 02 is declined

	t.Run("succeeds, one effect per step", func(t *testing.T) {
		t.Parallel()
		p := servicetest.New(t, servicetest.Options{Workers: 1})
		op := ended(t, p, captureOrder(t, p, "w-ok", tea, mug).ID)
		if op.Status != app.StatusSucceeded || op.Mode != app.ModeAsync || op.CompletedAt == nil {
			t.Fatalf("ended %s/%s: %+v", op.Status, op.Mode, op.Error)
		}
		// The orphan sweep finds the order's charge accounted for: a paid
		// order is never refunded as an orphan.
		charge := op.Steps[len(op.Steps)-1]
		if v := app.JudgeCharge(app.ProviderCharge{ID: charge.Ref, Reference: op.ID.String(), Status: "succeeded"}, op); v != app.ChargeAccounted ||
			op.ProviderRef() != charge.Ref {
			t.Fatalf("the sweep judges the paid order's charge %v (recorded ref %q, charge %q)", v, op.ProviderRef(), charge.Ref)
		}
		for _, s := range op.Steps {
			key := app.StepKey(op.ID, s.Name)
			n := p.Sim.Effects(key)
			if s.Compensable {
				n = p.Sim.InventoryEffects(key)
			}
			if n != 1 || s.Status != app.StepSucceeded || s.Mode != app.ModeAsync {
				t.Errorf("step %+v: %d effects", s, n)
			}
		}
	})

	t.Run("out of stock: declined, nothing charged, the earlier line released once", func(t *testing.T) {
		t.Parallel()
		p := servicetest.New(t, servicetest.Options{Workers: 1})
		op := ended(t, p, captureOrder(t, p, "w-oos", tea, soldOut).ID)
		if op.Status != app.StatusDeclined || op.Error == nil || op.Error.Code != "out_of_stock" {
			t.Fatalf("ended %s %+v", op.Status, op.Error)
		}
		if n := p.Sim.Calls(app.StepKey(op.ID, app.StepCharge)); n != 0 {
			t.Fatalf("the payment provider was called %d times for an out-of-stock order", n)
		}
		if s := op.Steps[0]; s.Status != app.StepReleased || p.Sim.Releases(s.Ref) != 1 {
			t.Fatalf("tea %+v released %d times", s, p.Sim.Releases(s.Ref))
		}
	})

	t.Run("payment declined: every reservation released once, then declined", func(t *testing.T) {
		t.Parallel()
		p := servicetest.New(t, servicetest.Options{Workers: 1})
		op := ended(t, p, captureOrder(t, p, "w-dec", declined).ID)
		if op.Status != app.StatusDeclined || op.Error == nil || op.Error.Code != "declined" {
			t.Fatalf("ended %s %+v", op.Status, op.Error)
		}
		if s := op.Steps[0]; s.Status != app.StepReleased || p.Sim.Releases(s.Ref) != 1 {
			t.Fatalf("kettle %+v released %d times", s, p.Sim.Releases(s.Ref))
		}
		if left, _ := p.Sim.Available("sku-kettle"); left != 50 {
			t.Fatalf("kettles left %d, want all 50 back", left)
		}
	})

	t.Run("inventory down, then back: waits, then succeeds once", func(t *testing.T) {
		t.Parallel()
		p := servicetest.New(t, servicetest.Options{Workers: 1})
		p.Sim.SetInventoryChaos(sim.Chaos{Down: true})
		op := captureOrder(t, p, "w-down", tea)
		key := app.StepKey(op.ID, op.Steps[0].Name)
		apptest.WaitFor(t, "the worker to have tried twice", func() bool { return p.Sim.InventoryCalls(key) >= 2 })
		p.Sim.SetInventoryChaos(sim.Chaos{})
		op = ended(t, p, op.ID)
		if op.Status != app.StatusSucceeded || p.Sim.InventoryEffects(key) != 1 || p.Sim.Effects(app.StepKey(op.ID, app.StepCharge)) != 1 {
			t.Fatalf("ended %s; reservations %d, charges %d", op.Status, p.Sim.InventoryEffects(key), p.Sim.Effects(app.StepKey(op.ID, app.StepCharge)))
		}
	})

	t.Run("payment down, inventory up: reserved once, charged once when it is back", func(t *testing.T) {
		t.Parallel()
		p := servicetest.New(t, servicetest.Options{Workers: 1})
		p.Sim.SetChaos(sim.Chaos{Down: true})
		op := captureOrder(t, p, "w-paydown", tea)
		charge := app.StepKey(op.ID, app.StepCharge)
		apptest.WaitFor(t, "the worker to have tried the charge twice", func() bool { return p.Sim.Calls(charge) >= 2 })
		p.Sim.SetChaos(sim.Chaos{})
		op = ended(t, p, op.ID)
		reserve := app.StepKey(op.ID, op.Steps[0].Name)
		if op.Status != app.StatusSucceeded || p.Sim.InventoryEffects(reserve) != 1 || p.Sim.Effects(charge) != 1 {
			t.Fatalf("ended %s; reservations %d, charges %d", op.Status, p.Sim.InventoryEffects(reserve), p.Sim.Effects(charge))
		}
		if p.Sim.InventoryCalls(reserve) != 1 {
			t.Fatalf("the reservation was sent %d times; it had succeeded before the charge was tried", p.Sim.InventoryCalls(reserve))
		}
	})
}

// placeOrder posts an order of one tea and returns its document.
func placeOrder(t *testing.T, p *servicetest.Product, key string) map[string]any {
	t.Helper()
	p.StockCatalog()
	res := p.Do("POST", "/api/v1/orders", "application/json", key,
		[]byte(`{"lines":[{"sku":"sku-tea","quantity":1}],"currency":"usd","customer":{"email":"c@example.com"}}`))
	if res.Status != 201 && res.Status != 202 {
		t.Fatalf("order %s: %d %s", key, res.Status, res.Body)
	}
	return res.JSON(t)
}

// An operator's cancel, retry and verdict on orders, and the reconciler's
// care of an order whose job ended, each keep the promise: a cancel never
// undoes a step whose outcome is unknown, an order whose charge went
// through is never reported cancelled, and every reservation made is
// released exactly once when the order does not succeed.
func TestOperatorAndReconcilerOnOrders(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	actor := app.Actor{Email: "ops@example.com"}
	newOperator := func(p *servicetest.Product) *app.Operator {
		op, err := app.NewOperator(app.OperatorConfig{Store: db.NewStore(p.Pool), Jobs: p.River, Provider: p.Provider})
		if err != nil {
			t.Fatal(err)
		}
		return op
	}
	apply := func(t *testing.T, o *app.Operator, action app.JobAction, job int64) app.JobsResult {
		t.Helper()
		res, err := o.ApplyJobs(ctx, actor, app.JobRequest{Action: action}, []int64{job})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	jobOf := func(t *testing.T, p *servicetest.Product, id uuid.UUID) int64 {
		t.Helper()
		op, err := db.GetOperation(ctx, p.Pool, id)
		if err != nil {
			t.Fatal(err)
		}
		return op.JobID
	}

	t.Run("a cancel releases the reservation once and ends cancelled", func(t *testing.T) {
		t.Parallel()
		p := servicetest.New(t, servicetest.Options{}) // no workers yet: the job waits
		p.Sim.SetChaos(sim.Chaos{Down: true})
		doc := placeOrder(t, p, "cancel-1")
		id := uuid.MustParse(doc["id"].(string))
		reserve := app.StepKey(id, app.ReserveStepName("sku-tea"))
		if doc["status"] != "queued" || p.Sim.InventoryEffects(reserve) != 1 {
			t.Fatalf("captured at the charge: %v, %d reservations", doc, p.Sim.InventoryEffects(reserve))
		}
		o := newOperator(p)
		res := apply(t, o, app.ActionCancel, jobOf(t, p, id))
		if len(res.Changed) != 1 || len(res.Compensating) != 1 {
			t.Fatalf("cancel: %+v", res)
		}
		// The cancel is recorded, not yet done: nothing is released until
		// the worker does it.
		if got, _ := db.GetOperation(ctx, p.Pool, id); got.Status.Terminal() || !got.CancelRequested() {
			t.Fatalf("after the cancel: %s, cancel requested %v", got.Status, got.CancelRequested())
		}
		p.StartWorkers(2)
		op := ended(t, p, id)
		ref := p.Sim.ReservationID(reserve)
		if op.Status != app.StatusCancelled || p.Sim.Releases(ref) != 1 || p.Sim.Effects(app.StepKey(id, app.StepCharge)) != 0 {
			t.Fatalf("ended %s, released %d, charged %d", op.Status, p.Sim.Releases(ref), p.Sim.Effects(app.StepKey(id, app.StepCharge)))
		}
		if n := p.Count(`SELECT count(*) FROM admin_audit_log WHERE action = 'job.cancel'`); n != 1 {
			t.Fatalf("%d audit entries", n)
		}
		// A retry of an order that ended is refused: its keys are spent.
		if res := apply(t, o, app.ActionRetry, op.JobID); len(res.Changed) != 0 {
			t.Fatalf("retry of an ended order: %+v", res)
		}
	})

	t.Run("a cancel of an order whose charge went through ends it succeeded", func(t *testing.T) {
		t.Parallel()
		p := servicetest.New(t, servicetest.Options{SyncTimeoutOnHold: true})
		id := app.OperationID("orders", "cancel-2")
		charge := app.StepKey(id, app.StepCharge)
		p.Sim.Hold(charge) // the charge is made, its answer never reaches the sync call
		doc := placeOrder(t, p, "cancel-2")
		if doc["status"] != "queued" || p.Sim.Effects(charge) != 1 {
			t.Fatalf("captured with the charge's outcome unknown: %v, %d charges", doc, p.Sim.Effects(charge))
		}
		p.Sim.Release(charge)
		res := apply(t, newOperator(p), app.ActionCancel, jobOf(t, p, id))
		if len(res.Compensating) != 1 {
			t.Fatalf("cancel: %+v", res)
		}
		p.StartWorkers(2)
		op := ended(t, p, id)
		ref := p.Sim.ReservationID(app.StepKey(id, app.ReserveStepName("sku-tea")))
		if op.Status != app.StatusSucceeded || p.Sim.Releases(ref) != 0 || p.Sim.Effects(charge) != 1 {
			t.Fatalf("ended %s, released %d, charged %d; the customer paid, so it must succeed with its stock",
				op.Status, p.Sim.Releases(ref), p.Sim.Effects(charge))
		}
	})

	t.Run("retry and the reconciler resume an open order whose job ended", func(t *testing.T) {
		t.Parallel()
		p := servicetest.New(t, servicetest.Options{ReconcileEvery: 50 * time.Millisecond})
		p.Sim.SetChaos(sim.Chaos{Down: true})
		first := uuid.MustParse(placeOrder(t, p, "resume-1")["id"].(string))
		second := uuid.MustParse(placeOrder(t, p, "resume-2")["id"].(string))
		p.Sim.SetChaos(sim.Chaos{})
		for _, id := range []uuid.UUID{first, second} {
			if _, err := p.Pool.Exec(ctx, `UPDATE river_job SET state = 'discarded', finalized_at = now() WHERE id = $1`,
				jobOf(t, p, id)); err != nil {
				t.Fatal(err)
			}
		}
		o := newOperator(p)
		if _, err := o.Resolve(ctx, actor, app.ResolveRequest{OperationID: first, Outcome: app.ResolveFailed,
			Reason: "checked"}); app.ErrorCode(err) != app.ECONFLICT {
			t.Fatalf("resolve of an order: %v, want it refused", err)
		}
		if res := apply(t, o, app.ActionRetry, jobOf(t, p, first)); len(res.Changed) != 1 {
			t.Fatalf("retry: %+v", res)
		}
		p.StartWorkers(2) // the first by the retry, the second by the reconciler
		for _, id := range []uuid.UUID{first, second} {
			op := ended(t, p, id)
			reserve := app.StepKey(id, app.ReserveStepName("sku-tea"))
			if op.Status != app.StatusSucceeded || p.Sim.InventoryEffects(reserve) != 1 || p.Sim.Effects(app.StepKey(id, app.StepCharge)) != 1 {
				t.Fatalf("%s ended %s: %d reservations, %d charges", id, op.Status, p.Sim.InventoryEffects(reserve),
					p.Sim.Effects(app.StepKey(id, app.StepCharge)))
			}
		}
	})
}
