package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/db/dbtest"
	"github.com/spillway/spillway/jobs"
	"github.com/spillway/spillway/web"
	"github.com/spillway/spillway/web/provider"
	"github.com/spillway/spillway/web/sim"
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

type harnessOpts struct {
	deadline    time.Duration
	workers     int // 0: no workers (jobs stay queued)
	maxAttempts int
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
	// captureTimeout is CAPTURE_TIMEOUT; 0 means 5 s.
	captureTimeout time.Duration
	// asyncTimeout is PAYMENT_ASYNC_TIMEOUT; 0 means 5 s.
	asyncTimeout time.Duration
	// reconcileEvery is RECONCILE_EVERY; 0 means jobs' default (1 min).
	reconcileEvery time.Duration
}

func newHarness(t *testing.T, o harnessOpts) *harness {
	t.Helper()
	if o.deadline == 0 {
		o.deadline = 2 * time.Second
	}
	if o.maxAttempts == 0 {
		o.maxAttempts = 25
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
		o.captureTimeout = 5 * time.Second
	}
	if o.asyncTimeout == 0 {
		o.asyncTimeout = 5 * time.Second
	}
	s := sim.New(sim.Config{})
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
	reg.MustRegister(web.NewQueueDepthCollector(pool))
	metrics := app.NewMetrics(reg)
	policy := app.DefaultBreakerPolicy()
	if o.breaker != nil {
		policy = *o.breaker
	}
	breakers, err := app.NewBreakers(app.BreakersConfig{
		Store: &db.BreakerStore{Pool: breakerPool}, Instance: t.Name(), FlushEvery: 20 * time.Millisecond,
		PollEvery: 200 * time.Millisecond, Logger: log, OnChange: metrics.BreakerChanged,
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
		Pool: pool, Provider: prov, Workers: o.workers, CallTimeout: o.asyncTimeout, ReconcileEvery: o.reconcileEvery,
		RetryBase: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond, Logger: log,
		Breakers: breakers, Dependency: "payment", Metrics: metrics,
		RiverLogger: riverLog(log),
		Drain:       app.NewDrainLimiter(&db.RateLimitStore{Pool: pool}, "payment", o.drainRate),
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
		Store: db.NewStore(pool), Jobs: rc, Provider: prov, Deadline: o.deadline,
		CaptureTimeout: o.captureTimeout, SyncLimit: o.syncLimit, HighValueAmount: 100000,
		Breakers: breakers, Dependency: "payment", Metrics: metrics,
		Offpeak: o.offpeak, Channels: o.senders.Channels(), CheckCallback: checkCallback(o.checkCallback),
		MaxAttempts: o.maxAttempts, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	hub := web.NewEventHub(pool, log)
	go hub.Run(bctx)
	api := httptest.NewServer(web.NewServer(web.Config{Runner: runner, Pool: pool, Logger: log, Metrics: reg, Events: hub}))
	t.Cleanup(api.Close)
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
	deadline := time.Now().Add(30 * time.Second)
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
