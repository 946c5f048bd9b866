// Package servicetest runs the whole product, as service.New wires it for
// `spillway serve`, on real parts for product-level tests: a fresh
// Postgres database, River working jobs, the simulator on loopback as the
// provider, and the HTTP API on loopback. Tests change the product only
// through its configuration and the seams service.Config offers for what
// lies outside it.
package servicetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/apptest"
	"github.com/spillway/spillway/app/provider"
	"github.com/spillway/spillway/app/sim"
	"github.com/spillway/spillway/cmd/spillway/service"
	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/db/dbtest"
	"github.com/spillway/spillway/jobs"
)

// Guard is what every deadline a test does not mean to reach is given: the
// sync deadline, the job call timeout and the capture budget. It only
// turns a hang into a failure. A test that needs a call to time out makes
// it do so at a chosen event (SyncTimeoutOnHold, JobTimeoutOnHold) instead
// of racing a short deadline against a loopback call that -race and a
// loaded machine can slow down.
const Guard = apptest.Patience

// GuardAttempts is the attempt budget of a job whose test does not mean to
// exhaust it. Worker retries run on the real clock, so how many attempts a
// job spends against a provider that is down until the test brings it
// back depends on the machine's speed; a test about exhaustion sets its
// own small budget.
const GuardAttempts = 1000

// Options are the settings a test changes; the zero value of each is the
// harness default named beside it.
type Options struct {
	Deadline    time.Duration // PAYMENT_DEADLINE; 0: Guard
	Workers     int           // WORKERS; 0: no workers (jobs stay queued)
	MaxAttempts int           // PAYMENT_MAX_ATTEMPTS; 0: GuardAttempts
	SyncLimit   int           // SYNC_CONCURRENCY; 0: 16
	// HighValueReserve is SYNC_HIGH_VALUE_RESERVE; 0 means the product's
	// default share of SyncLimit, -1 none.
	HighValueReserve int
	Breaker          *app.BreakerPolicy
	DrainRate        float64
	Offpeak          app.OffpeakWindow
	Senders          *jobs.Senders
	PublicURL        string
	// CheckCallback vets callback URLs at request time; nil accepts all.
	CheckCallback func(url string) error
	// PoolSize sizes the request and worker pool as DB_MAX_CONNS less the
	// connections outside it would; 0 means 40. The breakers always get a
	// pool of their own.
	PoolSize int
	// CaptureTimeout is CAPTURE_TIMEOUT; 0 means Guard.
	CaptureTimeout time.Duration
	// AsyncTimeout is PAYMENT_ASYNC_TIMEOUT; 0 means Guard.
	AsyncTimeout time.Duration
	// ReadDeadline is READ_DEADLINE, a degraded read's live budget; 0
	// means Guard, so a live read a test means to fail fails at the
	// simulator. A test that makes a dependency hang sets it short.
	ReadDeadline time.Duration
	// MaxBacklog is PAYMENT_MAX_BACKLOG, OrderMaxBacklog
	// INVENTORY_MAX_BACKLOG (the orders queue's); 0 means the product's
	// default.
	MaxBacklog, OrderMaxBacklog int
	// ReconcileEvery is RECONCILE_EVERY; 0 means the product's default.
	ReconcileEvery time.Duration
	// SyncTimeoutOnHold and JobTimeoutOnHold make a sync call, or a
	// worker's call, time out once the simulator holds its answer (see
	// sim.Hold): the charge has arrived and been decided, its caller has
	// not heard back. Keys the test does not hold are called as usual.
	SyncTimeoutOnHold, JobTimeoutOnHold bool
	// Clock, when set, is the simulator's time (its flapping) and the
	// breakers' (windows, open waits); nil is the real clock. River, the
	// runner and Postgres keep the real one.
	Clock func() time.Time
	// RunnerNow, when set, is the runner's clock; nil is the real one.
	RunnerNow func() time.Time
	// Drills are the DRILL_* settings; a zero field keeps the product's
	// default. DrillNow is the drills' clock; nil is the real one. A
	// draining drill looks at its canaries every 20 ms.
	Drills   app.DrillSettings
	DrillNow func() time.Time
	// Kinds adds step kinds to the product's own, given the simulator's
	// base URL.
	Kinds func(simURL string) []service.Kind
	// OwnAdapters makes the product build its provider, inventory and
	// senders from the configuration, as serve does (PAYMENT_PROVIDER=http
	// at the simulator), instead of the harness's: for a test of their
	// wiring, such as tracing's instrumented clients. The *OnHold options
	// and Senders do not apply then.
	OwnAdapters bool
	// Configure, when set, changes the configuration last, as the
	// environment would (OTEL_*, WEBHOOK_SECRET, …).
	Configure func(*app.Config)
}

