package sim_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/spillway/spillway/app/sim"
)

// TestChaosIsPerDependency: each dependency has chaos of its own; taking
// one down leaves the other's every route up.
func TestChaosIsPerDependency(t *testing.T) {
	t.Parallel()
	down := sim.Chaos{Down: true}
	tests := []struct {
		name         string
		pay, inv     sim.Chaos
		payUp, invUp bool
	}{
		{name: "payment down", pay: down, payUp: false, invUp: true},
		{name: "inventory down", inv: down, payUp: true, invUp: false},
		{name: "payment failing at rate 1", pay: sim.Chaos{ErrorRate: 1}, payUp: false, invUp: true},
		{name: "inventory failing at rate 1", inv: sim.Chaos{ErrorRate: 1}, payUp: true, invUp: false},
		{name: "both down", pay: down, inv: down},
		{name: "both up", payUp: true, invUp: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, srv := start(t, sim.Config{Rand: func() float64 { return 0.5 }, Stock: map[string]int{"sku-a": 5}})
			// A reservation made before the chaos, to release during it.
			id := decode[reservationJSON](t, reserve(t, srv, "before", reserveBody("sku-a", 1)).body).ID
			s.SetChaos(tt.pay)
			s.SetInventoryChaos(tt.inv)

			wantPay, wantInv := statusIf(tt.payUp), statusIf(tt.invUp)
			if r := charge(t, srv, "c", chargeBody(100)); r.status != wantPay {
				t.Errorf("charge: %d, want %d", r.status, wantPay)
			}
			if r := get(t, srv, http.MethodGet, "/charges/c"); r.status != wantPay {
				t.Errorf("charge lookup: %d, want %d", r.status, wantPay)
			}
			if r := reserve(t, srv, "r", reserveBody("sku-a", 1)); r.status != wantInv {
				t.Errorf("reserve: %d, want %d", r.status, wantInv)
			}
			if r := get(t, srv, http.MethodGet, "/inventory/reservations/by-key/r"); r.status != wantInv {
				t.Errorf("reservation lookup: %d, want %d", r.status, wantInv)
			}
			if r := get(t, srv, http.MethodDelete, "/inventory/reservations/"+id); r.status != wantInv {
				t.Errorf("release: %d, want %d", r.status, wantInv)
			}
			for _, path := range []string{"/inventory/stock/sku-a", "/inventory/stock?skus=sku-a"} {
				if r := get(t, srv, http.MethodGet, path); r.status != wantInv {
					t.Errorf("%s: %d, want %d", path, r.status, wantInv)
				}
			}
			// Health follows down only, not error_rate.
			if r := get(t, srv, http.MethodGet, "/health"); r.status != statusIf(!tt.pay.Down) {
				t.Errorf("/health: %d", r.status)
			}
			if r := get(t, srv, http.MethodGet, "/inventory/health"); r.status != statusIf(!tt.inv.Down) {
				t.Errorf("/inventory/health: %d", r.status)
			}

			// A 503 did nothing: no reservation, no release, no closed key.
			wantEffects, wantStock, wantReleases := 0, 4, 0
			if tt.invUp {
				wantEffects, wantStock, wantReleases = 1, 4, 1 // took one, gave one back
			}
			if n := s.InventoryEffects("r"); n != wantEffects {
				t.Errorf("reservation effects = %d, want %d", n, wantEffects)
			}
			if n := s.Releases(id); n != wantReleases {
				t.Errorf("releases = %d, want %d", n, wantReleases)
			}
			if n := available(t, s, "sku-a"); n != wantStock {
				t.Errorf("stock = %d, want %d", n, wantStock)
			}
			if !tt.invUp && s.InventoryClosed("r") {
				t.Error("a lookup answered 503 closed the key")
			}
		})
	}
}

func statusIf(up bool) int {
	if up {
		return http.StatusOK
	}
	return http.StatusServiceUnavailable
}

// TestInventoryFlapsOnItsOwnClock: each dependency's flap schedule starts
// when its own period was set.
func TestInventoryFlapsOnItsOwnClock(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s, srv := start(t, sim.Config{Now: clock.Now})
	s.SetChaos(sim.Chaos{FlapPeriod: time.Second})
	clock.Advance(500 * time.Millisecond)
	s.SetInventoryChaos(sim.Chaos{FlapPeriod: time.Second})

	steps := []struct {
		advance      time.Duration
		payUp, invUp bool
	}{
		{0, true, true},                       // 0.5s / 0s
		{600 * time.Millisecond, false, true}, // 1.1s / 0.6s
		{600 * time.Millisecond, false, false},
		{600 * time.Millisecond, true, false}, // 2.3s / 1.8s
		{600 * time.Millisecond, true, true},  // 2.9s / 2.4s
	}
	for i, st := range steps {
		clock.Advance(st.advance)
		if r := get(t, srv, http.MethodGet, "/health"); r.status != statusIf(st.payUp) {
			t.Errorf("step %d: /health %d", i, r.status)
		}
		if r := get(t, srv, http.MethodGet, "/inventory/health"); r.status != statusIf(st.invUp) {
			t.Errorf("step %d: /inventory/health %d", i, r.status)
		}
	}
}

