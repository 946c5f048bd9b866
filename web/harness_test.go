package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/apptest"
	"github.com/spillway/spillway/app/provider"
	"github.com/spillway/spillway/app/sim"
	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/db/dbtest"
	"github.com/spillway/spillway/jobs"
	"github.com/spillway/spillway/web"
)

// harness is the whole product on real parts: a fresh Postgres database,
// River working jobs, the simulator on loopback as the provider, and the
// HTTP API on loopback.
type harness struct {
	t        *testing.T
	pool     *pgxpool.Pool
	sim      *sim.Sim
	provider app.PaymentProvider
	river    *river.Client[pgx.Tx]
	breakers *app.Breakers
	url      string
	// startWorkers starts another River client working n jobs at once.
	startWorkers func(n int)
}

// guard is what the harness gives every deadline a test does not mean to
// reach: the sync deadline, the job call timeout and the capture budget.
// It only turns a hang into a failure. A test that needs a call to time
// out makes it do so at a chosen event (syncTimeoutOnHold,
// jobTimeoutOnHold) instead of racing a short deadline against a
// loopback call that -race and a loaded machine can slow down.
const guard = apptest.Patience

// guardAttempts is the attempt budget of a job whose test does not mean to
// exhaust it. Worker retries run on the real clock, so how many attempts
// a job spends against a provider that is down until the test brings it
// back depends on the machine's speed; a test about exhaustion sets its
// own small budget.
const guardAttempts = 1000

type harnessOpts struct {
	deadline    time.Duration // 0: guard
	workers     int           // 0: no workers (jobs stay queued)
	maxAttempts int           // 0: guardAttempts
	syncLimit   int
	breaker     *app.BreakerPolicy // nil: the default policy
	drainRate   float64
	offpeak     app.OffpeakWindow
	senders     *jobs.Senders
	publicURL   string
	// checkCallback vets callback URLs at request time; nil accepts all.
	checkCallback func(url string) error
	// poolSize sizes the request and worker pool as DB_MAX_CONNS would;
	// 0 keeps the test database's default. The breakers always get a pool
	// of their own, as in serve.
	poolSize int
	// captureTimeout is CAPTURE_TIMEOUT; 0 means guard.
	captureTimeout time.Duration
	// asyncTimeout is PAYMENT_ASYNC_TIMEOUT; 0 means guard.
	asyncTimeout time.Duration
	// reconcileEvery is RECONCILE_EVERY; 0 means jobs' default (1 min).
	reconcileEvery time.Duration
	// syncTimeoutOnHold and jobTimeoutOnHold make a sync call, or a
	// worker's call, time out once the simulator holds its answer (see
	// sim.Hold): the charge has arrived and been decided, its caller has
	// not heard back. Keys the test does not hold are called as usual.
	syncTimeoutOnHold, jobTimeoutOnHold bool
	// clock, when set, is the simulator's time (its flapping) and the
	// breakers' (windows, open waits); nil is the real clock. River, the
	// runner and Postgres keep the real one.
	clock func() time.Time
	// runnerNow, when set, is the runner's clock; nil is the real one.
	runnerNow func() time.Time
}

