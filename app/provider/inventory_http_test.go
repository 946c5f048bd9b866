package provider_test

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/apptest"
	"github.com/spillway/spillway/app/provider"
	"github.com/spillway/spillway/app/sim"
)

func newInventory(t *testing.T, base string) *provider.InventoryHTTP {
	t.Helper()
	p, err := provider.NewInventoryHTTP(provider.InventoryHTTPConfig{BaseURL: base})
	if err != nil {
		t.Fatalf("NewInventoryHTTP: %v", err)
	}
	return p
}

// startInventory serves a simulator with stock on loopback and returns
// it with an adapter pointed at its inventory.
func startInventory(t *testing.T, stock map[string]int) (*sim.Sim, *provider.InventoryHTTP) {
	t.Helper()
	s := sim.New(sim.Config{Stock: stock})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, newInventory(t, srv.URL+sim.InventoryPath)
}

func guardCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	t.Cleanup(cancel)
	return ctx
}

func reservation(key, sku string, quantity int) app.Reservation {
	return app.Reservation{IdempotencyKey: key, SKU: sku, Quantity: quantity, Reference: "op-1"}
}

func stockOf(t *testing.T, s *sim.Sim, sku string) int {
	t.Helper()
	n, ok := s.Available(sku)
	if !ok {
		t.Fatalf("sku %q unknown to the simulator", sku)
	}
	return n
}

func TestInventoryHTTPAgainstSim(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		inv, pay    sim.Chaos
		quantity    int
		want        app.ReservationResult // ID checked for a prefix only
		wantKind    app.FaultKind
		wantStatus  int
		wantEffects int
		wantStock   int
	}{
		{name: "reserved", quantity: 3, want: app.ReservationResult{Status: app.ReservationReserved}, wantEffects: 1, wantStock: 2},
		{name: "out of stock is a result", quantity: 6, want: app.ReservationResult{Status: app.ReservationOutOfStock, Available: 5}, wantStock: 5},
		{name: "out of stock by rate", inv: sim.Chaos{DeclineRate: 1}, quantity: 1, want: app.ReservationResult{Status: app.ReservationOutOfStock, Available: 5}, wantStock: 5},
		{name: "down is unavailable", inv: sim.Chaos{Down: true}, quantity: 1, wantKind: app.FaultUnavailable, wantStatus: 503, wantStock: 5},
		{name: "error rate is unavailable", inv: sim.Chaos{ErrorRate: 1}, quantity: 1, wantKind: app.FaultUnavailable, wantStatus: 503, wantStock: 5},
		{name: "payment down is not inventory down", pay: sim.Chaos{Down: true}, quantity: 1, want: app.ReservationResult{Status: app.ReservationReserved}, wantEffects: 1, wantStock: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, p := startInventory(t, map[string]int{"sku-a": 5})
			s.SetInventoryChaos(tt.inv)
			s.SetChaos(tt.pay)
			key := "op-1:reserve:" + strings.ReplaceAll(tt.name, " ", "-")
			res, err := p.Reserve(guardCtx(t), reservation(key, "sku-a", tt.quantity))
			switch {
			case tt.wantKind != "":
				assertFault(t, err, tt.wantKind, tt.wantStatus)
				assertOutcome(t, err, tt.wantKind, false)
			case err != nil:
				t.Fatalf("Reserve: %v", err)
			default:
				gotID := res.ID
				res.ID = ""
				if res != tt.want || (tt.want.Status == app.ReservationReserved) != strings.HasPrefix(gotID, "rs_") {
					t.Errorf("result = %+v (id %q), want %+v", res, gotID, tt.want)
				}
				if res.OutOfStock() != (tt.want.Status == app.ReservationOutOfStock) {
					t.Errorf("OutOfStock() = %v", res.OutOfStock())
				}
			}
			if n := s.InventoryEffects(key); n != tt.wantEffects {
				t.Errorf("effects = %d, want %d", n, tt.wantEffects)
			}
			if n := s.InventoryCalls(key); n != 1 {
				t.Errorf("calls = %d, want 1: the adapter must not retry on its own", n)
			}
			if n := stockOf(t, s, "sku-a"); n != tt.wantStock {
				t.Errorf("stock = %d, want %d", n, tt.wantStock)
			}
		})
	}
}

