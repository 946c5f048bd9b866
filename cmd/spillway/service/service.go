// Package service wires Spillway once: from an app.Config it builds the
// pools, the breakers, the River client and its workers, the runner, the
// HTTP API with the admin UI and the simulator, runs them, and shuts them
// down in the order that loses nothing. `spillway serve` and `spillway
// worker` run it, and so do the product-level tests (through
// service/servicetest), so what the tests exercise is what users run.
package service

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/riverqueue/river"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/provider"
	"github.com/spillway/spillway/app/sim"
	"github.com/spillway/spillway/app/tracing"
	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/jobs"
	"github.com/spillway/spillway/jobs/notify"
	"github.com/spillway/spillway/web"
	"github.com/spillway/spillway/web/admin"
)

// DependencyPayment names the payment provider's breaker.
const DependencyPayment = app.DepPayment

// Config is what the service is built from: the environment's app.Config,
// where the database is, and where to listen. The remaining fields are
// for tests, which replace what lies outside the product (the provider,
// the senders) and shorten its timers; their zero values are the
// product's own.
type Config struct {
	App app.Config
	// DatabaseURL is where the database is (DATABASE_URL, or the local
	// cluster's URL).
	DatabaseURL string
	// APIAddr, when set, is where the JSON API, the status page, /metrics
	// and the admin UI are served (SPILLWAY_ADDR); "" runs workers only
	// (`spillway worker`).
	APIAddr string
	// SimAddr, when set and App names the simulator as the provider, is
	// where the embedded simulator is served (SIM_ADDR); it becomes the
	// provider.
	SimAddr string
	Logger  *slog.Logger
	// RiverLogger is River's own logger; nil keeps River quiet.
	RiverLogger *slog.Logger

	// Provider replaces the provider App names. JobProvider, when set,
	// replaces it again for the workers (a test makes their calls, not the
	// runner's, time out).
	Provider, JobProvider app.PaymentProvider
	// Inventory replaces the inventory App names (INVENTORY_URL, or the
	// embedded simulator's).
	Inventory app.InventoryService
	// Senders and CheckCallback replace the notification senders App
	// configures and the check of callback URLs at request time.
	Senders       *jobs.Senders
	CheckCallback func(ctx context.Context, url string) error
	// Kinds are step kinds beyond the product's own (orders), each with
	// its worker's registration: a new kind needs nothing else.
	Kinds []Kind
	// BreakerPolicy replaces every breaker's default policy (each
	// dependency's BREAKER_<DEP>_* settings still override single
	// thresholds).
	BreakerPolicy *app.BreakerPolicy
	Tuning        Tuning
}

// Kind is a step kind and its worker's registration.
type Kind struct {
	Kind   *app.StepKind
	Worker jobs.StepRegistration
}

// Tuning shortens the product's timers and replaces its clocks, for tests.
type Tuning struct {
	BreakerFlushEvery time.Duration
	BreakerPollEvery  time.Duration
	GatePollEvery     time.Duration
	// BreakerNow is the breakers' clock; RunnerNow the runner's.
	BreakerNow, RunnerNow func() time.Time
	// MetricsWait bounds how long a scrape waits for fresh queue counts.
	MetricsWait time.Duration
	// BacklogEvery is how often the backlog bounds are read.
	BacklogEvery time.Duration
	// DrillPoll is how often a draining drill looks at its canaries;
	// DrillNow is the drills' clock (a test moves it past a deadline).
	DrillPoll time.Duration
	DrillNow  func() time.Time
}

