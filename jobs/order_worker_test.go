package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/apptest"
	"github.com/spillway/spillway/app/sim"
	"github.com/spillway/spillway/cmd/spillway/service/servicetest"
	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/jobs"
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

// Until the reconciler and operator actions know orders' steps, they leave
// orders alone rather than conclude from the operation's own key, which no
// step uses: a discarded order job is not failed by the reconciler (its
// charge may have gone through under the step's key), and a cancel or
// retry is refused with the reason, changing nothing.
func TestReconcilerAndOperatorLeaveOrdersAlone(t *testing.T) {
	t.Parallel()
	p := servicetest.New(t, servicetest.Options{}) // no workers: the job waits
	ctx := context.Background()
	op := captureOrder(t, p, "alone-1", app.PricedLine{SKU: "sku-tea", Quantity: 1, UnitPrice: 450})
	op.Steps[0].Status, op.Steps[0].Ref = app.StepSucceeded, "res_1"
	op.Steps[1].Status, op.Steps[1].OutcomeUnknown = app.StepProcessing, true
	op.Attempts = 2
	op.TrackUnknown(app.StorageTime(time.Now()))
	if ok, err := db.UpdateOpenOperation(ctx, p.Pool, op); err != nil || !ok {
		t.Fatalf("set up: %v %v", ok, err)
	}

	operator, err := app.NewOperator(app.OperatorConfig{Store: db.NewStore(p.Pool), Jobs: p.River, Provider: p.Provider})
	if err != nil {
		t.Fatal(err)
	}
	refused := func(action app.JobAction) {
		t.Helper()
		res, err := operator.ApplyJobs(ctx, app.Actor{Email: "ops@example.com"}, app.JobRequest{Action: action}, []int64{op.JobID})
		if err != nil || len(res.Refused) != 1 || len(res.Changed)+len(res.Settled) != 0 {
			t.Fatalf("%s of an order: %+v %v, want it refused", action, res, err)
		}
	}
	refused(app.ActionCancel)
	if _, err := operator.Resolve(ctx, app.Actor{Email: "ops@example.com"}, app.ResolveRequest{OperationID: op.ID,
		Outcome: app.ResolveFailed, Reason: "checked"}); app.ErrorCode(err) != app.ECONFLICT {
		t.Fatalf("resolve of an order: %v, want it refused", err)
	}

	// River gives up on the job; the reconciler leaves the order open.
	if _, err := p.Pool.Exec(ctx, `UPDATE river_job SET state = 'discarded', finalized_at = now() WHERE id = $1`, op.JobID); err != nil {
		t.Fatal(err)
	}
	refused(app.ActionRetry)
	rw := jobs.NewReconcileWorker(jobs.Config{Pool: p.Pool, Provider: p.Provider, CallTimeout: time.Second, Now: time.Now})
	if err := rw.Work(ctx, &river.Job[jobs.ReconcileArgs]{}); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetOperation(ctx, p.Pool, op.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.Terminal() || !got.MayHaveCharged() {
		t.Fatalf("after the reconciler the order is %s (unknown since %v); want it left open", got.Status, got.OutcomeUnknownSince)
	}
}