// TestInventoryHTTPRetryAfterTimeoutReservesOnce: the reservation took
// effect, its answer never came, and the retry with the same key gets
// that reservation instead of holding the stock twice.
func TestInventoryHTTPRetryAfterTimeoutReservesOnce(t *testing.T) {
	t.Parallel()
	s, p := startInventory(t, map[string]int{"sku-a": 5})
	s.Hold("k")
	ctx, expire := apptest.ExpiringContext()
	errc := make(chan error, 1)
	go func() {
		_, err := p.Reserve(ctx, reservation("k", "sku-a", 2))
		errc <- err
	}()
	apptest.WaitFor(t, "the reservation to be made and its answer held", func() bool { return s.Held("k") == 1 })
	expire()
	assertOutcome(t, <-errc, app.FaultTimeout, true)
	s.Release("k")

	res, err := p.Reserve(guardCtx(t), reservation("k", "sku-a", 2))
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if res.ID != s.ReservationID("k") || res.Status != app.ReservationReserved {
		t.Errorf("retry = %+v, want reservation %s", res, s.ReservationID("k"))
	}
	if n, st := s.InventoryEffects("k"), stockOf(t, s, "sku-a"); n != 1 || st != 3 {
		t.Errorf("effects %d, stock %d; want 1 and 3", n, st)
	}
	got, err := p.LookupReservation(guardCtx(t), "k")
	if want := (app.ReservationLookup{Status: app.ReservationReserved, ID: res.ID}); err != nil || got != want {
		t.Errorf("lookup = %+v, %v; want %+v", got, err, want)
	}
}

// TestInventoryHTTPKeyFirstUsedForOtherStockIsAConflict: the replayed
// answer is for another SKU, so what we asked for was not done.
func TestInventoryHTTPKeyFirstUsedForOtherStockIsAConflict(t *testing.T) {
	t.Parallel()
	s, p := startInventory(t, map[string]int{"sku-a": 5, "sku-b": 5})
	first, err := p.Reserve(guardCtx(t), reservation("k", "sku-a", 1))
	if err != nil {
		t.Fatal(err)
	}
	again, err := p.Reserve(guardCtx(t), reservation("k", "sku-a", 1))
	if err != nil || again != first {
		t.Errorf("same request again = %+v, %v; want %+v", again, err, first)
	}
	for _, r := range []app.Reservation{reservation("k", "sku-b", 1), reservation("k", "sku-a", 2)} {
		_, err := p.Reserve(guardCtx(t), r)
		assertOutcome(t, err, app.FaultConflict, false)
		if pe := providerError(t, err); pe.Fault() || pe.Retryable() {
			t.Errorf("conflict %+v counts against the breaker or is retried", pe)
		}
	}
	if n := stockOf(t, s, "sku-b"); n != 5 {
		t.Errorf("sku-b stock = %d, want 5", n)
	}
}

func TestInventoryHTTPReleaseIsIdempotent(t *testing.T) {
	t.Parallel()
	s, p := startInventory(t, map[string]int{"sku-a": 5})
	res, err := p.Reserve(guardCtx(t), reservation("k", "sku-a", 4))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		got, err := p.Release(guardCtx(t), res.ID)
		if want := (app.ReleaseResult{ID: res.ID, Status: app.ReservationReleased}); err != nil || got != want {
			t.Errorf("release %d = %+v, %v; want %+v", i, got, err, want)
		}
	}
	if n, st := s.Releases(res.ID), stockOf(t, s, "sku-a"); n != 1 || st != 5 {
		t.Errorf("releases %d, stock %d; want 1 and 5", n, st)
	}
	got, err := p.LookupReservation(guardCtx(t), "k")
	if want := (app.ReservationLookup{Status: app.ReservationReleased, ID: res.ID}); err != nil || got != want {
		t.Errorf("lookup = %+v, %v; want %+v", got, err, want)
	}

	_, err = p.Release(guardCtx(t), "rs_never")
	assertFault(t, err, app.FaultRejected, http.StatusNotFound)
	_, err = p.Release(guardCtx(t), "")
	assertFault(t, err, app.FaultRejected, 0)

	s.SetInventoryChaos(sim.Chaos{Down: true})
	_, err = p.Release(guardCtx(t), res.ID)
	assertFault(t, err, app.FaultUnavailable, http.StatusServiceUnavailable)
}

