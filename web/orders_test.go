package web_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/apptest"
	"github.com/spillway/spillway/app/sim"
)

func (h *harness) order(key, body string) response {
	h.t.Helper()
	return h.do(http.MethodPost, "/api/v1/orders", "application/json", key, []byte(body))
}

func orderKey(key string) string { return app.OperationID("orders", key).String() }

func TestOrders(t *testing.T) {
	t.Parallel()

	t.Run("succeeds synchronously, one effect per step", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, harnessOpts{})
		h.StockCatalog()
		r := h.order("o-ok", `{"lines": [{"sku": "sku-tea", "quantity": 2}, {"sku": "sku-mug", "quantity": 1}], "currency": "usd"}`)
		doc := r.json(t)
		if r.status != http.StatusCreated || doc["kind"] != "order" || doc["amount"] != 2100.0 || doc["mode"] != "sync" {
			t.Fatalf("order: %d %s", r.status, r.body)
		}
		steps := doc["steps"].([]any)
		if len(steps) != 3 {
			t.Fatalf("steps %v", steps)
		}
		for _, s := range steps {
			if st := s.(map[string]any); st["status"] != "succeeded" || st["mode"] != "sync" {
				t.Errorf("step %v", st)
			}
		}
		id := app.OperationID("orders", "o-ok")
		if h.sim.InventoryEffects(app.StepKey(id, "reserve:sku-tea")) != 1 || h.sim.Effects(app.StepKey(id, app.StepCharge)) != 1 {
			t.Fatal("a step took effect other than once")
		}
		// The same request again is the same answer, and nothing more happens.
		again := h.order("o-ok", `{"currency": "USD", "lines": [{"sku": "sku-tea", "quantity": 2}, {"sku": "sku-mug", "quantity": 1}]}`)
		if again.status != http.StatusCreated || again.header.Get("Idempotent-Replayed") != "true" ||
			h.sim.Effects(app.StepKey(id, app.StepCharge)) != 1 {
			t.Fatalf("replay: %d %v", again.status, again.header)
		}
		if other := h.order("o-ok", `{"lines": [{"sku": "sku-tea", "quantity": 3}], "currency": "usd"}`); other.status != http.StatusUnprocessableEntity {
			t.Fatalf("the key reused for another order: %d %s", other.status, other.body)
		}
	})

	t.Run("out of stock: 422, nothing charged, the earlier line released", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, harnessOpts{})
		h.StockCatalog()
		r := h.order("o-oos", `{"lines": [{"sku": "sku-tea", "quantity": 1}, {"sku": "sku-sold-out", "quantity": 1}], "currency": "usd"}`)
		if r.status != http.StatusUnprocessableEntity || !strings.Contains(string(r.body), "out-of-stock") {
			t.Fatalf("order: %d %s", r.status, r.body)
		}
		id := app.OperationID("orders", "o-oos")
		if h.sim.Calls(app.StepKey(id, app.StepCharge)) != 0 {
			t.Fatal("an out-of-stock order called the payment provider")
		}
		if ref := h.sim.ReservationID(app.StepKey(id, "reserve:sku-tea")); h.sim.Releases(ref) != 1 {
			t.Fatalf("tea released %d times", h.sim.Releases(ref))
		}
		if doc := h.operation(orderKey("o-oos")); doc["status"] != "declined" || doc["error"].(map[string]any)["code"] != "out_of_stock" {
			t.Fatalf("document %v", doc)
		}
	})

	t.Run("payment declined: 402, every reservation released once", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, harnessOpts{})
		h.StockCatalog()
		r := h.order("o-dec", `{"lines": [{"sku": "sku-kettle", "quantity": 1}], "currency": "usd"}`)
		if r.status != http.StatusPaymentRequired {
			t.Fatalf("order: %d %s", r.status, r.body)
		}
		id := app.OperationID("orders", "o-dec")
		if ref := h.sim.ReservationID(app.StepKey(id, "reserve:sku-kettle")); h.sim.Releases(ref) != 1 {
			t.Fatalf("kettle released %d times", h.sim.Releases(ref))
		}
	})

	t.Run("inventory down: captured at the first step, finished once by a worker", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, harnessOpts{workers: 1})
		h.StockCatalog()
		h.sim.SetInventoryChaos(sim.Chaos{Down: true})
		r := h.order("o-down", `{"lines": [{"sku": "sku-tea", "quantity": 1}], "currency": "usd"}`)
		doc := r.json(t)
		if r.status != http.StatusAccepted || r.header.Get("Location") != "/api/v1/operations/"+orderKey("o-down") ||
			doc["steps"].([]any)[0].(map[string]any)["status"] != "pending" {
			t.Fatalf("order while the inventory is down: %d %s", r.status, r.body)
		}
		h.sim.SetInventoryChaos(sim.Chaos{})
		done := h.waitStatus(orderKey("o-down"), app.StatusSucceeded)
		id := app.OperationID("orders", "o-down")
		if h.sim.InventoryEffects(app.StepKey(id, "reserve:sku-tea")) != 1 || h.sim.Effects(app.StepKey(id, app.StepCharge)) != 1 {
			t.Fatalf("after the worker: %v", done)
		}
	})

	t.Run("past the orders' backlog bound: 503, nothing written", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, harnessOpts{orderMaxBacklog: 2})
		h.StockCatalog()
		h.sim.SetInventoryChaos(sim.Chaos{Down: true}) // refused before any effect: captured at the first step
		for _, key := range []string{"o-bl-1", "o-bl-2"} {
			if r := h.order(key, `{"lines": [{"sku": "sku-tea", "quantity": 1}], "currency": "usd"}`); r.status != http.StatusAccepted {
				t.Fatalf("%s: %d %s", key, r.status, r.body)
			}
		}
		apptest.WaitFor(t, "the bound to read the orders' backlog", func() bool {
			b, ok := h.Service.Backlog().Last(app.DepInventory)
			return ok && b.Jobs >= 2
		})
		r := h.order("o-bl-3", `{"lines": [{"sku": "sku-tea", "quantity": 1}], "currency": "usd"}`)
		if r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.body), "nothing was done") {
			t.Fatalf("over the bound: %d %s", r.status, r.body)
		}
		if n := h.count(`SELECT count(*) FROM operations WHERE id = $1`, orderKey("o-bl-3")); n != 0 {
			t.Fatalf("a refused order left %d operations", n)
		}
	})

	t.Run("bad input is refused and writes nothing", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, harnessOpts{})
		h.StockCatalog()
		for key, body := range map[string]string{
			"o-bad-price": `{"lines": [{"sku": "sku-tea", "quantity": 1, "price": 1}], "currency": "usd"}`,
			"o-bad-sku":   `{"lines": [{"sku": "sku-unicorn", "quantity": 1}], "currency": "usd"}`,
			"o-bad-qty":   `{"lines": [{"sku": "sku-tea", "quantity": 0}], "currency": "usd"}`,
			"o-bad-dup":   `{"lines": [{"sku": "sku-tea", "quantity": 1}, {"sku": "sku-tea", "quantity": 1}], "currency": "usd"}`,
		} {
			r := h.order(key, body)
			if r.status != http.StatusUnprocessableEntity || r.header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s: %d %s", key, r.status, r.body)
			}
			if n := h.count(`SELECT count(*) FROM operations WHERE id = $1`, orderKey(key)); n != 0 {
				t.Errorf("%s left %d operations", key, n)
			}
		}
		if n := h.sim.TotalReservations(); n != 0 {
			t.Fatalf("bad orders reserved %d times", n)
		}
	})
}
