package sim_test

import (
	"bytes"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spillway/spillway/app/apptest"
	"github.com/spillway/spillway/app/sim"
)

func TestDefaultStockIsServed(t *testing.T) {
	t.Parallel()
	s, _ := start(t, sim.Config{})
	want := sim.DefaultStock()
	if n := len(want); n < 4 || n > 6 {
		t.Errorf("default stock has %d SKUs, want 4 to 6", n)
	}
	for sku, n := range want {
		if got := available(t, s, sku); got != n {
			t.Errorf("%s: %d in stock, want %d", sku, got, n)
		}
	}
	// Callers cannot change the default by editing what they got.
	want["sku-tea"] = -1
	if sim.DefaultStock()["sku-tea"] < 0 {
		t.Error("DefaultStock shares its map")
	}
}

func TestReserveTakesStockAndARepeatedKeyReplays(t *testing.T) {
	t.Parallel()
	s, srv := start(t, sim.Config{Stock: map[string]int{"sku-a": 10}})
	first := reserve(t, srv, "op-1:reserve:sku-a", reserveBody("sku-a", 3))
	if first.status != http.StatusOK {
		t.Fatalf("status = %d, body %s", first.status, first.body)
	}
	got := decode[reservationJSON](t, first.body)
	if got.Status != sim.StatusReserved || !strings.HasPrefix(got.ID, "rs_") || got.SKU != "sku-a" || got.Quantity != 3 {
		t.Errorf("answer = %+v", got)
	}
	if n := available(t, s, "sku-a"); n != 7 {
		t.Errorf("stock = %d, want 7", n)
	}
	// Another body under the same key still gets the first answer, and
	// takes nothing more.
	second := reserve(t, srv, "op-1:reserve:sku-a", reserveBody("sku-a", 5))
	if second.status != http.StatusOK || !bytes.Equal(first.body, second.body) {
		t.Errorf("replay = %d %s, want %s", second.status, second.body, first.body)
	}
	if n := available(t, s, "sku-a"); n != 7 {
		t.Errorf("stock after replay = %d, want 7", n)
	}
	st, _ := s.InventoryKey("op-1:reserve:sku-a")
	want := sim.InventoryKeyStats{Key: "op-1:reserve:sku-a", Reservations: 1, Calls: 2, Status: sim.StatusReserved,
		ReservationID: got.ID, SKU: "sku-a", Quantity: 3, Seq: 1}
	if st != want {
		t.Errorf("stats = %+v, want %+v", st, want)
	}
}

// TestOutOfStockIsAStoredAnswerThatTakesNothing: the business "no" is the
// key's answer for good, even once stock arrives.
func TestOutOfStockIsAStoredAnswerThatTakesNothing(t *testing.T) {
	t.Parallel()
	s, srv := start(t, sim.Config{Stock: map[string]int{"sku-a": 2}})
	r := reserve(t, srv, "k", reserveBody("sku-a", 3))
	if r.status != http.StatusConflict {
		t.Fatalf("status = %d, body %s", r.status, r.body)
	}
	if got := decode[reservationJSON](t, r.body); got.Status != sim.StatusOutOfStock || got.Available != 2 {
		t.Errorf("answer = %+v, want out_of_stock with 2 available", got)
	}
	if n := available(t, s, "sku-a"); n != 2 || s.InventoryEffects("k") != 0 {
		t.Errorf("stock %d, effects %d: want 2 and 0", n, s.InventoryEffects("k"))
	}
	s.SetStock("sku-a", 100)
	if again := reserve(t, srv, "k", reserveBody("sku-a", 3)); again.status != http.StatusConflict || !bytes.Equal(again.body, r.body) {
		t.Errorf("repeat = %d %s, want the first answer %s", again.status, again.body, r.body)
	}
	if n := available(t, s, "sku-a"); n != 100 {
		t.Errorf("stock = %d, want 100", n)
	}
	if r := reserve(t, srv, "other", reserveBody("sku-a", 3)); r.status != http.StatusOK {
		t.Errorf("a new key: %d %s", r.status, r.body)
	}
}

func TestReserveUnknownSKUDecidesNothing(t *testing.T) {
	t.Parallel()
	s, srv := start(t, sim.Config{Stock: map[string]int{}})
	if r := reserve(t, srv, "k", reserveBody("sku-new", 1)); r.status != http.StatusUnprocessableEntity {
		t.Fatalf("status = %d, body %s", r.status, r.body)
	}
	// Not stored: once the SKU exists the same key reserves.
	s.SetStock("sku-new", 1)
	if r := reserve(t, srv, "k", reserveBody("sku-new", 1)); r.status != http.StatusOK {
		t.Fatalf("after SetStock: %d %s", r.status, r.body)
	}
	if n := s.InventoryEffects("k"); n != 1 {
		t.Errorf("effects = %d, want 1", n)
	}
}