// Product is one running instance of the product and its simulator.
type Product struct {
	T        *testing.T
	Service  *service.Service
	Pool     *pgxpool.Pool
	Sim      *sim.Sim
	Provider app.PaymentProvider // the simulator's, without the test's timeouts
	// Inventory is the simulator's inventory, called as the product calls it.
	Inventory app.InventoryService
	River     *river.Client[pgx.Tx]
	Breakers  *app.Breakers
	URL       string
	// SimURL is the simulator's base URL.
	SimURL string
	dbURL  string
	o      Options
}

// New starts the product for t and stops it when t ends.
func New(t *testing.T, o Options) *Product {
	t.Helper()
	_, dbURL := dbtest.NewWithURL(t)
	s := sim.New(sim.Config{Now: o.Clock})
	simSrv := httptest.NewServer(s)
	t.Cleanup(simSrv.Close)
	prov, err := provider.NewHTTP(provider.HTTPConfig{BaseURL: simSrv.URL})
	if err != nil {
		t.Fatal(err)
	}
	inv, err := provider.NewInventoryHTTP(provider.InventoryHTTPConfig{BaseURL: simSrv.URL + sim.InventoryPath})
	if err != nil {
		t.Fatal(err)
	}
	p := &Product{T: t, Sim: s, Provider: prov, Inventory: inv, SimURL: simSrv.URL, dbURL: dbURL, o: o}
	svc := p.start("127.0.0.1:0", o.Workers, "api")
	p.Service, p.Pool, p.River, p.Breakers = svc, svc.Pool(), svc.River(), svc.Breakers()
	p.URL = "http://" + svc.APIAddr().String()
	// First of all at the end (cleanups run last in, first out): answers a
	// failed test left held are sent, so no server waits on them to close.
	t.Cleanup(s.Reset)
	return p
}

// StartWorkers starts another instance, without an API, working n jobs at
// once.
func (p *Product) StartWorkers(n int) {
	p.T.Helper()
	p.start("", n, "workers")
}

