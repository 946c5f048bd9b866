package app_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/apptest"
	"github.com/spillway/spillway/app/provider"
	"github.com/spillway/spillway/app/sim"
	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/db/dbtest"
)

// orderRig is an order's calls against the real simulator on loopback.
type orderRig struct {
	sim   *sim.Sim
	calls *app.StepCalls
}

func newOrderRig(t *testing.T) *orderRig {
	t.Helper()
	s := sim.New(sim.Config{})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	t.Cleanup(s.Reset) // first: answers a failed test left held are sent
	pay, err := provider.NewHTTP(provider.HTTPConfig{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	inv, err := provider.NewInventoryHTTP(provider.InventoryHTTPConfig{BaseURL: srv.URL + sim.InventoryPath})
	if err != nil {
		t.Fatal(err)
	}
	return &orderRig{sim: s, calls: &app.StepCalls{Kinds: orderKinds(t, inv, pay), Path: "async"}}
}

// orderKinds declares orders calling inv and pay; their catalog is never
// read by calls.
func orderKinds(t *testing.T, inv app.InventoryService, pay app.PaymentProvider) *app.Kinds {
	t.Helper()
	order, err := app.NewOrderKind(app.OrderKindConfig{Inventory: inv, Payments: pay, Catalog: db.NewStore(nil)})
	if err != nil {
		t.Fatal(err)
	}
	kinds, err := app.NewKinds(order)
	if err != nil {
		t.Fatal(err)
	}
	return kinds
}

// newOrder is an order for lines at unit prices, total amount.
func newOrder(key string, amount int64, lines ...app.PricedLine) *app.Operation {
	var ls []app.OrderLine
	for _, l := range lines {
		ls = append(ls, app.OrderLine{SKU: l.SKU, Quantity: l.Quantity})
	}
	now := time.Now().UTC()
	return &app.Operation{ID: app.OperationID("orders", key), Kind: app.KindOrder, Status: app.StatusProcessing,
		Payment: app.PaymentRequest{Amount: amount, Currency: "usd"}, CreatedAt: now, UpdatedAt: now,
		Lines: lines, Steps: app.NewOrderSteps(ls)}
}

// drive plays op to its end, as a worker would, with every fault retried
// at once: the simulator's answers decide everything.
func (r *orderRig) drive(t *testing.T, ctx context.Context, op *app.Operation) app.Ending {
	t.Helper()
	for range 50 {
		a := app.NextStepAction(op.Steps, false)
		if a.Kind == app.ActFinish {
			return a.Ending
		}
		if err := r.calls.Do(ctx, op, a, 5*time.Second); err != nil {
			var pe *app.ProviderError
			if !errors.As(err, &pe) {
				t.Fatalf("%s: %v", a, err)
			}
		}
	}
	t.Fatalf("order never ended: %+v", op.Steps)
	return app.Ending{}
}

func TestOrderCallsAgainstTheSimulator(t *testing.T) {
	t.Parallel()
	tea := app.PricedLine{SKU: "sku-tea", Quantity: 2, UnitPrice: 450}
	mug := app.PricedLine{SKU: "sku-mug", Quantity: 1, UnitPrice: 1200}
	soldOut := app.PricedLine{SKU: "sku-sold-out", Quantity: 1, UnitPrice: 9900}
	ctx := context.Background()

	t.Run("reserves each line once, then charges once", func(t *testing.T) {
		t.Parallel()
		r := newOrderRig(t)
		op := newOrder("ok-1", 2100, tea, mug)
		if end := r.drive(t, ctx, op); end.Status != app.StatusSucceeded {
			t.Fatalf("ended %+v, steps %+v", end, op.Steps)
		}
		for _, s := range op.Steps {
			key := app.StepKey(op.ID, s.Name)
			effects := r.sim.Effects(key)
			if s.Compensable {
				effects = r.sim.InventoryEffects(key)
			}
			if effects != 1 || s.Status != app.StepSucceeded || s.Ref == "" {
				t.Errorf("step %s: %+v, %d effects", s.Name, s, effects)
			}
		}
		if left, _ := r.sim.Available("sku-tea"); left != 998 {
			t.Errorf("tea left %d, want 998", left)
		}
	})

	t.Run("out of stock: declined, the earlier line released, nothing charged", func(t *testing.T) {
		t.Parallel()
		r := newOrderRig(t)
		op := newOrder("oos-1", 10800, tea, soldOut)
		end := r.drive(t, ctx, op)
		if end.Status != app.StatusDeclined || end.Code != "out_of_stock" {
			t.Fatalf("ended %+v", end)
		}
		if r.sim.Effects(app.StepKey(op.ID, app.StepCharge)) != 0 || r.sim.Calls(app.StepKey(op.ID, app.StepCharge)) != 0 {
			t.Fatal("an out-of-stock order called the payment provider")
		}
		ref := op.Steps[0].Ref
		if op.Steps[0].Status != app.StepReleased || r.sim.Releases(ref) != 1 {
			t.Fatalf("tea: %+v, released %d times", op.Steps[0], r.sim.Releases(ref))
		}
		if left, _ := r.sim.Available("sku-tea"); left != 1000 {
			t.Errorf("tea left %d, want all 1000 back", left)
		}
	})

	t.Run("declined charge: every reservation released once", func(t *testing.T) {
		t.Parallel()
		r := newOrderRig(t)
		op := newOrder("dec-1", 1002, app.PricedLine{SKU: "sku-tea", Quantity: 1, UnitPrice: 1002}) // ends in 02: declined
		if end := r.drive(t, ctx, op); end.Status != app.StatusDeclined || end.Code != "declined" {
			t.Fatalf("ended %+v, steps %+v", end, op.Steps)
		}
		if ref := op.Steps[0].Ref; r.sim.Releases(ref) != 1 {
			t.Fatalf("released %d times", r.sim.Releases(ref))
		}
	})

	t.Run("inventory down: a fault, the step waits, nothing happens", func(t *testing.T) {
		t.Parallel()
		r := newOrderRig(t)
		r.sim.SetInventoryChaos(sim.Chaos{Down: true})
		op := newOrder("down-1", 900, tea)
		a := app.NextStepAction(op.Steps, false)
		err := r.calls.Do(ctx, op, a, 5*time.Second)
		var pe *app.ProviderError
		if !errors.As(err, &pe) || op.Steps[0].Status != app.StepPending || op.Steps[0].OutcomeUnknown {
			t.Fatalf("%v, step %+v; want a fault and the step still pending", err, op.Steps[0])
		}
		r.sim.SetInventoryChaos(sim.Chaos{})
		if end := r.drive(t, ctx, op); end.Status != app.StatusSucceeded {
			t.Fatalf("after recovery: %+v", end)
		}
		if n := r.sim.InventoryEffects(app.StepKey(op.ID, op.Steps[0].Name)); n != 1 {
			t.Fatalf("reserved %d times", n)
		}
	})

	t.Run("a reservation whose answer is lost is looked up, never made twice", func(t *testing.T) {
		t.Parallel()
		r := newOrderRig(t)
		op := newOrder("lost-1", 900, tea)
		key := app.StepKey(op.ID, op.Steps[0].Name)
		r.sim.Hold(key)
		// The call's deadline passes once the simulator holds its answer:
		// the reservation was made, the caller did not hear.
		cctx, expire := apptest.ExpiringContext()
		go func() {
			// Bounded, so a regression fails the test instead of hanging it.
			for end := time.Now().Add(apptest.Patience); r.sim.Held(key) == 0 && time.Now().Before(end); {
				time.Sleep(time.Millisecond)
			}
			expire()
		}()
		err := r.calls.Do(cctx, op, app.NextStepAction(op.Steps, false), 5*time.Second)
		r.sim.Release(key)
		if err == nil || !op.Steps[0].OutcomeUnknown {
			t.Fatalf("%v, step %+v; want an unknown outcome", err, op.Steps[0])
		}
		if a := app.NextStepAction(op.Steps, false); a.Kind != app.ActLookUp {
			t.Fatalf("next %s, want a lookup", a)
		}
		if end := r.drive(t, ctx, op); end.Status != app.StatusSucceeded {
			t.Fatalf("ended %+v", end)
		}
		if n := r.sim.InventoryEffects(key); n != 1 || op.Steps[0].Ref != r.sim.ReservationID(key) {
			t.Fatalf("reserved %d times, step %+v", n, op.Steps[0])
		}
	})
}

// Each step goes through its own dependency's breaker: an inventory outage
// opens the inventory breaker only, after which reservations are not even
// sent, while charges still go through the payment breaker, closed.
func TestOneDependencysOutageOpensOnlyItsBreaker(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	clk := newClock() // held: the inventory breaker stays open until the test ends
	bs, err := app.NewBreakers(app.BreakersConfig{Store: db.NewStore(pool), Instance: "orders", FlushEvery: 20 * time.Millisecond,
		PollEvery: time.Hour, Now: clk.Now, Rand: func() float64 { return 0.5 }})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range app.Dependencies() {
		if err := bs.Register(context.Background(), d.Name, testPolicy(), app.PolicyOverride{}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = bs.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	r := newOrderRig(t)
	r.calls.Breakers = bs
	r.sim.SetInventoryChaos(sim.Chaos{Down: true})
	tea := app.PricedLine{SKU: "sku-tea", Quantity: 1, UnitPrice: 450}
	// More failures than the policy's minimum volume, all of them faults.
	for i := range testPolicy().MinCalls + 5 {
		op := newOrder(fmt.Sprintf("down-%d", i), 450, tea)
		if err := r.calls.Do(context.Background(), op, app.NextStepAction(op.Steps, false), 5*time.Second); err == nil {
			t.Fatal("a reservation succeeded while the inventory was down")
		}
	}
	apptest.WaitFor(t, "the inventory breaker to open", func() bool {
		b, _ := bs.Get(app.DepInventory)
		return b.State == app.BreakerOpen
	})
	if b, _ := bs.Get(app.DepPayment); b.State != app.BreakerClosed {
		t.Fatalf("the payment breaker is %s after an inventory outage", b.State)
	}

	// Reservations are no longer sent.
	op := newOrder("held-back", 450, tea)
	if err := r.calls.Do(context.Background(), op, app.NextStepAction(op.Steps, false), 5*time.Second); !errors.Is(err, app.ErrBreakerOpen) {
		t.Fatalf("a reservation with the inventory breaker open: %v, want ErrBreakerOpen", err)
	}
	if r.sim.InventoryCalls(app.StepKey(op.ID, op.Steps[0].Name)) != 0 || op.Steps[0].Status != app.StepPending || op.Steps[0].Attempts != 0 {
		t.Fatalf("a held-back reservation reached the inventory or was counted: %+v", op.Steps[0])
	}
	// Charges still are.
	paid := newOrder("paid", 450, tea)
	paid.Steps[0].Status, paid.Steps[0].Ref = app.StepSucceeded, "res_x"
	if err := r.calls.Do(context.Background(), paid, app.NextStepAction(paid.Steps, false), 5*time.Second); err != nil {
		t.Fatalf("a charge with only the inventory breaker open: %v", err)
	}
	if paid.Steps[1].Status != app.StepSucceeded || r.sim.Effects(app.StepKey(paid.ID, app.StepCharge)) != 1 {
		t.Fatalf("charge step %+v", paid.Steps[1])
	}
}