func TestReserveRefusesBadRequests(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, key, body string
	}{
		{"no key", "", reserveBody("sku-tea", 1)},
		{"key too long", strings.Repeat("k", 256), reserveBody("sku-tea", 1)},
		{"zero quantity", "k", reserveBody("sku-tea", 0)},
		{"negative quantity", "k", reserveBody("sku-tea", -1)},
		{"huge quantity", "k", reserveBody("sku-tea", 1_000_001)},
		{"fractional quantity", "k", `{"sku":"sku-tea","quantity":1.5}`},
		{"no sku", "k", `{"quantity":1}`},
		{"comma in sku", "k", reserveBody("a,b", 1)},
		{"trailing data", "k", reserveBody("sku-tea", 1) + "{}"},
		{"not JSON", "k", `sku=sku-tea`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, srv := start(t, sim.Config{})
			r := reserve(t, srv, tt.key, tt.body)
			if r.status != http.StatusBadRequest || r.header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("answer = %d %s %s", r.status, r.header.Get("Content-Type"), r.body)
			}
			if n := s.TotalReservations(); n != 0 {
				t.Errorf("reservations = %d", n)
			}
		})
	}
}

func TestConcurrentSameKeyReservesOnce(t *testing.T) {
	t.Parallel()
	s, srv := start(t, sim.Config{Stock: map[string]int{"sku-a": 100}})
	// A little latency keeps the requests overlapping.
	s.SetInventoryChaos(sim.Chaos{Latency: 20 * time.Millisecond})
	const n = 50
	replies := make([]reply, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { replies[i] = reserve(t, srv, "same-key", reserveBody("sku-a", 7)) })
	}
	wg.Wait()
	for i, r := range replies {
		if r.status != http.StatusOK || !bytes.Equal(r.body, replies[0].body) {
			t.Errorf("reply %d = %d %s, want 200 %s", i, r.status, r.body, replies[0].body)
		}
	}
	if got := s.InventoryEffects("same-key"); got != 1 {
		t.Errorf("effects = %d, want 1", got)
	}
	if got := s.InventoryCalls("same-key"); got != n {
		t.Errorf("calls = %d, want %d", got, n)
	}
	if got := available(t, s, "sku-a"); got != 93 {
		t.Errorf("stock = %d, want 93", got)
	}
}

// TestStockNeverGoesNegative: more buyers than stock, all at once; exactly
// the stock is reserved and everyone else hears out_of_stock.
func TestStockNeverGoesNegative(t *testing.T) {
	t.Parallel()
	const stock, buyers = 10, 40
	s, srv := start(t, sim.Config{Stock: map[string]int{"sku-a": stock}})
	replies := make([]reply, buyers)
	var wg sync.WaitGroup
	for i := range buyers {
		wg.Go(func() { replies[i] = reserve(t, srv, fmt.Sprintf("k-%d", i), reserveBody("sku-a", 1)) })
	}
	wg.Wait()
	counts := map[int]int{}
	for _, r := range replies {
		counts[r.status]++
	}
	if want := map[int]int{http.StatusOK: stock, http.StatusConflict: buyers - stock}; !maps.Equal(counts, want) {
		t.Errorf("statuses = %v, want %v", counts, want)
	}
	if n := available(t, s, "sku-a"); n != 0 {
		t.Errorf("stock = %d, want 0", n)
	}
	if n := s.TotalReservations(); n != stock {
		t.Errorf("reservations = %d, want %d", n, stock)
	}
}

// TestReleaseGivesTheStockBackOnce, however many releases race.
func TestReleaseGivesTheStockBackOnce(t *testing.T) {
	t.Parallel()
	s, srv := start(t, sim.Config{Stock: map[string]int{"sku-a": 10}})
	r := reserve(t, srv, "k", reserveBody("sku-a", 4))
	id := decode[reservationJSON](t, r.body).ID
	if id == "" || s.ReservationID("k") != id {
		t.Fatalf("reservation id %q, sim says %q", id, s.ReservationID("k"))
	}

	const n = 20
	replies := make([]reply, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { replies[i] = get(t, srv, http.MethodDelete, "/inventory/reservations/"+id) })
	}
	wg.Wait()
	for i, r := range replies {
		if got := decode[reservationJSON](t, r.body); r.status != http.StatusOK || got.ID != id || got.Status != sim.StatusReleased {
			t.Errorf("release %d = %d %s", i, r.status, r.body)
		}
	}
	if got := available(t, s, "sku-a"); got != 10 {
		t.Errorf("stock = %d, want 10", got)
	}
	if got := s.Releases(id); got != 1 {
		t.Errorf("releases = %d, want 1", got)
	}
	st, _ := s.InventoryKey("k")
	if st.Status != sim.StatusReleased || st.Releases != 1 || st.ReleaseCalls != n {
		t.Errorf("stats = %+v", st)
	}
	// The key still replays its first answer, and takes nothing again.
	if again := reserve(t, srv, "k", reserveBody("sku-a", 4)); again.status != http.StatusOK || !bytes.Equal(again.body, r.body) {
		t.Errorf("replay after release = %d %s", again.status, again.body)
	}
	if got := available(t, s, "sku-a"); got != 10 {
		t.Errorf("stock after replay = %d, want 10", got)
	}
	if r := get(t, srv, http.MethodDelete, "/inventory/reservations/rs_unknown"); r.status != http.StatusNotFound {
		t.Errorf("unknown reservation: %d %s", r.status, r.body)
	}
}

