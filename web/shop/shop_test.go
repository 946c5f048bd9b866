package shop_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/sim"
	"github.com/spillway/spillway/cmd/spillway/service/servicetest"
	"github.com/spillway/spillway/db"
)

// pageLimit is the most any customer page may weigh (issue 12).
const pageLimit = 50 << 10

type shopper struct {
	*servicetest.Product
	t *testing.T
}

func newShop(t *testing.T, o servicetest.Options) *shopper {
	t.Helper()
	p := servicetest.New(t, o)
	p.StockCatalog()
	return &shopper{Product: p, t: t}
}

type page struct {
	status int
	header http.Header
	body   string
}

// get fetches a page without following redirects.
func (s *shopper) get(path string) page {
	s.t.Helper()
	return s.send(http.MethodGet, path, nil, nil)
}

// post submits a form as a browser on this site does.
func (s *shopper) post(path string, form url.Values, header map[string]string) page {
	s.t.Helper()
	h := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "same-origin"}
	for k, v := range header {
		h[k] = v
	}
	return s.send(http.MethodPost, path, strings.NewReader(form.Encode()), h)
}

func (s *shopper) send(method, path string, body io.Reader, header map[string]string) page {
	s.t.Helper()
	req, err := http.NewRequest(method, s.URL+path, body)
	if err != nil {
		s.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	if len(b) > pageLimit {
		s.t.Errorf("%s %s weighs %d bytes, over %d", method, path, len(b), pageLimit)
	}
	return page{status: res.StatusCode, header: res.Header, body: string(b)}
}

// order is a filled-in checkout form for lines (sku, quantity, …).
func order(key, email string, lines ...string) url.Values {
	v := url.Values{"form_key": {key}, "email": {email}}
	for i := 0; i+1 < len(lines); i += 2 {
		v.Add("sku", lines[i])
		v.Add("quantity", lines[i+1])
	}
	return v
}

// checkout places an order through the form and returns its page's path.
func (s *shopper) checkout(form url.Values) string {
	s.t.Helper()
	r := s.post("/checkout", form, nil)
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/orders/") {
		s.t.Fatalf("checkout: %d to %q: %s", r.status, r.header.Get("Location"), r.body)
	}
	return r.header.Get("Location")
}

// switchOff turns an optional feature off by hand, as an operator does.
func (s *shopper) switchOff(name string) {
	s.t.Helper()
	op, err := app.NewOperator(app.OperatorConfig{Store: db.NewStore(s.Pool), Features: s.Service.Features()})
	if err != nil {
		s.t.Fatal(err)
	}
	if _, err := op.SetFeatureOff(context.Background(), app.Actor{Email: "ops@example.com"}, name, true, "test"); err != nil {
		s.t.Fatal(err)
	}
	if err := s.Service.Features().Refresh(context.Background()); err != nil {
		s.t.Fatal(err)
	}
}

// openBreaker forces dependency's breaker open and lets the pages know.
func (s *shopper) openBreaker(dependency string) {
	s.t.Helper()
	if _, err := s.Breakers.Force(context.Background(), dependency, app.BreakerForcedOpen, "ops@example.com", "test"); err != nil {
		s.t.Fatal(err)
	}
	if err := s.Service.Features().Refresh(context.Background()); err != nil {
		s.t.Fatal(err)
	}
}

var (
	cacheHit = regexp.MustCompile(`^spillway; hit; ttl=-[0-9]+; detail=stale-if-error$`)
	banner   = regexp.MustCompile(`<div role="status" class="degraded" data-degraded="([a-z ]+)">([^<]+)</div>`)
)