// TestInventoryHTTPReleaseTimingOutIsUnknown: a release whose answer never
// came may have released; repeating it is safe and releases nothing more.
func TestInventoryHTTPReleaseTimingOutIsUnknown(t *testing.T) {
	t.Parallel()
	s, p := startInventory(t, map[string]int{"sku-a": 5})
	res, err := p.Reserve(guardCtx(t), reservation("k", "sku-a", 4))
	if err != nil {
		t.Fatal(err)
	}
	s.Hold(res.ID)
	ctx, expire := apptest.ExpiringContext()
	errc := make(chan error, 1)
	go func() {
		_, err := p.Release(ctx, res.ID)
		errc <- err
	}()
	apptest.WaitFor(t, "the release to be made and its answer held", func() bool { return s.Held(res.ID) == 1 })
	expire()
	assertOutcome(t, <-errc, app.FaultTimeout, true)
	s.Release(res.ID)
	if _, err := p.Release(guardCtx(t), res.ID); err != nil {
		t.Fatalf("repeat: %v", err)
	}
	if n, st := s.Releases(res.ID), stockOf(t, s, "sku-a"); n != 1 || st != 5 {
		t.Errorf("releases %d, stock %d; want 1 and 5", n, st)
	}
}

func TestInventoryHTTPLookup(t *testing.T) {
	t.Parallel()
	s, p := startInventory(t, map[string]int{"sku-a": 5})
	made, err := p.Reserve(guardCtx(t), reservation("made", "sku-a", 2))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Reserve(guardCtx(t), reservation("too-many", "sku-a", 9)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		key  string
		want app.ReservationLookup
	}{
		{"made", app.ReservationLookup{Status: app.ReservationReserved, ID: made.ID}},
		{"too-many", app.ReservationLookup{Status: app.ReservationOutOfStock, Available: 3}},
		{"never/used", app.ReservationLookup{Status: app.ReservationNotFound, KeyClosed: true}},
	}
	now := time.Now()
	for _, tt := range tests {
		got, err := p.LookupReservation(guardCtx(t), tt.key)
		if err != nil || got != tt.want {
			t.Errorf("lookup %s = %+v, %v; want %+v", tt.key, got, err, tt.want)
		}
		if nothing := got.NothingReserved(now, now); nothing != (tt.key != "made") {
			t.Errorf("lookup %s: NothingReserved = %v", tt.key, nothing)
		}
	}
	// The not-found lookup closed the key: the reservation that would
	// have landed holds nothing.
	_, err = p.Reserve(guardCtx(t), reservation("never/used", "sku-a", 1))
	assertOutcome(t, err, app.FaultKeyClosed, false)
	if pe := providerError(t, err); pe.StatusCode != http.StatusConflict || pe.Fault() {
		t.Errorf("fault %+v: want 409, not counted against the breaker", pe)
	}
	if n, st := s.InventoryEffects("never/used"), stockOf(t, s, "sku-a"); n != 0 || st != 3 || !s.InventoryClosed("never/used") {
		t.Errorf("effects %d, stock %d, closed %v", n, st, s.InventoryClosed("never/used"))
	}

	// A lookup answered 503 closes nothing.
	s.SetInventoryChaos(sim.Chaos{Down: true})
	_, err = p.LookupReservation(guardCtx(t), "unseen")
	assertFault(t, err, app.FaultUnavailable, http.StatusServiceUnavailable)
	if s.InventoryClosed("unseen") {
		t.Error("a 503 lookup closed the key")
	}
	_, err = p.LookupReservation(guardCtx(t), "")
	assertFault(t, err, app.FaultRejected, 0)
}