func TestReservationLookup(t *testing.T) {
	t.Parallel()
	s, srv := start(t, sim.Config{Stock: map[string]int{"sku-a": 5}})
	reserved := decode[reservationJSON](t, reserve(t, srv, "made", reserveBody("sku-a", 2)).body)
	reserve(t, srv, "too-many", reserveBody("sku-a", 9))

	tests := []struct {
		key        string
		wantStatus int
		want       reservationJSON
	}{
		{"made", http.StatusOK, reservationJSON{ID: reserved.ID, Status: "reserved", SKU: "sku-a", Quantity: 2, Reference: "op-1"}},
		{"too-many", http.StatusOK, reservationJSON{Status: "out_of_stock", Available: 3}},
		{"never", http.StatusNotFound, reservationJSON{Status: "not_found"}},
	}
	for _, tt := range tests {
		r := get(t, srv, http.MethodGet, "/inventory/reservations/by-key/"+tt.key)
		if got := decode[reservationJSON](t, r.body); r.status != tt.wantStatus || got != tt.want {
			t.Errorf("lookup %s = %d %+v, want %d %+v", tt.key, r.status, got, tt.wantStatus, tt.want)
		}
	}
	// A not-found lookup closed the key: the reservation that would have
	// landed now holds nothing.
	if r := reserve(t, srv, "never", reserveBody("sku-a", 1)); r.status != http.StatusConflict || !strings.Contains(string(r.body), `"key_closed"`) {
		t.Errorf("reserve after lookup = %d %s, want 409 key_closed", r.status, r.body)
	}
	if !s.InventoryClosed("never") || s.InventoryEffects("never") != 0 || available(t, s, "sku-a") != 3 {
		t.Errorf("closed %v, effects %d, stock %d", s.InventoryClosed("never"), s.InventoryEffects("never"), available(t, s, "sku-a"))
	}
	// Released shows as released.
	get(t, srv, http.MethodDelete, "/inventory/reservations/"+reserved.ID)
	if got := decode[reservationJSON](t, get(t, srv, http.MethodGet, "/inventory/reservations/by-key/made").body); got.Status != "released" {
		t.Errorf("lookup after release = %+v", got)
	}
	if n := s.InventoryLookups("made"); n != 2 {
		t.Errorf("lookups = %d, want 2", n)
	}
}

// TestHoldWorksForReservationKeys: a test can keep a reservation's answer
// back after the stock is taken, to time its caller out at that moment.
func TestHoldWorksForReservationKeys(t *testing.T) {
	t.Parallel()
	s, srv := start(t, sim.Config{Stock: map[string]int{"sku-a": 5}})
	s.Hold("held")
	got := make(chan reply, 1)
	go func() { got <- reserve(t, srv, "held", reserveBody("sku-a", 1)) }()
	apptest.WaitFor(t, "the reservation to reach the hold", func() bool { return s.Held("held") == 1 })
	if s.InventoryEffects("held") != 1 || available(t, s, "sku-a") != 4 {
		t.Fatalf("held before the stock was taken: effects %d", s.InventoryEffects("held"))
	}
	select {
	case r := <-got:
		t.Fatalf("the held answer arrived before Release: %d", r.status)
	default:
	}
	s.Release("held")
	if r := <-got; r.status != http.StatusOK {
		t.Errorf("released answer = %d %s", r.status, r.body)
	}
}

