package web_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/sim"
)

const (
	cacheStatusLive    = "spillway; fwd=miss; stored"
	cacheStatusDefault = "spillway; fwd=miss; fwd-status=503; detail=default"
)

var cacheStatusCache = regexp.MustCompile(`^spillway; hit; ttl=-[0-9]+; detail=stale-if-error$`)

func (h *harness) product(sku string) (response, map[string]any) {
	h.t.Helper()
	r := h.do(http.MethodGet, "/api/v1/products/"+sku, "", "", nil)
	if r.status != http.StatusOK {
		h.t.Fatalf("GET product %s: %d %s", sku, r.status, r.body)
	}
	return r, r.json(h.t)["stock"].(map[string]any)
}

func TestCatalogAPIListsEveryProductWithLiveStock(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	h.StockCatalog()
	r := h.do(http.MethodGet, "/api/v1/products", "", "", nil)
	if r.status != http.StatusOK || r.header.Get("Cache-Status") != cacheStatusLive {
		t.Fatalf("list: %d, Cache-Status %q: %s", r.status, r.header.Get("Cache-Status"), r.body)
	}
	products := r.json(t)["products"].([]any)
	if len(products) != 4 {
		t.Fatalf("%d products; want the 4 of the catalog: %s", len(products), r.body)
	}
	for _, p := range products {
		p := p.(map[string]any)
		stock := p["stock"].(map[string]any)
		want, _ := h.sim.Available(p["sku"].(string))
		if stock["source"] != "live" || stock["available"] != float64(want) || stock["as_of"] == nil ||
			p["name"] == "" || p["price"] == nil || p["currency"] != "usd" {
			t.Errorf("product %v; want live stock %d", p, want)
		}
	}
	one, stock := h.product("sku-mug")
	if one.header.Get("Cache-Status") != cacheStatusLive || stock["available"] != 200.0 {
		t.Fatalf("one product: Cache-Status %q, stock %v", one.header.Get("Cache-Status"), stock)
	}
	for _, sku := range []string{"sku-nothing", "NOT-A-SKU"} {
		r := h.do(http.MethodGet, "/api/v1/products/"+sku, "", "", nil)
		if r.status != http.StatusNotFound || r.header.Get("Content-Type") != "application/problem+json" ||
			!strings.HasSuffix(r.json(t)["type"].(string), ":not-found") {
			t.Errorf("GET product %s: %d %s %s; want a 404 problem", sku, r.status, r.header.Get("Content-Type"), r.body)
		}
	}
}

func TestProductWithInventoryDownIsServedFromTheCacheWithItsAge(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	h.StockCatalog()
	_, live := h.product("sku-tea")
	h.sim.SetInventoryChaos(sim.Chaos{Down: true})
	r, stock := h.product("sku-tea")
	if !cacheStatusCache.MatchString(r.header.Get("Cache-Status")) {
		t.Fatalf("Cache-Status %q; want a stale-if-error hit", r.header.Get("Cache-Status"))
	}
	if stock["source"] != "cache" || stock["available"] != live["available"] || stock["as_of"] != live["as_of"] {
		t.Fatalf("stock %v; want the live read's %v from the cache", stock, live)
	}
}

func TestProductWithInventoryDownAndNothingStoredIsTheDefault(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	h.StockCatalog()
	h.sim.SetInventoryChaos(sim.Chaos{Down: true})
	r, stock := h.product("sku-kettle")
	if r.header.Get("Cache-Status") != cacheStatusDefault {
		t.Fatalf("Cache-Status %q; want the default's", r.header.Get("Cache-Status"))
	}
	if stock["source"] != "default" || stock["available"] != nil || stock["as_of"] != nil || stock["message"] != app.StockDefaultText {
		t.Fatalf("stock %v; want the default", stock)
	}
	// The list says so for all of it, in one header.
	l := h.do(http.MethodGet, "/api/v1/products", "", "", nil)
	if l.status != http.StatusOK || l.header.Get("Cache-Status") != cacheStatusDefault {
		t.Fatalf("list: %d, Cache-Status %q", l.status, l.header.Get("Cache-Status"))
	}
}

func TestProductWithTheInventoryBreakerOpenIsServedFromTheCacheWithoutARead(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	h.StockCatalog()
	if _, stock := h.product("sku-mug"); stock["source"] != "live" || stock["available"] != 200.0 {
		t.Fatalf("first read %v; want live 200", stock)
	}
	// The inventory now has 7; a read that reached it would say so.
	h.sim.SetStock("sku-mug", 7)
	if _, err := h.breakers.Force(context.Background(), app.DepInventory, app.BreakerForcedOpen, "test", "drill"); err != nil {
		t.Fatal(err)
	}
	r, stock := h.product("sku-mug")
	if !cacheStatusCache.MatchString(r.header.Get("Cache-Status")) || stock["source"] != "cache" || stock["available"] != 200.0 {
		t.Fatalf("Cache-Status %q, stock %v; want the cached 200", r.header.Get("Cache-Status"), stock)
	}
}