func TestCatalogIsLiveWithNoBannerWhenAllIsWell(t *testing.T) {
	t.Parallel()
	s := newShop(t, servicetest.Options{})
	r := s.get("/")
	if r.status != http.StatusOK || r.header.Get("Cache-Status") != "spillway; fwd=miss; stored" {
		t.Fatalf("catalog: %d, Cache-Status %q", r.status, r.header.Get("Cache-Status"))
	}
	for _, want := range []string{"Tea", "Mug", "USD 4.50", "1000 in stock", `class="swatch"`} {
		if !strings.Contains(r.body, want) {
			t.Errorf("catalog lacks %q", want)
		}
	}
	if banner.MatchString(r.body) || strings.Contains(r.body, "as of") {
		t.Errorf("a healthy catalog shows a banner or an age:\n%s", r.body)
	}
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
}

func TestProductFromTheCacheSaysHowOld(t *testing.T) {
	t.Parallel()
	s := newShop(t, servicetest.Options{})
	if r := s.get("/products/sku-tea"); !strings.Contains(r.body, "1000 in stock") {
		t.Fatalf("live product page: %s", r.body)
	}
	s.Sim.SetInventoryChaos(sim.Chaos{Down: true})
	r := s.get("/products/sku-tea")
	if r.status != http.StatusOK || !cacheHit.MatchString(r.header.Get("Cache-Status")) {
		t.Fatalf("from cache: %d, Cache-Status %q", r.status, r.header.Get("Cache-Status"))
	}
	if !regexp.MustCompile(`1000 in stock <span class="muted">\(as of <time datetime="[0-9T:Z-]+">(?:[^<]+ ago|just now)</time>\)`).
		MatchString(r.body) {
		t.Fatalf("the cached stock does not say how old it is:\n%s", r.body)
	}
}

func TestProductWithNothingKnownPromisesNothing(t *testing.T) {
	t.Parallel()
	s := newShop(t, servicetest.Options{})
	s.Sim.SetInventoryChaos(sim.Chaos{Down: true})
	r := s.get("/products/sku-mug")
	if r.header.Get("Cache-Status") != "spillway; fwd=miss; fwd-status=503; detail=default" ||
		!strings.Contains(r.body, "Availability confirmed after you order") || strings.Contains(r.body, "in stock") {
		t.Fatalf("default: Cache-Status %q:\n%s", r.header.Get("Cache-Status"), r.body)
	}
	if r := s.get("/products/no-such-thing"); r.status != http.StatusNotFound || !strings.Contains(r.body, "no such product") {
		t.Fatalf("unknown product: %d %s", r.status, r.body)
	}
}

// A degraded dependency is named on every customer page, by the same
// state the admin overview shows (the breaker).
func TestEveryPageCarriesTheBannerWhileADependencyIsDegraded(t *testing.T) {
	t.Parallel()
	s := newShop(t, servicetest.Options{})
	done := s.checkout(order(uuid.NewString(), "ann@example.com", "sku-tea", "1"))
	s.openBreaker(app.DepPayment)
	for _, path := range []string{"/", "/products/sku-tea", "/checkout", done} {
		r := s.get(path)
		m := banner.FindStringSubmatch(r.body)
		if r.status != http.StatusOK || m == nil || m[1] != "payment" || !strings.Contains(m[2], "Payments are slow") {
			t.Errorf("%s: %d, banner %q", path, r.status, m)
		}
	}
}

// Under distress an open order's page polls less often.
func TestAnOpenOrdersPageRefreshesLessOftenUnderDistress(t *testing.T) {
	t.Parallel()
	s := newShop(t, servicetest.Options{}) // no workers: the order stays open
	s.Sim.SetChaos(sim.Chaos{Down: true})
	path := s.checkout(order(uuid.NewString(), "ann@example.com", "sku-tea", "2"))
	refresh := regexp.MustCompile(`<noscript><meta http-equiv="refresh" content="([0-9]+)"></noscript>`)
	calm := refresh.FindStringSubmatch(s.get(path).body)
	s.openBreaker(app.DepPayment)
	s.openBreaker(app.DepInventory)
	distressed := refresh.FindStringSubmatch(s.get(path).body)
	if calm == nil || distressed == nil || calm[1] != "5" || distressed[1] != "20" {
		t.Fatalf("refresh: calm %q, distressed %q; want 5 then 20 (two dependencies degraded)", calm, distressed)
	}
}