func TestInventoryHTTPStock(t *testing.T) {
	t.Parallel()
	s, p := startInventory(t, map[string]int{"sku-a": 5, "sku-b": 0, "sku c/d": 2})
	read := func(skus ...string) map[string]int {
		t.Helper()
		levels, err := p.Stock(guardCtx(t), skus)
		if err != nil {
			t.Fatalf("Stock(%q): %v", skus, err)
		}
		got := map[string]int{}
		for _, l := range levels {
			if l.AsOf.IsZero() {
				t.Errorf("%s: no as_of", l.SKU)
			}
			got[l.SKU] = l.Available
		}
		return got
	}
	tests := []struct {
		skus []string
		want map[string]int
	}{
		{[]string{"sku-a"}, map[string]int{"sku-a": 5}},
		{[]string{"sku c/d"}, map[string]int{"sku c/d": 2}},
		{[]string{"nope"}, map[string]int{}},
		{[]string{"sku-a", "sku-b", "nope", "sku-a"}, map[string]int{"sku-a": 5, "sku-b": 0}},
		{[]string{"sku c/d", "sku-a"}, map[string]int{"sku c/d": 2, "sku-a": 5}},
		{[]string{"sku-a", "sku-a"}, map[string]int{"sku-a": 5}}, // one SKU after all
		{nil, map[string]int{}},
	}
	for _, tt := range tests {
		if got := read(tt.skus...); len(got) != len(tt.want) || !mapsEqual(got, tt.want) {
			t.Errorf("Stock(%q) = %v, want %v", tt.skus, got, tt.want)
		}
	}
	if n := s.TotalReservations(); n != 0 {
		t.Errorf("a read reserved %d", n)
	}

	for _, skus := range [][]string{{""}, {"a,b"}, manySKUs(101)} {
		_, err := p.Stock(guardCtx(t), skus)
		assertFault(t, err, app.FaultRejected, 0)
	}
	if levels, err := p.Stock(guardCtx(t), manySKUs(100)); err != nil || len(levels) != 0 {
		t.Errorf("100 unknown SKUs = %v, %v", levels, err)
	}

	s.SetInventoryChaos(sim.Chaos{Down: true})
	for _, skus := range [][]string{{"sku-a"}, {"sku-a", "sku-b"}} {
		_, err := p.Stock(guardCtx(t), skus)
		assertFault(t, err, app.FaultUnavailable, http.StatusServiceUnavailable)
	}
}

func manySKUs(n int) []string {
	skus := make([]string, n)
	for i := range skus {
		skus[i] = "sku-" + strings.Repeat("x", i+1)
	}
	return skus
}

func mapsEqual(a, b map[string]int) bool {
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return len(a) == len(b)
}

func TestInventoryHTTPHealthFollowsTheInventoryOnly(t *testing.T) {
	t.Parallel()
	s, p := startInventory(t, nil)
	s.SetChaos(sim.Chaos{Down: true})
	if err := p.Health(guardCtx(t)); err != nil {
		t.Errorf("payment down, inventory health: %v", err)
	}
	s.SetInventoryChaos(sim.Chaos{Down: true})
	assertFault(t, p.Health(guardCtx(t)), app.FaultUnavailable, http.StatusServiceUnavailable)
}