// Service is the whole product of one instance.
type Service struct {
	cfg         Config
	log         *slog.Logger
	pool        *pgxpool.Pool
	breakerPool *pgxpool.Pool
	// directPool is Postgres itself when pool is a pooler
	// (DATABASE_DIRECT_URL): LISTENs and migrations; nil otherwise.
	directPool *pgxpool.Pool
	adminPool  *pgxpool.Pool // the admin pages' reads; nil without an API
	provider   app.PaymentProvider
	inventory  app.InventoryService // nil: none configured
	registry   *prometheus.Registry
	tracing    *tracing.Tracing // off unless OTEL_EXPORTER_OTLP_*ENDPOINT is set
	breakers   *app.Breakers
	river      *river.Client[pgx.Tx]
	runner     *app.Runner
	backlog    *app.BacklogBounds
	features   *app.FeatureSwitch
	drills     *app.Drills
	// catalogReads is the shop's and the catalog API's, nil without an
	// inventory.
	catalogReads *app.Catalog
	hub          *web.EventHub
	gate         atomic.Pointer[jobs.QueueGate]
	instance     string
	working      bool // River was started
	stopping     chan struct{}
	api, sim     *http.Server
	apiLn        net.Listener
	simLn        net.Listener
	errc         chan error
	// bctx outlives request handling: the breakers flush the last
	// outcomes for the other instances, and the gate and the event hub
	// run on it.
	bctx         context.Context
	stopBg       context.CancelFunc
	breakersDone chan error
}