// Each optional feature, switched off, takes its part of the pages away
// and nothing else.
func TestEachOptionalFeatureOff(t *testing.T) {
	t.Parallel()
	s := newShop(t, servicetest.Options{})
	s.checkout(order(uuid.NewString(), "ann@example.com", "sku-tea", "1", "sku-mug", "1"))
	on := s.get("/products/sku-tea")
	if !strings.Contains(on.body, "Customers also bought") || !strings.Contains(on.body, `href="/products/sku-mug"`) ||
		!strings.Contains(on.body, `class="swatch"`) {
		t.Fatalf("with every feature on:\n%s", on.body)
	}

	s.switchOff(app.FeatureRecommendations)
	if r := s.get("/products/sku-tea"); strings.Contains(r.body, "Customers also bought") || !strings.Contains(r.body, `class="swatch"`) {
		t.Errorf("recommendations off:\n%s", r.body)
	}
	s.switchOff(app.FeatureRichContent)
	if r := s.get("/"); strings.Contains(r.body, `class="swatch"`) || !strings.Contains(r.body, "999 in stock") {
		t.Errorf("rich content off:\n%s", r.body)
	}
	// Live reads off: the stock comes from the cache even though the
	// inventory answers (and now says otherwise).
	s.Sim.SetStock("sku-tea", 7)
	s.switchOff(app.FeatureLiveStockRefresh)
	r := s.get("/products/sku-tea")
	if !cacheHit.MatchString(r.header.Get("Cache-Status")) || !strings.Contains(r.body, "in stock") || strings.Contains(r.body, "7 in stock") {
		t.Errorf("live stock off: Cache-Status %q:\n%s", r.header.Get("Cache-Status"), r.body)
	}
	// The essentials stay: the checkout still places an order.
	s.checkout(order(uuid.NewString(), "bo@example.com", "sku-mug", "1"))
}

func TestCheckoutErrorsKeepWhatWasTypedAndOrderNothing(t *testing.T) {
	t.Parallel()
	s := newShop(t, servicetest.Options{})
	form := order(uuid.NewString(), "not-an-address", "sku-mug", "3", "sku-tea", "zero", "sku-mug", "1")
	form.Set("phone", "555")
	r := s.post("/checkout", form, nil)
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("status %d, want 422", r.status)
	}
	for _, want := range []string{
		`id="error-email">This does not look like an email address`,
		`id="error-phone">Write the number in international form`,
		`id="error-line-1">The quantity must be a whole number`,
		`id="error-line-2">This product is already on line 1`,
		`value="not-an-address"`, `value="555"`, `value="zero"`,
		`<option value="sku-mug" selected>`,
		`name="form_key" value="` + form.Get("form_key") + `"`,
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("the form lacks %q", want)
		}
	}
	// A SKU the catalog does not have: refused beside its line.
	r = s.post("/checkout", order(uuid.NewString(), "ann@example.com", "sku-nothing", "1"), nil)
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `id="error-line-0">we have no product sku-nothing`) {
		t.Errorf("unknown SKU: %d\n%s", r.status, r.body)
	}
	// Nothing empty, nothing expired, goes through.
	if r := s.post("/checkout", url.Values{"email": {"ann@example.com"}}, nil); r.status != http.StatusUnprocessableEntity ||
		!strings.Contains(r.body, "Add at least one product") || !strings.Contains(r.body, "This form has expired") {
		t.Errorf("empty form: %d\n%s", r.status, r.body)
	}
	if n := s.Count(`SELECT count(*) FROM operations`); n != 0 {
		t.Fatalf("%d operations recorded by refused forms", n)
	}
}