// start builds, starts and (at the test's end) stops one instance.
func (p *Product) start(apiAddr string, workers int, name string) *service.Service {
	t, o := p.T, p.o
	cfg, err := app.LoadConfig(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Instance = t.Name() + "/" + name
	cfg.Workers = workers
	cfg.CaptureTimeout = or(o.CaptureTimeout, Guard)
	cfg.ReadDeadline = or(o.ReadDeadline, Guard)
	cfg.ShutdownGrace = Guard
	cfg.SyncConcurrency = or(o.SyncLimit, 16)
	cfg.SyncHighValueReserve = max(0, or(o.HighValueReserve, app.DefaultHighValueReserve(cfg.SyncConcurrency)))
	cfg.DBMaxConns = or(o.PoolSize, 40) + app.BreakerConns + app.RiverListenerConns
	cfg.DBMinConns = 1
	pay := cfg.Dep(app.DepPayment)
	pay.Deadline = or(o.Deadline, Guard)
	pay.AsyncTimeout = or(o.AsyncTimeout, Guard)
	pay.MaxAttempts = or(o.MaxAttempts, GuardAttempts)
	pay.RetryBase, pay.RetryMax = 20*time.Millisecond, 100*time.Millisecond
	pay.DrainRate = o.DrainRate
	pay.MaxBacklog = or(o.MaxBacklog, pay.MaxBacklog)
	cfg.Deps[app.DepPayment] = pay
	inv := cfg.Dep(app.DepInventory)
	inv.MaxBacklog = or(o.OrderMaxBacklog, inv.MaxBacklog)
	cfg.Deps[app.DepInventory] = inv
	cfg.HighValueAmount = 100000
	cfg.Offpeak, cfg.PublicURL = o.Offpeak, o.PublicURL
	cfg.ReconcileEvery = or(o.ReconcileEvery, cfg.ReconcileEvery)
	cfg.Drills.Schedule = o.Drills.Schedule
	cfg.Drills.Duration = or(o.Drills.Duration, cfg.Drills.Duration)
	cfg.Drills.Canaries = or(o.Drills.Canaries, cfg.Drills.Canaries)
	cfg.Drills.Mode = or(o.Drills.Mode, cfg.Drills.Mode)
	log := slog.New(slog.DiscardHandler)
	var riverLog *slog.Logger
	if os.Getenv("TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		riverLog = log
	}
	senders := o.Senders
	if senders == nil {
		senders = &jobs.Senders{}
	}
	sc := service.Config{App: cfg, DatabaseURL: p.dbURL, APIAddr: apiAddr, Logger: log, RiverLogger: riverLog,
		Provider: timeoutOnHold(p.Provider, p.Sim, o.SyncTimeoutOnHold), Inventory: p.Inventory, Senders: senders,
		CheckCallback: func(context.Context, string) error { return nil }, BreakerPolicy: o.Breaker,
		Tuning: service.Tuning{BreakerFlushEvery: 20 * time.Millisecond, BreakerPollEvery: 200 * time.Millisecond,
			GatePollEvery: 50 * time.Millisecond, BacklogEvery: 20 * time.Millisecond, BreakerNow: o.Clock, RunnerNow: o.RunnerNow,
			DrillPoll: 20 * time.Millisecond, DrillNow: o.DrillNow,
			// A scrape waits for the counts however slow the query: a test
			// reads what it scrapes, never the give-up-and-serve-stale path.
			MetricsWait: Guard},
		JobProvider: timeoutOnHold(p.Provider, p.Sim, o.JobTimeoutOnHold),
	}
	if o.Kinds != nil {
		sc.Kinds = o.Kinds(p.SimURL)
	}
	if o.OwnAdapters {
		sc.Provider, sc.JobProvider, sc.Inventory, sc.Senders = nil, nil, nil, nil
		sc.App.PaymentProvider, sc.App.PaymentProviderURL = app.ProviderHTTP, p.SimURL
		sc.App.InventoryURL = p.SimURL + sim.InventoryPath
	}
	if o.Configure != nil {
		o.Configure(&sc.App)
	}
	if f := o.CheckCallback; f != nil {
		sc.CheckCallback = func(_ context.Context, url string) error { return f(url) }
	}
	svc, err := service.New(context.Background(), sc)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		svc.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// As a second signal would: a test's end waits for no job.
		hard := make(chan struct{})
		close(hard)
		_ = svc.Shutdown(hard)
		svc.Close()
	})
	return svc
}

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// StockCatalog puts the simulator's products in the test database's
// catalog; the kettle is priced so that a charge for one is declined (the
// simulator declines amounts ending in 02).
func (p *Product) StockCatalog() {
	p.T.Helper()
	for _, pr := range []app.Product{
		{SKU: "sku-tea", Name: "Tea", Price: 450, Currency: "usd", Active: true},
		{SKU: "sku-mug", Name: "Mug", Price: 1200, Currency: "usd", Active: true},
		{SKU: "sku-kettle", Name: "Kettle", Price: 3902, Currency: "usd", Active: true},
		{SKU: "sku-sold-out", Name: "Tea set", Price: 9900, Currency: "usd", Active: true},
	} {
		if _, err := db.InsertProductIfAbsent(context.Background(), p.Pool, pr); err != nil {
			p.T.Fatal(err)
		}
	}
}

// Response is an HTTP answer, read whole.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body as a JSON object, failing the test if it is not one.
func (r Response) JSON(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response is not JSON (%d): %q", r.Status, r.Body)
	}
	return m
}

