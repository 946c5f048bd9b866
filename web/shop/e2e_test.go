package shop_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/apptest"
	"github.com/spillway/spillway/app/sim"
	"github.com/spillway/spillway/cmd/spillway/service/servicetest"
	"github.com/spillway/spillway/web/browsertest"
)

// The customer's journey in a real headless Chromium, on the whole
// product (servicetest: real Postgres, River, the simulator as payment
// and inventory): buying with everything healthy, buying while payment is
// down and watching the order finish by itself, and browsing while the
// inventory hangs. With SPILLWAY_SCREENSHOTS set (make screenshots) each
// state is saved as a PNG under testdata/screenshots/ for the README;
// otherwise nothing is written.

// screenshotsEnv names the variable that makes the tests save screenshots.
const screenshotsEnv = "SPILLWAY_SCREENSHOTS"

// screenshotDir is where they go, relative to this package.
const screenshotDir = "testdata/screenshots"

// tab is one browser tab a test drives.
type tab struct {
	t   *testing.T
	ctx context.Context
}

// newTab opens another tab in the browser bctx runs; it closes with t.
func newTab(t *testing.T, bctx context.Context) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(bctx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	return &tab{t: t, ctx: ctx}
}

// step runs actions with a guard of their own; on failure it shows where
// the browser was and what it showed.
func (b *tab) step(name string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, apptest.Patience)
	defer cancel()
	began := time.Now()
	defer func() { b.t.Logf("%s: %s", name, time.Since(began).Round(time.Millisecond)) }()
	if err := chromedp.Do(ctx, actions...); err != nil {
		dctx, dcancel := context.WithTimeout(b.ctx, 5*time.Second)
		defer dcancel()
		loc, _ := chromedp.Run(dctx, chromedp.Location())
		body, _ := chromedp.Run(dctx, chromedp.OuterHTML(chromedp.CSS("body")))
		b.t.Fatalf("%s: %v\nat %s\n%s", name, err, loc, body)
	}
}

// text is the visible text of the first element sel matches.
func (b *tab) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, apptest.Patience)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("read %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

// attr is attribute name of the first element sel matches.
func (b *tab) attr(sel, name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, apptest.Patience)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(sel), name))
	if err != nil || !v.Exists {
		b.t.Fatalf("read %s's %s: %v (present %v)", sel, name, err, v.Exists)
	}
	return v.Value
}

// location is the tab's URL.
func (b *tab) location() string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, apptest.Patience)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		b.t.Fatalf("location: %v", err)
	}
	return loc
}

