package jobs_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/sim"
	"github.com/spillway/spillway/cmd/spillway/service/servicetest"
)

// orderCase is one shape of order in the failure combinations, with how
// it must end whatever the dependencies did on the way.
type orderCase struct {
	body     string
	skus     []string // the lines, in step order
	status   app.Status
	code     string
	reserved []bool // per line: whether its reservation takes effect
}

var orderCases = []orderCase{
	{`{"lines":[{"sku":"sku-tea","quantity":2},{"sku":"sku-mug","quantity":1}],"currency":"usd"}`,
		[]string{"sku-tea", "sku-mug"}, app.StatusSucceeded, "", []bool{true, true}},
	// 3902 ends in 02: the simulator declines the charge.
	{`{"lines":[{"sku":"sku-kettle","quantity":1}],"currency":"usd"}`,
		[]string{"sku-kettle"}, app.StatusDeclined, "declined", []bool{true}},
	{`{"lines":[{"sku":"sku-tea","quantity":1},{"sku":"sku-sold-out","quantity":1}],"currency":"usd"}`,
		[]string{"sku-tea", "sku-sold-out"}, app.StatusDeclined, "out_of_stock", []bool{true, false}},
	{`{"lines":[{"sku":"sku-mug","quantity":1}],"currency":"usd"}`,
		[]string{"sku-mug"}, app.StatusSucceeded, "", []bool{true}},
}

// With one dependency down and the other up, or both flapping, every
// acknowledged order ends exactly once per step at each dependency, as its
// lines say it must: compensation happens exactly when the order does not
// succeed, and one dependency's outage never touches the other's breaker.
func TestOrderFailureCombinations(t *testing.T) {
	t.Parallel()
	policy := app.DefaultBreakerPolicy()
	policy.Window, policy.MinCalls = time.Second, 4
	policy.OpenWait, policy.MaxOpenWait, policy.ProbeLease = 50*time.Millisecond, 200*time.Millisecond, time.Second
	for _, tc := range []struct {
		name      string
		pay, inv  sim.Chaos
		untouched string // the breaker that must never move; "" none
	}{
		{"inventory down, payment up", sim.Chaos{}, sim.Chaos{Down: true}, app.DepPayment},
		{"payment down, inventory up", sim.Chaos{Down: true}, sim.Chaos{}, app.DepInventory},
		{"both flapping", sim.Chaos{FlapPeriod: 30 * time.Millisecond}, sim.Chaos{FlapPeriod: 45 * time.Millisecond}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := servicetest.New(t, servicetest.Options{Workers: 4, Breaker: &policy})
			p.StockCatalog()
			var before app.Breaker
			if tc.untouched != "" {
				before, _ = p.Breakers.Get(tc.untouched)
			}
			p.Sim.SetChaos(tc.pay)
			p.Sim.SetInventoryChaos(tc.inv)

			const perCase = 6
			ids := make([]uuid.UUID, len(orderCases)*perCase)
			var wg sync.WaitGroup
			for i := range ids {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ids[i] = acknowledge(t, p, fmt.Sprintf("combo-%d", i), orderCases[i%len(orderCases)].body)
				}()
			}
			wg.Wait()
			if t.Failed() {
				return
			}
			p.Sim.SetChaos(sim.Chaos{})
			p.Sim.SetInventoryChaos(sim.Chaos{})
			for i, id := range ids {
				checkOrderEnd(t, p, id, orderCases[i%len(orderCases)])
			}
			if tc.untouched != "" {
				if b, _ := p.Breakers.Get(tc.untouched); b.State != app.BreakerClosed || b.Generation != before.Generation {
					t.Errorf("the %s breaker moved during the other's outage: %s, generation %d → %d",
						tc.untouched, b.State, before.Generation, b.Generation)
				}
			}
		})
	}
}

// acknowledge posts an order until it is acknowledged, as a client does:
// a 503 says nothing was acknowledged, and the same key is sent again.
func acknowledge(t *testing.T, p *servicetest.Product, key, body string) uuid.UUID {
	for range 200 {
		res := p.Do(http.MethodPost, "/api/v1/orders", "application/json", key, []byte(body))
		switch res.Status {
		case http.StatusCreated, http.StatusAccepted:
			var doc struct{ ID string }
			if err := json.Unmarshal(res.Body, &doc); err != nil {
				t.Errorf("%s: %v", key, err)
				return uuid.Nil
			}
			return uuid.MustParse(doc.ID)
		case http.StatusPaymentRequired, http.StatusUnprocessableEntity:
			// Ended synchronously, declined or out of stock: the problem
			// carries the order.
			var prob struct{ Operation *struct{ ID string } }
			if err := json.Unmarshal(res.Body, &prob); err != nil || prob.Operation == nil {
				t.Errorf("%s: %d %s", key, res.Status, res.Body)
				return uuid.Nil
			}
			return uuid.MustParse(prob.Operation.ID)
		case http.StatusServiceUnavailable:
			time.Sleep(10 * time.Millisecond)
		default:
			t.Errorf("%s: %d %s", key, res.Status, res.Body)
			return uuid.Nil
		}
	}
	t.Errorf("%s: never acknowledged", key)
	return uuid.Nil
}

// checkOrderEnd waits for the order to end and checks it ended as c says,
// with one effect per step at each dependency and every reservation made
// released exactly once unless the order succeeded.
func checkOrderEnd(t *testing.T, p *servicetest.Product, id uuid.UUID, c orderCase) {
	t.Helper()
	op := ended(t, p, id)
	if op.Status != c.status || (c.code != "" && (op.Error == nil || op.Error.Code != c.code)) {
		t.Errorf("order %s ended %s (%+v), want %s %s", id, op.Status, op.Error, c.status, c.code)
	}
	charge := app.StepKey(id, app.StepCharge)
	wantCharge := 0
	if c.code != "out_of_stock" {
		wantCharge = 1
	}
	if n := p.Sim.Effects(charge); n != wantCharge {
		t.Errorf("order %s: %d charges, want %d", id, n, wantCharge)
	}
	for i, sku := range c.skus {
		key := app.StepKey(id, app.ReserveStepName(sku))
		want := 0
		if c.reserved[i] {
			want = 1
		}
		if n := p.Sim.InventoryEffects(key); n != want {
			t.Errorf("order %s: %s reserved %d times, want %d", id, sku, n, want)
		}
		wantReleased := 0
		if want == 1 && c.status != app.StatusSucceeded {
			wantReleased = 1
		}
		if ref := p.Sim.ReservationID(key); want == 1 && p.Sim.Releases(ref) != wantReleased {
			t.Errorf("order %s: %s released %d times, want %d", id, sku, p.Sim.Releases(ref), wantReleased)
		}
	}
}