func TestStockReads(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	_, srv := start(t, sim.Config{Now: clock.Now, Stock: map[string]int{"sku-a": 5, "sku-b": 0, "sku c/d": 2}})
	type level struct {
		SKU       string    `json:"sku"`
		Available int       `json:"available"`
		AsOf      time.Time `json:"as_of"`
	}
	type levels struct {
		Stock []level `json:"stock"`
	}
	now := clock.Now()

	if r := get(t, srv, http.MethodGet, "/inventory/stock/sku-a"); r.status != http.StatusOK || decode[level](t, r.body) != (level{"sku-a", 5, now}) {
		t.Errorf("one SKU: %d %s", r.status, r.body)
	}
	if r := get(t, srv, http.MethodGet, "/inventory/stock/sku%20c%2Fd"); r.status != http.StatusOK || decode[level](t, r.body).Available != 2 {
		t.Errorf("escaped SKU: %d %s", r.status, r.body)
	}
	if r := get(t, srv, http.MethodGet, "/inventory/stock/nope"); r.status != http.StatusNotFound || !strings.Contains(string(r.body), `"unknown_sku"`) {
		t.Errorf("unknown SKU: %d %s", r.status, r.body)
	}

	batch := []struct {
		query string
		want  []level
	}{
		{"?skus=sku-b,nope,sku-a,sku-b", []level{{"sku-b", 0, now}, {"sku-a", 5, now}}},
		{"?skus=nope", []level{}},
		{"", []level{{"sku c/d", 2, now}, {"sku-a", 5, now}, {"sku-b", 0, now}}},
	}
	for _, b := range batch {
		r := get(t, srv, http.MethodGet, "/inventory/stock"+b.query)
		got := decode[levels](t, r.body)
		if r.status != http.StatusOK || fmt.Sprint(got.Stock) != fmt.Sprint(b.want) || got.Stock == nil {
			t.Errorf("GET /inventory/stock%s = %d %s, want %v", b.query, r.status, r.body, b.want)
		}
	}
	for _, q := range []string{"?skus=", "?skus=a,,b", "?sku=a", "?skus=a&skus=b", "?skus=" + strings.Repeat("a,", 100) + "a", "?%zz"} {
		if r := get(t, srv, http.MethodGet, "/inventory/stock"+q); r.status != http.StatusBadRequest {
			t.Errorf("GET /inventory/stock%s = %d %s, want 400", q, r.status, r.body)
		}
	}
}

// TestReservationLookupRacingFirstReservationNeverSeesBoth: a lookup and
// the key's first reservation race; either the lookup closed the key and
// nothing was held, or it saw the very reservation that was made.
func TestReservationLookupRacingFirstReservationNeverSeesBoth(t *testing.T) {
	t.Parallel()
	s, srv := start(t, sim.Config{Stock: map[string]int{"sku-a": 1000}})
	const rounds = 200
	var sawClosed, sawReserved int
	for i := range rounds {
		key := fmt.Sprintf("race-%d", i)
		var lr, rr reply
		var wg sync.WaitGroup
		gate := make(chan struct{})
		wg.Go(func() {
			<-gate
			lr = get(t, srv, http.MethodGet, "/inventory/reservations/by-key/"+key)
		})
		wg.Go(func() {
			<-gate
			rr = reserve(t, srv, key, reserveBody("sku-a", 1))
		})
		close(gate)
		wg.Wait()

		effects := s.InventoryEffects(key)
		switch {
		case lr.status == http.StatusNotFound && rr.status == http.StatusConflict && effects == 0:
			sawClosed++
		case lr.status == http.StatusOK && rr.status == http.StatusOK && effects == 1:
			if got, want := decode[reservationJSON](t, lr.body).ID, decode[reservationJSON](t, rr.body).ID; got != want {
				t.Fatalf("round %d: lookup saw %s, reservation answered %s", i, got, want)
			}
			sawReserved++
		default:
			t.Fatalf("round %d: lookup %d %s, reserve %d %s, effects %d", i, lr.status, lr.body, rr.status, rr.body, effects)
		}
	}
	if n := available(t, s, "sku-a"); n != 1000-sawReserved {
		t.Errorf("stock = %d, want %d", n, 1000-sawReserved)
	}
	t.Logf("%d rounds: %d closed first, %d reserved first", rounds, sawClosed, sawReserved)
}

func TestFailNextReservationLookupsFailsExactlyThose(t *testing.T) {
	t.Parallel()
	s, srv := start(t, sim.Config{})
	s.FailNextReservationLookups(2)
	for i, want := range []int{http.StatusServiceUnavailable, http.StatusServiceUnavailable, http.StatusNotFound} {
		if r := get(t, srv, http.MethodGet, "/inventory/reservations/by-key/k"); r.status != want {
			t.Errorf("lookup %d = %d, want %d", i, r.status, want)
		}
	}
	// Charge lookups are not the inventory's.
	s.FailNextReservationLookups(1)
	if r := get(t, srv, http.MethodGet, "/charges/c"); r.status != http.StatusNotFound {
		t.Errorf("charge lookup = %d, want 404", r.status)
	}
	if n := s.InventoryLookups("k"); n != 3 {
		t.Errorf("lookups = %d, want 3", n)
	}
}