// screenshot saves the whole page as name.png when screenshotsEnv is set.
func (b *tab) screenshot(name string) {
	b.t.Helper()
	if os.Getenv(screenshotsEnv) == "" {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, apptest.Patience)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	path := filepath.Join(screenshotDir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("saved %s", path)
}

// orderID is the id in an /orders/{id} address.
func orderID(t *testing.T, loc string) string {
	t.Helper()
	i := strings.Index(loc, "/orders/")
	if i < 0 {
		t.Fatalf("not an order page: %s", loc)
	}
	return strings.TrimSuffix(loc[i+len("/orders/"):], "/")
}

// checkout goes from the catalog to tea's page and orders one with email,
// landing on the order page; it returns the order's id.
func checkout(b *tab, base, email string) string {
	b.t.Helper()
	b.step("open the catalog",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS(`li[data-sku="sku-tea"]`)),
	)
	b.step("open a product",
		chromedp.Click(chromedp.CSS(`li[data-sku="sku-tea"] a`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/checkout"] button[type="submit"]`)),
	)
	if got := b.text(`h1`); got != "Tea" {
		b.t.Fatalf("product page headline %q", got)
	}
	b.step("go to the checkout",
		chromedp.Click(chromedp.CSS(`form[action="/checkout"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`form.checkout #email`)),
	)
	if got := b.attr(`#sku-0 option[selected]`, "value"); got != "sku-tea" {
		b.t.Fatalf("checkout's first line is %q, want sku-tea", got)
	}
	b.step("place the order",
		chromedp.SendKeys(chromedp.CSS(`#email`), email),
		chromedp.Click(chromedp.CSS(`form.checkout button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#order #status`)),
	)
	return orderID(b.t, b.location())
}

// TestE2EHealthyPurchase: with everything healthy the customer browses
// the catalog, opens a product, orders it through the checkout form and
// lands on the order page, which says the order is confirmed: it was
// placed synchronously and succeeded.
func TestE2EHealthyPurchase(t *testing.T) {
	t.Parallel()
	p := servicetest.New(t, servicetest.Options{})
	p.StockCatalog()
	b := &tab{t: t, ctx: browsertest.Start(t)}

	b.step("open the catalog",
		chromedp.Navigate(p.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`li[data-sku="sku-tea"] .stock`)),
	)
	if src := b.attr(`li[data-sku="sku-tea"] .stock`, "data-source"); src != string(app.StockLive) {
		t.Fatalf("catalog stock from %q, want live", src)
	}
	if got := b.text(`li[data-sku="sku-tea"] .stock`); !strings.HasSuffix(got, "in stock") {
		t.Fatalf("catalog stock %q", got)
	}
	b.screenshot("1-healthy-catalog")

	id := checkout(b, p.URL, "healthy@example.com")
	if got := b.attr(`#order`, "data-status"); got != string(app.StatusSucceeded) {
		t.Fatalf("order page status %q, want succeeded", got)
	}
	if got := b.text(`#status`); got != "Thank you: your order is confirmed." {
		t.Fatalf("order page headline %q", got)
	}
	doc := p.Operation(id)
	if doc["status"] != string(app.StatusSucceeded) || doc["mode"] != string(app.ModeSync) {
		t.Fatalf("order %s is %v in %v mode, want succeeded sync", id, doc["status"], doc["mode"])
	}
}

// TestE2EPaymentDownPurchase: with payment down the checkout lands on
// the captured order's page ("Your order is safe", payment slow), and
// every page carries the banner once the payment breaker opens. When
// payment comes back a worker finishes the order, and the open page turns
// confirmed by itself: live.js follows the event stream and reloads; the
// test never navigates that tab again.
func TestE2EPaymentDownPurchase(t *testing.T) {
	t.Parallel()
	// A breaker that trips on the few charges one order's worker makes
	// (River fetches a retry about once a second) and probes quickly, so
	// recovery takes moments. One probe closes it: the order's charge is
	// the only call there is to probe with.
	policy := app.DefaultBreakerPolicy()
	policy.Window, policy.MinCalls, policy.Probes = 10*time.Second, 3, 1
	policy.OpenWait, policy.MaxOpenWait, policy.ProbeLease = 50*time.Millisecond, 200*time.Millisecond, time.Second
	p := servicetest.New(t, servicetest.Options{Workers: 1, Breaker: &policy})
	p.StockCatalog()
	p.Sim.SetChaos(sim.Chaos{Down: true})
	bctx := browsertest.Start(t)
	order := &tab{t: t, ctx: bctx}

	id := checkout(order, p.URL, "patient@example.com")
	if got := order.attr(`#order`, "data-terminal"); got != "false" {
		t.Fatalf("captured order's page is terminal: %q", got)
	}
	if got := order.text(`#status`); got != "Your order is safe." {
		t.Fatalf("captured order's headline %q", got)
	}
	if got := order.text(`#detail`); !strings.Contains(got, "Payment is slow right now") ||
		!strings.Contains(got, "patient@example.com") {
		t.Fatalf("captured order's detail %q", got)
	}
	if doc := p.Operation(id); doc["mode"] != string(app.ModeAsync) || doc["status"] == string(app.StatusSucceeded) {
		t.Fatalf("order %s is %v in %v mode, want captured", id, doc["status"], doc["mode"])
	}
	order.screenshot("3-captured-order")

	// The worker's failing charges open the payment breaker; the banner
	// says so on every page. Another tab looks, so the order's tab is
	// left alone.
	apptest.WaitFor(t, "the banner to name payment", func() bool {
		return bannerNamesPayment.MatchString(get(t, p.URL+"/").body)
	})
	other := newTab(t, bctx)
	other.step("open the degraded catalog",
		chromedp.Navigate(p.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`div.degraded[role="status"]`)),
	)
	if got := other.attr(`div.degraded`, "data-degraded"); !strings.Contains(got, "payment") {
		t.Fatalf("banner names %q", got)
	}
	if got := other.text(`div.degraded`); got == "" {
		t.Fatal("the banner says nothing")
	}
	other.screenshot("2-degraded-banner")

	// Payment is back: the worker drains the order, and the first tab
	// turns confirmed by itself.
	p.Sim.SetChaos(sim.Chaos{})
	order.step("wait for the page to turn confirmed by itself",
		chromedp.WaitVisible(chromedp.CSS(`#order[data-status="succeeded"] #status.ok`)),
	)
	if got := order.text(`#status`); got != "Thank you: your order is confirmed." {
		t.Fatalf("completed order's headline %q", got)
	}
	if got := order.location(); orderID(t, got) != id {
		t.Fatalf("the tab moved to %s", got)
	}
	if doc := p.Operation(id); doc["status"] != string(app.StatusSucceeded) {
		t.Fatalf("order %s is %v", id, doc["status"])
	}
	// The banner goes once the breaker has closed; the completed page is
	// shot without it, as a customer returning later sees it.
	apptest.WaitFor(t, "the banner to go", func() bool {
		return !strings.Contains(get(t, p.URL+"/orders/"+id).body, `class="degraded"`)
	})
	order.step("reload the completed order",
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`#order[data-status="succeeded"]`)),
	)
	order.screenshot("4-completed-order")
}