// Do sends a request to the API and checks it carries a request id.
func (p *Product) Do(method, path, contentType, key string, body []byte) Response {
	p.T.Helper()
	req, err := http.NewRequest(method, p.URL+path, bytes.NewReader(body))
	if err != nil {
		p.T.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		p.T.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		p.T.Fatal(err)
	}
	if res.Header.Get("X-Request-Id") == "" {
		p.T.Errorf("%s %s: response has no X-Request-Id", method, path)
	}
	return Response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// Post sends a payment and reports a transport failure instead of failing
// the test, so that unlike Pay it may run on any goroutine.
func (p *Product) Post(key, body string) (Response, error) {
	req, err := http.NewRequest(http.MethodPost, p.URL+"/api/v1/payments", strings.NewReader(body))
	if err != nil {
		return Response{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return Response{}, err
	}
	return Response{Status: res.StatusCode, Header: res.Header, Body: b}, nil
}

// Pay sends a payment.
func (p *Product) Pay(key, body string) Response {
	p.T.Helper()
	return p.Do(http.MethodPost, "/api/v1/payments", "application/json", key, []byte(body))
}

// Operation reads an operation through the public API.
func (p *Product) Operation(id string) map[string]any {
	p.T.Helper()
	r := p.Do(http.MethodGet, "/api/v1/operations/"+id, "", "", nil)
	if r.Status != http.StatusOK {
		p.T.Fatalf("GET operation %s: %d %s", id, r.Status, r.Body)
	}
	return r.JSON(p.T)
}

// WaitStatus polls the public API until the operation reaches want.
func (p *Product) WaitStatus(id string, want app.Status) map[string]any {
	p.T.Helper()
	deadline := time.Now().Add(apptest.Patience)
	for {
		doc := p.Operation(id)
		if doc["status"] == string(want) {
			return doc
		}
		if time.Now().After(deadline) {
			p.T.Fatalf("operation %s stayed %v, want %s: %v", id, doc["status"], want, doc)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Count runs a query returning one number.
func (p *Product) Count(sql string, args ...any) int {
	p.T.Helper()
	var n int
	if err := p.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		p.T.Fatalf("%s: %v", sql, err)
	}
	return n
}

// ProviderKey is the key the simulator sees for the first attempt of a
// payment made with idempotencyKey: its operation's id
// (Operation.ProviderKey before any key is closed). A test holds it before
// paying.
func ProviderKey(idempotencyKey string) string {
	return app.OperationID("payments", idempotencyKey).String()
}

// timeoutOnHold returns p, or when on, p with charges that time out once
// the simulator holds their answer.
func timeoutOnHold(p app.PaymentProvider, s *sim.Sim, on bool) app.PaymentProvider {
	if !on {
		return p
	}
	return &heldTimesOut{PaymentProvider: p, sim: s}
}

// heldTimesOut gives each charge a deadline that passes when the
// simulator holds the charge's answer: after the provider has acted and
// before its caller can hear back, whatever the machine's speed. The
// caller's own deadline and cancellation still apply.
type heldTimesOut struct {
	app.PaymentProvider
	sim *sim.Sim
}

func (p *heldTimesOut) Charge(ctx context.Context, c app.Charge) (app.ChargeResult, error) {
	before := p.sim.Held(c.IdempotencyKey)
	cctx, stop := expireWhen(ctx, func() bool { return p.sim.Held(c.IdempotencyKey) > before })
	defer stop()
	return p.PaymentProvider.Charge(cctx, c)
}

// expireWhen returns a context whose deadline passes once cond holds (or
// parent's does), and which is cancelled with parent. Its Err is
// context.DeadlineExceeded in the first two cases, as a real deadline's.
func expireWhen(parent context.Context, cond func() bool) (context.Context, func()) {
	ectx, expire := apptest.ExpiringContext()
	ctx, cancel := context.WithCancel(ectx)
	stopParent := context.AfterFunc(parent, func() {
		if errors.Is(parent.Err(), context.DeadlineExceeded) {
			expire()
		} else {
			cancel()
		}
	})
	var ended atomic.Bool
	go func() {
		for !ended.Load() && ctx.Err() == nil {
			if cond() {
				expire()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	return ctx, func() {
		ended.Store(true)
		stopParent()
		cancel()
	}
}
