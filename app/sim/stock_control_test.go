package sim_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/spillway/spillway/app/sim"
)

// A restock sets the stock of the SKUs it names, and a bad one changes
// nothing: a demo or a benchmark restocks without a restart.
func TestRestockByControl(t *testing.T) {
	t.Parallel()
	s, srv := start(t, sim.Config{Stock: map[string]int{"sku-a": 5, "sku-b": 1}})
	put := func(body string) int {
		t.Helper()
		r, err := do(context.Background(), t, http.MethodPut, srv.URL+"/control/inventory/stock",
			map[string]string{"Content-Type": "application/json"}, body)
		if err != nil {
			t.Fatal(err)
		}
		return r.status
	}
	if got := put(`{"sku-a": 100000, "sku-c": 7}`); got != http.StatusOK {
		t.Fatalf("restock: %d", got)
	}
	for sku, want := range map[string]int{"sku-a": 100000, "sku-b": 1, "sku-c": 7} {
		if n, ok := s.Available(sku); !ok || n != want {
			t.Errorf("%s: %d (%v), want %d", sku, n, ok, want)
		}
	}
	for _, bad := range []string{`[]`, `null`, `{"sku-a": -1}`, `{"sku-a": 5, "": 1}`, `{"a,b": 1}`, `{"sku-a": "many"}`, `{"sku-a": 2000000000}`} {
		if got := put(bad); got != http.StatusBadRequest {
			t.Errorf("restock %s: %d, want 400", bad, got)
		}
	}
	if n, _ := s.Available("sku-a"); n != 100000 {
		t.Fatalf("a refused restock changed the stock: %d", n)
	}
}