func newHarness(t *testing.T, o harnessOpts) *harness {
	t.Helper()
	if o.deadline == 0 {
		o.deadline = guard
	}
	if o.maxAttempts == 0 {
		o.maxAttempts = guardAttempts
	}
	if o.syncLimit == 0 {
		o.syncLimit = 16
	}
	pool, dbURL := dbtest.NewWithURL(t)
	if o.poolSize > 0 {
		var err error
		if pool, err = db.Open(context.Background(), db.PoolConfig{URL: dbURL, MaxConns: o.poolSize}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
	}
	breakerPool, err := db.Open(context.Background(), db.PoolConfig{URL: dbURL, MaxConns: app.BreakerConns})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(breakerPool.Close)
	if o.captureTimeout == 0 {
		o.captureTimeout = guard
	}
	if o.asyncTimeout == 0 {
		o.asyncTimeout = guard
	}
	s := sim.New(sim.Config{Now: o.clock})
	simSrv := httptest.NewServer(s)
	t.Cleanup(simSrv.Close)
	prov, err := provider.NewHTTP(provider.HTTPConfig{BaseURL: simSrv.URL})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	reg := prometheus.NewRegistry()
	// A scrape waits for the counts however slow the query: a test reads
	// what it scrapes, never the collector's give-up-and-serve-stale path.
	reg.MustRegister(web.NewQueueDepthCollector(web.QueueDepthConfig{Query: func(ctx context.Context) ([]db.QueueDepth, error) { return db.ListQueueDepths(ctx, pool) }, Wait: guard, QueryTimeout: guard}))
	metrics := app.NewMetrics(reg)
	policy := app.DefaultBreakerPolicy()
	if o.breaker != nil {
		policy = *o.breaker
	}
	breakers, err := app.NewBreakers(app.BreakersConfig{
		Store: db.NewStore(breakerPool), Instance: t.Name(), FlushEvery: 20 * time.Millisecond,
		PollEvery: 200 * time.Millisecond, Logger: log, OnChange: metrics.BreakerChanged, Now: o.clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := breakers.Register(context.Background(), "payment", policy, app.PolicyOverride{}); err != nil {
		t.Fatal(err)
	}
	bctx, stopBreakers := context.WithCancel(context.Background())
	breakersDone := make(chan struct{})
	go func() { _ = breakers.Run(bctx); close(breakersDone) }()
	t.Cleanup(func() { stopBreakers(); <-breakersDone })
	jobCfg := jobs.Config{
		Pool: pool, Provider: timeoutOnHold(prov, s, o.jobTimeoutOnHold), Workers: o.workers,
		CallTimeout: o.asyncTimeout, ReconcileEvery: o.reconcileEvery,
		RetryBase: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond, Logger: log,
		Breakers: breakers, Dependency: "payment", Metrics: metrics,
		RiverLogger: riverLog(log),
		Drain:       app.NewDrainLimiter(db.NewStore(pool), "payment", o.drainRate),
		Offpeak:     o.offpeak, Channels: o.senders.Channels(), Senders: o.senders, PublicURL: o.publicURL,
	}
	rc, err := jobs.NewClient(jobCfg)
	if err != nil {
		t.Fatal(err)
	}
	if o.workers > 0 {
		if err := rc.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = rc.StopAndCancel(ctx)
		})
		// As in serve: the payments queue follows the breaker.
		gate := jobs.NewQueueGate(jobs.QueueGateConfig{Client: rc, Pool: pool, Queue: app.QueuePayments,
			Breakers: breakers, Dependency: "payment", Poll: 50 * time.Millisecond, Logger: log})
		go gate.Run(bctx)
	}
	runner, err := app.NewRunner(app.RunnerConfig{
		Store: db.NewStore(pool), Jobs: rc, Provider: timeoutOnHold(prov, s, o.syncTimeoutOnHold), Deadline: o.deadline,
		CaptureTimeout: o.captureTimeout, SyncLimit: o.syncLimit, HighValueAmount: 100000,
		Breakers: breakers, Dependency: "payment", Metrics: metrics,
		Offpeak: o.offpeak, Channels: o.senders.Channels(), CheckCallback: checkCallback(o.checkCallback),
		MaxAttempts: o.maxAttempts, Logger: log, Now: o.runnerNow,
	})
	if err != nil {
		t.Fatal(err)
	}
	hub := web.NewEventHub(db.NewStore(pool), log)
	go hub.Run(bctx)
	api := httptest.NewServer(web.NewServer(web.Config{Payments: runner, Operations: db.NewStore(pool), Health: db.NewStore(pool), Logger: log, Metrics: reg, Events: hub}))
	t.Cleanup(api.Close)
	// First of all at the end (cleanups run last in, first out): answers a
	// failed test left held are sent, so no server waits on them to close.
	t.Cleanup(s.Reset)
	h := &harness{t: t, pool: pool, sim: s, provider: prov, river: rc, breakers: breakers, url: api.URL}
	h.startWorkers = func(n int) {
		t.Helper()
		jc := jobCfg
		jc.Workers = n
		wc, err := jobs.NewClient(jc)
		if err != nil {
			t.Fatal(err)
		}
		if err := wc.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = wc.StopAndCancel(ctx)
		})
	}
	return h
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not JSON (%d): %q", r.status, r.body)
	}
	return m
}

func (h *harness) do(method, path, contentType, key string, body []byte) response {
	h.t.Helper()
	req, err := http.NewRequest(method, h.url+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	if res.Header.Get("X-Request-Id") == "" {
		h.t.Errorf("%s %s: response has no X-Request-Id", method, path)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// post sends a payment and reports a transport failure instead of failing
// the test, so that unlike pay it may run on any goroutine.
func (h *harness) post(key, body string) (response, error) {
	req, err := http.NewRequest(http.MethodPost, h.url+"/api/v1/payments", strings.NewReader(body))
	if err != nil {
		return response{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: res.StatusCode, header: res.Header, body: b}, nil
}

func (h *harness) pay(key, body string) response {
	h.t.Helper()
	return h.do(http.MethodPost, "/api/v1/payments", "application/json", key, []byte(body))
}

func (h *harness) operation(id string) map[string]any {
	h.t.Helper()
	r := h.do(http.MethodGet, "/api/v1/operations/"+id, "", "", nil)
	if r.status != http.StatusOK {
		h.t.Fatalf("GET operation %s: %d %s", id, r.status, r.body)
	}
	return r.json(h.t)
}

// waitStatus polls the public API until the operation reaches want.
func (h *harness) waitStatus(id string, want app.Status) map[string]any {
	h.t.Helper()
	deadline := time.Now().Add(apptest.Patience)
	for {
		doc := h.operation(id)
		if doc["status"] == string(want) {
			return doc
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("operation %s stayed %v, want %s: %v", id, doc["status"], want, doc)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (h *harness) count(sql string, args ...any) int {
	h.t.Helper()
	var n int
	if err := h.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		h.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func keyf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

func checkCallback(f func(string) error) func(context.Context, string) error {
	if f == nil {
		return nil
	}
	return func(_ context.Context, url string) error { return f(url) }
}

func riverLog(log *slog.Logger) *slog.Logger {
	if os.Getenv("TEST_LOG") != "" {
		return log
	}
	return nil
}

// providerKey is the key the simulator sees for the first attempt of a
// payment made with idempotencyKey: its operation's id (Operation.ProviderKey
// before any key is closed). A test holds it before paying.
func providerKey(idempotencyKey string) string {
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