// New builds the service and migrates the database; nothing runs until
// Start. Close releases what New opened.
func New(ctx context.Context, cfg Config) (_ *Service, err error) {
	s := &Service{cfg: cfg, log: cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler)), stopping: make(chan struct{}),
		errc: make(chan error, 2), breakersDone: make(chan error, 1)}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	ac := cfg.App
	if s.instance = ac.Instance; s.instance == "" {
		host, _ := os.Hostname()
		s.instance = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	// Tracing first: the request pool's queries, the providers' calls and
	// River's jobs are traced from the start (and not at all when off).
	if s.tracing, err = tracing.New(ctx, tracing.Config{TracesURL: ac.Traces.URL, ServiceName: ac.Traces.ServiceName,
		Instance: s.instance}); err != nil {
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT: %w", err)
	}
	pooler := ac.DatabaseDirectURL != ""
	if s.pool, err = db.Open(ctx, db.PoolConfig{URL: cfg.DatabaseURL, MaxConns: ac.PoolConns(), MinConns: ac.DBMinConns, Pooler: pooler,
		Tracer: s.tracing.Tracer("github.com/spillway/spillway/db")}); err != nil {
		return nil, err
	}
	// Behind a pooler in transaction mode, what needs a session of its
	// own goes straight to Postgres: goose's session lock (which makes
	// instances starting together migrate once) and the LISTENs.
	session := s.pool
	if pooler {
		if s.directPool, err = db.Open(ctx, db.PoolConfig{URL: ac.DatabaseDirectURL, MaxConns: app.DirectConns}); err != nil {
			return nil, fmt.Errorf("DATABASE_DIRECT_URL: %w", err)
		}
		session = s.directPool
	} else if err := checkConnLimit(ctx, s.pool, ac); err != nil {
		// Through a pooler DB_MAX_CONNS counts connections to the pooler,
		// and the pooler's own pool size is what must fit the server.
		return nil, err
	}
	if err := db.MigrateUp(ctx, session, io.Discard); err != nil {
		return nil, err
	}
	// The breakers get connections of their own: a request holding its
	// transaction's connection must never wait on the same pool to claim
	// or finish a probe, or a recovery at full load deadlocks into 503s.
	if s.breakerPool, err = db.Open(ctx, db.PoolConfig{URL: cfg.DatabaseURL, MaxConns: app.BreakerConns, Pooler: pooler}); err != nil {
		return nil, err
	}
	// The admin pages read on a pool of their own too, so an operator
	// sees an overload while requests queue for the request pool.
	if cfg.APIAddr != "" {
		if s.adminPool, err = db.Open(ctx, db.PoolConfig{URL: cfg.DatabaseURL, MaxConns: app.AdminConns, Pooler: pooler}); err != nil {
			return nil, err
		}
	}
	// Listen before anything else runs, but after the database said yes,
	// so a taken port fails fast and a refused start never announces
	// itself.
	if cfg.APIAddr != "" {
		if s.apiLn, err = net.Listen("tcp", cfg.APIAddr); err != nil {
			return nil, fmt.Errorf("SPILLWAY_ADDR %s: %w", cfg.APIAddr, err)
		}
	}
	if s.provider = cfg.Provider; s.provider == nil {
		if ac.PaymentProvider == app.ProviderSim && cfg.SimAddr != "" {
			if s.simLn, err = net.Listen("tcp", cfg.SimAddr); err != nil {
				return nil, fmt.Errorf("SIM_ADDR %s: %w", cfg.SimAddr, err)
			}
			ac.PaymentProviderURL = "http://" + s.simLn.Addr().String()
			s.sim = &http.Server{Handler: sim.New(sim.Config{}), ReadHeaderTimeout: 5 * time.Second}
		}
		if s.provider, err = newProvider(ac, s.tracing); err != nil {
			return nil, err
		}
	}
	if s.inventory = cfg.Inventory; s.inventory == nil {
		url := ac.InventoryURL
		if url == "" && s.simLn != nil {
			url = "http://" + s.simLn.Addr().String() + sim.InventoryPath
		}
		if url != "" {
			if s.inventory, err = provider.NewInventoryHTTP(provider.InventoryHTTPConfig{BaseURL: url,
				WrapTransport: s.tracing.WrapTransport(app.DepInventory)}); err != nil {
				return nil, fmt.Errorf("INVENTORY_URL: %w", err)
			}
		}
	}

	s.registry = prometheus.NewRegistry()
	pool := s.pool
	s.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		web.NewQueueDepthCollector(web.QueueDepthConfig{Wait: cfg.Tuning.MetricsWait, QueryTimeout: cfg.Tuning.MetricsWait,
			Query: func(ctx context.Context) ([]db.QueueDepth, error) { return db.ListQueueDepths(ctx, pool) }}))
	metrics := app.NewMetrics(s.registry)
	reconcileAfter := ac.ReconcileAfter
	s.registry.MustRegister(web.NewAwaitingOperatorCollector(web.AwaitingOperatorConfig{Logger: s.log,
		Query: func(ctx context.Context) (db.AwaitingOperator, error) {
			return db.ReadAwaitingOperator(ctx, pool, app.StorageTime(time.Now()).Add(-reconcileAfter))
		}}))
	s.registry.MustRegister(web.NewDrillCollector(web.DrillMetricsConfig{Logger: s.log,
		Query: func(ctx context.Context) (map[string]app.Drill, error) {
			_, finished, err := db.LastDrills(ctx, pool)
			return finished, err
		}}))
	// The gate needs the River client, which needs the breakers: it is
	// attached once both exist.
	if s.breakers, err = app.NewBreakers(app.BreakersConfig{
		Store: &db.Store{Pool: s.breakerPool, ListenPool: s.directPool}, Instance: s.instance, Logger: s.log,
		FlushEvery: cfg.Tuning.BreakerFlushEvery, PollEvery: cfg.Tuning.BreakerPollEvery, Now: cfg.Tuning.BreakerNow,
		OnChange: func(b app.Breaker, transition bool) {
			metrics.BreakerChanged(b, transition)
			if g := s.gate.Load(); g != nil && b.Name == DependencyPayment {
				g.BreakerChanged(b)
			}
		},
	}); err != nil {
		return nil, err
	}
	policy := app.DefaultBreakerPolicy()
	if cfg.BreakerPolicy != nil {
		policy = *cfg.BreakerPolicy
	}
	// Every declared dependency has its breaker, shared by the instances,
	// whether or not this instance calls it yet: the pages and metrics
	// show each one.
	for _, d := range app.Dependencies() {
		if err := s.breakers.Register(ctx, d.Name, policy, ac.Dep(d.Name).Breaker); err != nil {
			return nil, err
		}
	}

	senders, check, err := newSenders(ac, s.tracing)
	if err != nil {
		return nil, err
	}
	if cfg.Senders != nil {
		senders = cfg.Senders
	}
	if cfg.CheckCallback != nil {
		check = cfg.CheckCallback
	}
	// The workers' kinds call the workers' provider (a test may replace
	// it), the runner's the runner's.
	syncKinds, err := s.kinds(s.provider)
	if err != nil {
		return nil, err
	}
	jobKinds, err := s.kinds(s.jobProvider())
	if err != nil {
		return nil, err
	}
	if s.river, err = jobs.NewClient(s.jobsConfig(ac, senders, metrics, jobKinds)); err != nil {
		return nil, err
	}
	pay := ac.Dep(DependencyPayment)
	var bounds []app.BacklogBound
	for _, d := range app.Dependencies() {
		ds := ac.Dep(d.Name)
		bounds = append(bounds, app.BacklogBound{Dependency: d.Name, Queue: d.Queue, MaxJobs: ds.MaxBacklog, MaxAge: ds.MaxBacklogAge})
	}
	s.backlog = app.NewBacklogBounds(app.BacklogConfig{Reader: db.NewStore(s.pool), Bounds: bounds,
		Every: cfg.Tuning.BacklogEvery, Metrics: metrics, Logger: s.log})
	if s.runner, err = app.NewRunner(app.RunnerConfig{
		Store: db.NewStore(s.pool), Jobs: s.river, Deadline: pay.Deadline,
		CaptureTimeout: ac.CaptureTimeout, SyncLimit: ac.SyncConcurrency, HighValueReserve: ac.SyncHighValueReserve,
		Backlog: s.backlog, Kinds: syncKinds, StepDeadline: ac.OrderDeadline,
		DependencyDeadlines: deadlines(ac),
		Breakers:            s.breakers, Metrics: metrics,
		Channels: senders.Channels(), Offpeak: ac.Offpeak, DefaultDefer: ac.PaymentDefer, KeyTTL: ac.IdempotencyTTL,
		CheckCallback: check, HighValueAmount: ac.HighValueAmount, MaxAttempts: pay.MaxAttempts,
		Logger: s.log, Now: cfg.Tuning.RunnerNow, Tracer: s.tracing.Tracer("github.com/spillway/spillway/app"),
	}); err != nil {
		return nil, err
	}
	if s.drills, err = app.NewDrills(app.DrillsConfig{Store: db.NewStore(s.pool), Jobs: s.river, Breakers: s.breakers,
		Canaries: s.runner, Dependencies: drillable(s.health(s.jobProvider())), Settings: ac.Drills,
		Poll: cfg.Tuning.DrillPoll, Now: cfg.Tuning.DrillNow, Logger: s.log}); err != nil {
		return nil, err
	}
	// The feature hierarchy weighs the same breakers and bulkhead the
	// admin overview shows, and the request pool.
	if s.features, err = app.NewFeatureSwitch(app.FeaturesConfig{Store: db.NewStore(s.pool), Pool: db.NewStore(s.pool),
		Breakers: s.breakers, Changed: s.breakers.Changed, Hold: ac.FeatureHold, Logger: s.log,
		Bulkheads: map[string]app.Bulkhead{DependencyPayment: s.runner.Admission()}}); err != nil {
		return nil, err
	}
	if s.apiLn != nil {
		if err := s.buildAPI(ctx, ac, senders); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// jobsConfig is the River client's configuration.
func (s *Service) jobsConfig(ac app.Config, senders *jobs.Senders, metrics *app.Metrics, kinds *app.Kinds) jobs.Config {
	pay := ac.Dep(DependencyPayment)
	workers := []jobs.StepRegistration{jobs.StepWorkerFor[app.OrderArgs]()}
	for _, k := range s.cfg.Kinds {
		workers = append(workers, k.Worker)
	}
	if _, ok := kinds.Get(app.KindCanary); ok {
		workers = append(workers, jobs.StepWorkerFor[app.CanaryArgs]())
	}
	return jobs.Config{
		Pool: s.pool, ListenPool: s.directPool, Provider: s.jobProvider(), Kinds: kinds, StepWorkers: workers, AsyncTimeouts: asyncTimeouts(ac),
		Workers: ac.Workers, CallTimeout: pay.AsyncTimeout,
		KeyRetention: ac.PaymentKeyRetention, Stopping: s.stopping,
		RetryBase: pay.RetryBase, RetryMax: pay.RetryMax, Logger: s.log, RiverLogger: s.cfg.RiverLogger,
		Breakers: s.breakers, Metrics: metrics, Drains: s.drains(ac), Tracing: s.tracing,
		Offpeak: ac.Offpeak, Channels: senders.Channels(), Senders: senders, PublicURL: ac.PublicURL,
		ReconcileEvery: ac.ReconcileEvery, ReconcileAfter: ac.ReconcileAfter,
		Drills: lateDrills{s}, DrillSchedule: ac.Drills.Schedule,
		// A charge younger than the grace may belong to a request still
		// committing (it can take the deadline and the capture budget).
		Orphans: jobs.OrphanConfig{Every: ac.OrphanSweepEvery, Refund: ac.OrphanRefund,
			Grace: max(ac.OrphanGrace, pay.Deadline+ac.CaptureTimeout+time.Minute)},
	}
}

// drains is each dependency's drain limiter, shared by the instances
// through the database.
func (s *Service) drains(ac app.Config) map[string]*app.DrainLimiter {
	m := map[string]*app.DrainLimiter{}
	for _, d := range app.Dependencies() {
		if l := app.NewDrainLimiter(db.NewStore(s.pool), d.Name, ac.Dep(d.Name).DrainRate); l != nil {
			m[d.Name] = l
		}
	}
	return m
}

// kinds is the registry of operation kinds, their charges made at
// payments: payments themselves; orders when an inventory is configured
// (without one they are refused with 503); and the kinds Config adds.
func (s *Service) kinds(payments app.PaymentProvider) (*app.Kinds, error) {
	pay, err := app.NewPaymentKind(app.PaymentKindConfig{Provider: payments})
	if err != nil {
		return nil, err
	}
	ks := []*app.StepKind{pay}
	if s.inventory != nil {
		order, err := app.NewOrderKind(app.OrderKindConfig{Inventory: s.inventory, Payments: payments, Catalog: db.NewStore(s.pool)})
		if err != nil {
			return nil, err
		}
		ks = append(ks, order)
	}
	for _, k := range s.cfg.Kinds {
		ks = append(ks, k.Kind)
	}
	ks = append(ks, app.NewCanaryKind(s.health(payments)))
	return app.NewKinds(ks...)
}

// health is each dependency's health endpoint that drills' canaries can
// call: the payment provider's and the inventory's, when they serve one.
func (s *Service) health(payments app.PaymentProvider) map[string]app.HealthChecker {
	m := map[string]app.HealthChecker{}
	if h, ok := payments.(app.HealthChecker); ok {
		m[DependencyPayment] = h
	}
	if h, ok := s.inventory.(app.HealthChecker); ok {
		m[app.DepInventory] = h
	}
	return m
}

// drillable lists the dependencies with a health endpoint, in the
// declared order.
func drillable(health map[string]app.HealthChecker) []string {
	var deps []string
	for _, d := range app.Dependencies() {
		if health[d.Name] != nil {
			deps = append(deps, d.Name)
		}
	}
	return deps
}

// lateDrills hands the drill jobs the drills, which are built after the
// River client they insert with; jobs run only after Start, when they
// exist.
type lateDrills struct{ s *Service }

func (l lateDrills) Advance(ctx context.Context, id int64) (time.Duration, error) {
	return l.s.drills.Advance(ctx, id)
}

func (l lateDrills) Schedule(ctx context.Context) ([]app.Drill, error) {
	return l.s.drills.Schedule(ctx)
}

// deadlines is each dependency's bound on one synchronous call.
func deadlines(ac app.Config) map[string]time.Duration {
	m := map[string]time.Duration{}
	for _, d := range app.Dependencies() {
		m[d.Name] = ac.Dep(d.Name).Deadline
	}
	return m
}

// asyncTimeouts is each dependency's bound on one worker call.
func asyncTimeouts(ac app.Config) map[string]time.Duration {
	m := map[string]time.Duration{}
	for _, d := range app.Dependencies() {
		m[d.Name] = ac.Dep(d.Name).AsyncTimeout
	}
	return m
}

// jobProvider is the provider the workers call.
func (s *Service) jobProvider() app.PaymentProvider {
	if s.cfg.JobProvider != nil {
		return s.cfg.JobProvider
	}
	return s.provider
}

// buildAPI builds the HTTP server: the API, the customer's pages,
// /metrics and the admin UI.
func (s *Service) buildAPI(ctx context.Context, ac app.Config, senders *jobs.Senders) error {
	operator, err := app.NewOperator(app.OperatorConfig{
		Store: db.NewStore(s.pool), Jobs: s.river, Breakers: s.breakers, Provider: s.provider, Channels: senders.Channels(),
		GatedQueues: map[string]string{app.QueuePayments: DependencyPayment}, Features: s.features, Drills: s.drills,
		SessionIdle: ac.AdminSessionIdle, Logger: s.log,
	})
	if err != nil {
		return err
	}
	if ac.AdminEmail != "" {
		if err := operator.EnsureFirstAdmin(ctx, ac.AdminEmail, ac.AdminPassword); err != nil {
			return err // names ADMIN_EMAIL or ADMIN_PASSWORD
		}
	}
	host, _, _ := net.SplitHostPort(s.apiLn.Addr().String())
	ip := net.ParseIP(host)
	adminHandler, err := admin.New(admin.Config{
		Pool: s.adminPool, Operator: operator, Logger: s.log,
		SecureCookies: !(host == "localhost" || (ip != nil && ip.IsLoopback())),
		PublicURL:     ac.PublicURL, TrustedProxies: ac.TrustedProxies,
		ReconcileAfter: ac.ReconcileAfter, OrphanRefund: ac.OrphanRefund,
		Backlog:         s.backlog,
		Bulkheads:       map[string]admin.Bulkhead{DependencyPayment: s.runner.Admission()},
		HighValueAmount: ac.HighValueAmount, Features: s.features, Drills: s.drills,
	})
	if err != nil {
		return err
	}
	store := db.NewStore(s.pool)
	catalog, err := s.catalog(ac, store)
	if err != nil {
		return err
	}
	s.catalogReads = catalog
	customer, err := s.shop(store, catalog)
	if err != nil {
		return err
	}
	// A nil *app.Catalog must reach the API as no catalog at all.
	var catalogAPI web.CatalogReader
	if catalog != nil {
		catalogAPI = catalog
	}
	s.hub = web.NewEventHub(&db.Store{Pool: s.pool, ListenPool: s.directPool}, s.log)
	s.api = &http.Server{
		// With tracing on, every request is a server span continuing the
		// caller's traceparent; off, the handler is the router itself.
		Handler: s.tracing.Handler(web.NewServer(web.Config{Payments: s.runner, Orders: s.runner, Operations: store, Health: store, Logger: s.log,
			Metrics: s.registry, Events: s.hub, Admin: adminHandler, MaxStreams: ac.SSEMaxStreams,
			MetricsToken: ac.MetricsToken, Catalog: catalogAPI, Shop: customer}), "http"),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	// Shutdown closes the listener first, then ends every live stream, so
	// no reconnect lands here and no stream holds the shutdown.
	s.api.RegisterOnShutdown(s.hub.Close)
	return nil
}

// Start runs everything: the breakers, the simulator, the workers, the
// queue gate and the HTTP server. It returns once they run; Done reports a
// server that fails.
func (s *Service) Start(ctx context.Context) error {
	s.bctx, s.stopBg = context.WithCancel(context.WithoutCancel(ctx))
	go func() { s.breakersDone <- s.breakers.Run(s.bctx) }()
	go s.backlog.Run(s.bctx)
	go s.features.Run(s.bctx) //nolint:errcheck // returns nil when bctx ends
	if s.sim != nil {
		go func() { s.errc <- serveHTTP(s.sim, s.simLn) }()
	}
	// River runs on a context no signal cancels: a cancelled start context
	// would cancel running jobs mid-call and spend their attempts. It is
	// stopped by Shutdown, on its own schedule.
	// A client with no workers (WORKERS=0) only inserts.
	if s.cfg.App.Workers > 0 {
		if err := s.river.Start(context.WithoutCancel(ctx)); err != nil {
			return fmt.Errorf("start workers: %w", err)
		}
		s.working = true
		g := jobs.NewQueueGate(jobs.QueueGateConfig{Client: s.river, Pool: s.pool, Queue: app.QueuePayments,
			Breakers: s.breakers, Dependency: DependencyPayment, Poll: s.cfg.Tuning.GatePollEvery, Logger: s.log})
		s.gate.Store(g)
		go g.Run(s.bctx)
	}
	if s.api != nil {
		go s.hub.Run(s.bctx)
		go func() { s.errc <- serveHTTP(s.api, s.apiLn) }()
	}
	return nil
}

// Done receives the error of an HTTP server that stopped on its own.
func (s *Service) Done() <-chan error { return s.errc }

// Shutdown stops in the order that loses nothing and spends nothing:
//  1. at once, and side by side: the API stops accepting (live streams end
//     at once, so their clients reconnect elsewhere instead of holding the
//     shutdown; requests in flight finish within their budget), and the
//     workers fetch nothing more while running jobs finish within
//     SHUTDOWN_GRACE, so no attempt is spent on the shutdown;
//  2. the simulator, which requests and jobs may still be calling, goes
//     last.
//
// The workers must not wait for the API: River keeps fetching until Stop,
// so a job fetched while requests drained would start a provider call
// after the signal, which the grace (counted from the signal) was never
// meant to cover; at its end that call would be cut off and its attempt
// spent.
//
// hard closing (a second signal) stops at once: requests still in flight
// are cut off (none was answered, so none was acknowledged), running jobs
// are cancelled, record what they know (an outcome they do not know stays
// unknown, never failed) and are worked again later, which the
// provider's idempotency makes safe.
//
// It returns nil when everything in flight finished, and otherwise an
// error saying what was cut short, so that the process exits non-zero.
func (s *Service) Shutdown(hard <-chan struct{}) error {
	grace := s.cfg.App.ShutdownGrace
	close(s.stopping)
	hardCtx := func(d time.Duration) (context.Context, context.CancelFunc) {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		go func() {
			select {
			case <-hard:
				cancel()
			case <-ctx.Done():
			}
		}()
		return ctx, cancel
	}
	wctx, wcancel := hardCtx(grace)
	defer wcancel()
	workersStopped := make(chan error, 1)
	go func() {
		if !s.working {
			workersStopped <- nil
			return
		}
		workersStopped <- s.river.Stop(wctx)
	}()

	var cut []string
	if s.api != nil {
		// In-flight requests' budget: deadline + capture, and a little.
		ctx, cancel := hardCtx(s.cfg.App.Dep(DependencyPayment).Deadline + s.cfg.App.CaptureTimeout + time.Second)
		if err := s.api.Shutdown(ctx); err != nil {
			s.log.Warn("http shutdown", "error", err)
			_ = s.api.Close()
			cut = append(cut, "requests in flight were cut off")
		}
		cancel()
	}
	if err := <-workersStopped; err != nil {
		s.log.Warn("workers did not stop in time; cancelling", "error", err)
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.river.StopAndCancel(cctx); err != nil {
			s.log.Warn("workers did not stop after cancelling", "error", err)
		}
		ccancel()
		cut = append(cut, "running jobs were cancelled and will be worked again")
	}
	if s.sim != nil {
		ctx, cancel := hardCtx(5 * time.Second)
		_ = s.sim.Shutdown(ctx)
		cancel()
	}
	if len(cut) == 0 {
		return nil
	}
	why := fmt.Sprintf("the grace (%s) ran out", grace)
	select {
	case <-hard:
		why = "a second signal"
	default:
	}
	return fmt.Errorf("shutdown cut short by %s: %s", why, strings.Join(cut, "; "))
}

// Close stops the background loops, closes the listeners and the pools.
// Call it after Shutdown (or instead of it, when Start was never called).
func (s *Service) Close() {
	for _, ln := range []net.Listener{s.apiLn, s.simLn} {
		if ln != nil {
			_ = ln.Close()
		}
	}
	if s.stopBg != nil {
		s.stopBg()
		<-s.breakersDone
		s.stopBg = nil
	}
	if s.catalogReads != nil {
		// A background stock refresh is bounded by the inventory's
		// deadline; it finishes before the pool it writes to closes.
		s.catalogReads.Stock.Wait()
	}
	if s.breakerPool != nil {
		s.breakerPool.Close()
	}
	if s.adminPool != nil {
		s.adminPool.Close()
	}
	if s.pool != nil {
		s.pool.Close()
	}
	if s.directPool != nil {
		s.directPool.Close()
	}
	if s.tracing != nil {
		// The last spans (the shutdown's own jobs) are sent, within a bound:
		// a collector that is gone must not hold the exit.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.tracing.Shutdown(ctx); err != nil {
			s.log.Warn("export the last spans", "error", err)
		}
		cancel()
		s.tracing = nil
	}
}

// Shop reports whether the customer's shop is served (an inventory is
// configured, so there is a catalog to sell from).
func (s *Service) Shop() bool { return s.catalogReads != nil && s.apiLn != nil }

// APIAddr is where the API listens; nil without one.
func (s *Service) APIAddr() net.Addr { return addr(s.apiLn) }

// SimAddr is where the embedded simulator listens; nil without one.
func (s *Service) SimAddr() net.Addr { return addr(s.simLn) }

func addr(ln net.Listener) net.Addr {
	if ln == nil {
		return nil
	}
	return ln.Addr()
}

// Pool is the request and worker pool; Breakers, River and Backlog are
// what the service built. Tests reach through them.
func (s *Service) Pool() *pgxpool.Pool          { return s.pool }
func (s *Service) Breakers() *app.Breakers      { return s.breakers }
func (s *Service) River() *river.Client[pgx.Tx] { return s.river }
func (s *Service) Backlog() *app.BacklogBounds  { return s.backlog }
func (s *Service) Runner() *app.Runner          { return s.runner }
func (s *Service) Features() *app.FeatureSwitch { return s.features }
func (s *Service) Tracing() *tracing.Tracing    { return s.tracing }
func (s *Service) Drills() *app.Drills          { return s.drills }

// checkConnLimit refuses to start when this instance's connections could
// exceed what the server allows: better a clear message now than
// "remaining connection slots are reserved" under load.
func checkConnLimit(ctx context.Context, pool *pgxpool.Pool, cfg app.Config) error {
	l, err := db.ServerConnLimit(ctx, pool)
	if err != nil {
		return err
	}
	if cfg.DBMaxConns > l.Allowed {
		return fmt.Errorf("DB_MAX_CONNS=%d is more than the %d connections the database allows this role (%s); "+
			"lower DB_MAX_CONNS (each instance opens up to that many) or raise the server's limit", cfg.DBMaxConns, l.Allowed, l)
	}
	return nil
}

func serveHTTP(s *http.Server, ln net.Listener) error {
	if err := s.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func newProvider(cfg app.Config, t *tracing.Tracing) (app.PaymentProvider, error) {
	wrap := t.WrapTransport(app.DepPayment)
	switch cfg.PaymentProvider {
	case app.ProviderStripe:
		return provider.NewStripe(provider.StripeConfig{
			APIBase: cfg.StripeAPIBase, SecretKey: cfg.StripeSecretKey, PaymentMethod: cfg.StripePaymentMethod,
			WrapTransport: wrap,
		})
	default:
		return provider.NewHTTP(provider.HTTPConfig{BaseURL: cfg.PaymentProviderURL, WrapTransport: wrap})
	}
}

// newSenders builds the notification senders whose variables are set, and
// the callback URL check the API applies at request time.
func newSenders(cfg app.Config, t *tracing.Tracing) (*jobs.Senders, func(context.Context, string) error, error) {
	s := &jobs.Senders{}
	if cfg.SMTPURL != "" {
		e, err := notify.NewEmail(notify.EmailConfig{URL: cfg.SMTPURL, From: cfg.SMTPFrom, TLSPolicy: cfg.SMTPTLS})
		if err != nil {
			return nil, nil, err
		}
		s.Email = e
	}
	if cfg.SMSProviderURL != "" {
		m, err := notify.NewSMS(notify.SMSConfig{URL: cfg.SMSProviderURL, From: cfg.SMSFrom, WrapTransport: t.WrapTransport("sms")})
		if err != nil {
			return nil, nil, err
		}
		s.SMS = m
	}
	check := func(ctx context.Context, url string) error {
		err := notify.CheckURLContext(ctx, url, cfg.WebhookAllowPrivate)
		if errors.Is(err, notify.ErrLookupUnavailable) {
			// A resolver that cannot answer now says nothing about the
			// address: 503, nothing recorded, retry.
			return &app.Error{Code: app.EUNAVAILABLE, Message: "callback_url could not be checked right now; nothing was done, retry later", Err: err}
		}
		return err
	}
	if cfg.WebhookSecret != "" {
		w, err := notify.NewWebhook(notify.WebhookConfig{Secret: cfg.WebhookSecret, AllowPrivate: cfg.WebhookAllowPrivate,
			WrapTransport: t.WrapTransport("webhook")})
		if err != nil {
			return nil, nil, err
		}
		s.Webhook = w
	}
	return s, check, nil
}