// TestInventoryDeclineRateAnswersOutOfStock: decline_rate on the inventory
// is its business "no", out_of_stock, and takes nothing.
func TestInventoryDeclineRateAnswersOutOfStock(t *testing.T) {
	t.Parallel()
	s, srv := start(t, sim.Config{Rand: func() float64 { return 0.5 }, Stock: map[string]int{"sku-a": 5}})
	s.SetInventoryChaos(sim.Chaos{DeclineRate: 0.6})
	r := reserve(t, srv, "k", reserveBody("sku-a", 1))
	if got := decode[reservationJSON](t, r.body); r.status != http.StatusConflict || got.Status != sim.StatusOutOfStock {
		t.Errorf("answer = %d %s", r.status, r.body)
	}
	if n := available(t, s, "sku-a"); n != 5 {
		t.Errorf("stock = %d, want 5", n)
	}
	// The payment's decline_rate is the payment's.
	if r := charge(t, srv, "c", chargeBody(100)); r.status != http.StatusOK {
		t.Errorf("charge = %d", r.status)
	}
}

func TestInventoryControlAPI(t *testing.T) {
	t.Parallel()
	s, srv := start(t, sim.Config{Stock: map[string]int{"sku-a": 5}})

	r := control(t, srv.URL, http.MethodPut, "/control/inventory", `{"latency_ms": 5, "down": true}`)
	if got := decode[chaosJSON](t, r.body); r.status != http.StatusOK || got != (chaosJSON{LatencyMS: 5, Down: true, DownNow: true}) {
		t.Fatalf("PUT /control/inventory = %d %s", r.status, r.body)
	}
	if got := decode[chaosJSON](t, control(t, srv.URL, http.MethodGet, "/control", "").body); got != (chaosJSON{}) {
		t.Errorf("payment chaos changed: %+v", got)
	}
	if got, want := s.InventoryChaos(), (sim.Chaos{Latency: 5 * time.Millisecond, Down: true}); got != want {
		t.Errorf("InventoryChaos() = %+v, want %+v", got, want)
	}
	if r := control(t, srv.URL, http.MethodPut, "/control/inventory", `{"latency": 5}`); r.status != http.StatusBadRequest {
		t.Errorf("unknown field: %d", r.status)
	}
	control(t, srv.URL, http.MethodPut, "/control", `{"error_rate": 1}`)
	if got := decode[chaosJSON](t, control(t, srv.URL, http.MethodGet, "/control/inventory", "").body); got != (chaosJSON{LatencyMS: 5, Down: true, DownNow: true}) {
		t.Errorf("inventory chaos after a payment PUT: %+v", got)
	}

	control(t, srv.URL, http.MethodPut, "/control/inventory", `{"latency_ms": 0, "down": false}`)
	id := decode[reservationJSON](t, reserve(t, srv, "k/1", reserveBody("sku-a", 2)).body).ID
	get(t, srv, http.MethodDelete, "/inventory/reservations/"+id)
	eff := control(t, srv.URL, http.MethodGet, "/control/inventory/effects/k/1", "")
	want := sim.InventoryKeyStats{Key: "k/1", Reservations: 1, Calls: 1, Status: "released", ReservationID: id,
		SKU: "sku-a", Quantity: 2, Seq: 1, Releases: 1, ReleaseCalls: 1}
	if got := decode[sim.InventoryKeyStats](t, eff.body); eff.status != http.StatusOK || got != want {
		t.Errorf("effects = %d %s, want %+v", eff.status, eff.body, want)
	}
	if r := control(t, srv.URL, http.MethodGet, "/control/inventory/effects/nope", ""); r.status != http.StatusNotFound {
		t.Errorf("effects of an unseen key: %d", r.status)
	}
	type statsJSON struct {
		Reservations int            `json:"reservations"`
		OutOfStock   int            `json:"out_of_stock"`
		Calls        int            `json:"calls"`
		Keys         int            `json:"keys"`
		Releases     int            `json:"releases"`
		ReleaseCalls int            `json:"release_calls"`
		Stock        map[string]int `json:"stock"`
	}
	st := decode[statsJSON](t, control(t, srv.URL, http.MethodGet, "/control/inventory/stats", "").body)
	if st.Reservations != 1 || st.Calls != 1 || st.Keys != 1 || st.Releases != 1 || st.ReleaseCalls != 1 || st.Stock["sku-a"] != 5 {
		t.Errorf("stats = %+v", st)
	}
}

// TestResetClearsBothDependencies, and puts the configured stock back.
func TestResetClearsBothDependencies(t *testing.T) {
	t.Parallel()
	s, srv := start(t, sim.Config{Stock: map[string]int{"sku-a": 5}})
	reserve(t, srv, "k", reserveBody("sku-a", 2))
	charge(t, srv, "c", chargeBody(100))
	s.SetStock("sku-b", 9)
	s.SetChaos(sim.Chaos{Down: true})
	s.SetInventoryChaos(sim.Chaos{Down: true})

	if r := control(t, srv.URL, http.MethodPost, "/control/reset", ""); r.status != http.StatusOK {
		t.Fatalf("reset: %d", r.status)
	}
	if s.Chaos() != (sim.Chaos{}) || s.InventoryChaos() != (sim.Chaos{}) {
		t.Errorf("chaos after reset: %+v, %+v", s.Chaos(), s.InventoryChaos())
	}
	if _, seen := s.InventoryKey("k"); seen || s.TotalReservations() != 0 || s.Effects("c") != 0 {
		t.Error("counters survived reset")
	}
	if n := available(t, s, "sku-a"); n != 5 {
		t.Errorf("stock = %d, want 5", n)
	}
	if _, ok := s.Available("sku-b"); ok {
		t.Error("a SKU added by SetStock survived reset")
	}
	if r := reserve(t, srv, "k", reserveBody("sku-a", 2)); r.status != http.StatusOK || s.InventoryEffects("k") != 1 {
		t.Errorf("the key after reset: %d, effects %d", r.status, s.InventoryEffects("k"))
	}
}