// The form's key is the order's: sending it again, twice at once, or
// edited after the back button, lands on the one order it placed.
func TestDoubleSubmitPlacesOneOrder(t *testing.T) {
	t.Parallel()
	s := newShop(t, servicetest.Options{})
	key := uuid.NewString()
	form := order(key, "ann@example.com", "sku-tea", "2")
	var wg sync.WaitGroup
	locations := make([]string, 3)
	for i := range locations {
		wg.Go(func() {
			r := s.post("/checkout", form, nil)
			if r.status == http.StatusSeeOther {
				locations[i] = r.header.Get("Location")
			}
		})
	}
	wg.Wait()
	edited := order(key, "ann@example.com", "sku-tea", "5")
	again := s.checkout(edited)
	want := "/orders/" + app.OperationID(app.ScopeOrders, key).String()
	for _, l := range append(locations, again) {
		if l != want {
			t.Fatalf("submits answered %q and %q; want each 303 to %s", locations, again, want)
		}
	}
	id := strings.TrimPrefix(want, "/orders/")
	if n := s.Count(`SELECT count(*) FROM operations`); n != 1 {
		t.Fatalf("%d orders, want 1", n)
	}
	if e := s.Sim.Effects(id + ":charge"); e != 1 {
		t.Fatalf("%d charges, want 1", e)
	}
	if r := s.get(want); !strings.Contains(r.body, "Thank you: your order is confirmed") || !strings.Contains(r.body, "USD 9.00") {
		t.Fatalf("order page:\n%s", r.body)
	}
}

func TestACheckoutFromAnotherSiteIsRefused(t *testing.T) {
	t.Parallel()
	s := newShop(t, servicetest.Options{})
	r := s.post("/checkout", order(uuid.NewString(), "ann@example.com", "sku-tea", "1"), map[string]string{"Sec-Fetch-Site": "cross-site"})
	if r.status != http.StatusForbidden || !strings.Contains(r.body, "nothing was ordered") {
		t.Fatalf("cross-site post: %d %s", r.status, r.body)
	}
	if n := s.Count(`SELECT count(*) FROM operations`); n != 0 {
		t.Fatalf("%d operations recorded", n)
	}
}

// A captured order's page says in plain words that it is safe, what is
// slow, and how the customer will hear; then, once finished, that it is
// confirmed.
func TestACapturedOrderSaysWhatHappenedAndWhatComesNext(t *testing.T) {
	t.Parallel()
	s := newShop(t, servicetest.Options{Workers: 1})
	s.Sim.SetChaos(sim.Chaos{Down: true})
	path := s.checkout(order(uuid.NewString(), "ann@example.com", "sku-tea", "1"))
	r := s.get(path)
	for _, want := range []string{"Your order is safe.", "Payment is slow right now", "we&#39;ll email you at ann@example.com",
		`data-step="reserve:sku-tea" data-status="done"`, `data-step="charge"`, `<noscript><meta http-equiv="refresh"`,
		`src="/shop/live.js"`} {
		if !strings.Contains(r.body, want) {
			t.Errorf("captured order page lacks %q", want)
		}
	}
	if strings.Contains(r.body, "failed") || strings.Contains(r.body, "did not go through") {
		t.Errorf("a captured order reads as failed:\n%s", r.body)
	}
	s.Sim.SetChaos(sim.Chaos{})
	s.WaitStatus(strings.TrimPrefix(path, "/orders/"), app.StatusSucceeded)
	r = s.get(path)
	if !strings.Contains(r.body, "Thank you: your order is confirmed") || strings.Contains(r.body, "<noscript><meta") {
		t.Fatalf("finished order page:\n%s", r.body)
	}
}

func TestAnOldStatusLinkLeadsToTheOrderPage(t *testing.T) {
	t.Parallel()
	s := newShop(t, servicetest.Options{})
	path := s.checkout(order(uuid.NewString(), "ann@example.com", "sku-tea", "1"))
	id := strings.TrimPrefix(path, "/orders/")
	if r := s.get("/status/" + id); r.status != http.StatusMovedPermanently || r.header.Get("Location") != path {
		t.Fatalf("/status/%s: %d to %q", id, r.status, r.header.Get("Location"))
	}
}