// TestE2EBrowsingWithInventoryHung: once a live read has filled the
// cache, an inventory that hangs (far longer than READ_DEADLINE) still
// leaves the product page served: the cached stock with its age, and a
// Cache-Status saying stale-if-error. How long the page took is logged,
// never asserted.
func TestE2EBrowsingWithInventoryHung(t *testing.T) {
	t.Parallel()
	const readDeadline = 200 * time.Millisecond
	p := servicetest.New(t, servicetest.Options{ReadDeadline: readDeadline})
	p.StockCatalog()
	product := p.URL + "/products/sku-tea"

	live := get(t, product)
	if cs := live.header.Get("Cache-Status"); !strings.Contains(cs, "fwd=miss") || !strings.Contains(cs, "stored") {
		t.Fatalf("first read's Cache-Status %q, want a live read stored", cs)
	}

	p.Sim.SetInventoryChaos(sim.Chaos{Latency: sim.MaxDuration})
	cached := get(t, product)
	t.Logf("product page over HTTP with inventory hung: %s (READ_DEADLINE %s)", cached.elapsed.Round(time.Millisecond), readDeadline)
	if cached.status != http.StatusOK {
		t.Fatalf("product page with inventory hung: %d", cached.status)
	}
	if cs := cached.header.Get("Cache-Status"); !strings.Contains(cs, "hit") || !strings.Contains(cs, "detail=stale-if-error") {
		t.Fatalf("Cache-Status %q, want a stale-if-error hit", cs)
	}

	b := &tab{t: t, ctx: browsertest.Start(t)}
	began := time.Now()
	b.step("open a product with inventory hung",
		chromedp.Navigate(product),
		chromedp.WaitVisible(chromedp.CSS(`.stock[data-source="cache"] time[datetime]`)),
	)
	// The step's time includes a cold browser's first navigation; the
	// page's own Navigation Timing says how long the server took.
	t.Logf("product page in the browser with inventory hung: %s in all (READ_DEADLINE %s)", time.Since(began).Round(time.Millisecond), readDeadline)
	ctx, cancel := context.WithTimeout(b.ctx, apptest.Patience)
	defer cancel()
	timing, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]float64](
		`(() => { const n = performance.getEntriesByType("navigation")[0];
		  return {first_byte_ms: Math.round(n.responseStart - n.requestStart), last_byte_ms: Math.round(n.responseEnd - n.requestStart)}; })()`))
	if err != nil {
		t.Fatalf("navigation timing: %v", err)
	}
	t.Logf("product page's navigation timing with inventory hung: %v", timing)
	if got := b.text(`.stock`); !strings.Contains(got, "in stock") || !strings.Contains(got, "(as of ") {
		t.Fatalf("cached stock says %q", got)
	}
	asOf, err := time.Parse(time.RFC3339, b.attr(`.stock time`, "datetime"))
	if err != nil {
		t.Fatalf("cached stock's datetime: %v", err)
	}
	if asOf.After(time.Now()) {
		t.Fatalf("cached stock as of %s, in the future", asOf)
	}
	b.screenshot("5-cached-stock")
}

// bannerNamesPayment matches the banner when it names payment.
var bannerNamesPayment = regexp.MustCompile(`<div role="status" class="degraded" data-degraded="[^"]*\bpayment\b`)

// answer is a page fetched over plain HTTP.
type answer struct {
	status  int
	header  http.Header
	body    string
	elapsed time.Duration
}

func get(t *testing.T, url string) answer {
	t.Helper()
	began := time.Now()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: res.StatusCode, header: res.Header, body: string(b), elapsed: time.Since(began)}
}