// TestInventoryHTTPOutcomeUnknownOnlyWhenTheRequestMayHaveLeft: as for
// charges, a reservation or release is unknown unless it provably never
// left; a stock read has no effect and is never unknown.
func TestInventoryHTTPOutcomeUnknownOnlyWhenTheRequestMayHaveLeft(t *testing.T) {
	t.Parallel()
	refusing := "http://" + apptest.RefusingAddr(t)
	closesAfterReading := rawServer(t, func(_ net.Listener, c net.Conn) {
		_ = readRequest(bufio.NewReader(c)) // then hang up without answering
	})
	answers503 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
	}))
	t.Cleanup(answers503.Close)

	calls := []struct {
		name     string
		effect   bool // the call can change something downstream
		call     func(context.Context, *provider.InventoryHTTP) error
		wantKind app.FaultKind
	}{
		{"reserve", true, func(ctx context.Context, p *provider.InventoryHTTP) error {
			_, err := p.Reserve(ctx, reservation("k", "sku-a", 1))
			return err
		}, app.FaultUnavailable},
		{"release", true, func(ctx context.Context, p *provider.InventoryHTTP) error {
			_, err := p.Release(ctx, "rs_1")
			return err
		}, app.FaultUnavailable},
		{"lookup", true, func(ctx context.Context, p *provider.InventoryHTTP) error {
			_, err := p.LookupReservation(ctx, "k")
			return err
		}, app.FaultUnavailable},
		{"stock", false, func(ctx context.Context, p *provider.InventoryHTTP) error {
			_, err := p.Stock(ctx, []string{"sku-a"})
			return err
		}, app.FaultUnavailable},
		{"stock list", false, func(ctx context.Context, p *provider.InventoryHTTP) error {
			_, err := p.Stock(ctx, []string{"sku-a", "sku-b"})
			return err
		}, app.FaultUnavailable},
	}
	servers := []struct {
		name       string
		base       string
		mayHaveHit bool
		wantStatus int
	}{
		{"connection refused is known", refusing, false, 0},
		{"closed after reading the request", closesAfterReading, true, 0},
		{"a complete 503 is known", answers503.URL, false, 503},
	}
	for _, c := range calls {
		for _, srv := range servers {
			t.Run(c.name+"/"+srv.name, func(t *testing.T) {
				t.Parallel()
				err := c.call(context.Background(), newInventory(t, srv.base))
				assertOutcome(t, err, c.wantKind, srv.mayHaveHit && c.effect)
				if pe := providerError(t, err); pe.StatusCode != srv.wantStatus {
					t.Errorf("status = %d, want %d", pe.StatusCode, srv.wantStatus)
				}
			})
		}
	}
}

// TestInventoryHTTPHungServerPastDeadlineIsUnknownTimeout: the inventory
// has the whole reservation and never answers; the deadline passes.
func TestInventoryHTTPHungServerPastDeadlineIsUnknownTimeout(t *testing.T) {
	t.Parallel()
	got := make(chan struct{}, 1)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	base := rawServer(t, func(_ net.Listener, c net.Conn) {
		if readRequest(bufio.NewReader(c)) == nil {
			got <- struct{}{}
		}
		<-release
	})
	ctx := newExpiringCtx()
	go func() { <-got; ctx.expire() }()
	_, err := newInventory(t, base).Reserve(ctx, reservation("k", "sku-a", 1))
	assertOutcome(t, err, app.FaultTimeout, true)
	// ClassifyProviderError, which the generic machinery applies to both
	// dependencies, keeps it as it is.
	if pe := app.ClassifyProviderError(ctx, err); pe.Kind != app.FaultTimeout || !pe.OutcomeUnknown {
		t.Errorf("classified as %+v", pe)
	}
}

func TestInventoryHTTPRefusesBadReservationsUnsent(t *testing.T) {
	t.Parallel()
	s, p := startInventory(t, nil)
	for _, r := range []app.Reservation{
		reservation("", "sku-tea", 1),
		reservation("k", "", 1),
		reservation("k", "a,b", 1),
		reservation("k", "sku-tea", 0),
		reservation("k", "sku-tea", -2),
	} {
		_, err := p.Reserve(guardCtx(t), r)
		assertFault(t, err, app.FaultRejected, 0)
		assertOutcome(t, err, app.FaultRejected, false)
	}
	if n := s.TotalReservations(); n != 0 {
		t.Errorf("reservations = %d", n)
	}
}

func TestNewInventoryHTTPValidatesTheURL(t *testing.T) {
	t.Parallel()
	for _, base := range []string{"", "ftp://x", "http://", "http://x/?a=b", "http://u:p@x", "127.0.0.1:8090"} {
		if _, err := provider.NewInventoryHTTP(provider.InventoryHTTPConfig{BaseURL: base}); err == nil {
			t.Errorf("NewInventoryHTTP(%q) accepted", base)
		}
	}
	if _, err := provider.NewInventoryHTTP(provider.InventoryHTTPConfig{BaseURL: "http://127.0.0.1:8090/inventory"}); err != nil {
		t.Errorf("a good URL: %v", err)
	}
}
