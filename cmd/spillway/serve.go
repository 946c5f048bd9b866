package main

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

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/provider"
	"github.com/spillway/spillway/app/sim"
	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/jobs"
	"github.com/spillway/spillway/jobs/notify"
	"github.com/spillway/spillway/web"
	"github.com/spillway/spillway/web/admin"
)

// dependencyPayment names the payment provider's breaker.
const dependencyPayment = "payment"

// runServe starts workers and, when withHTTP, the API; it returns when ctx
// ends, after draining in-flight requests and jobs (see shutdown).
func runServe(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer, withHTTP bool) error {
	cfg, err := app.LoadConfig(getenv)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	pool, err := openDatabase(ctx, cfg, getenv, stderr, db.PoolConfig{MaxConns: cfg.PoolConns(), MinConns: cfg.DBMinConns})
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := checkConnLimit(ctx, pool, cfg); err != nil {
		return err
	}
	if err := db.MigrateUp(ctx, pool, io.Discard); err != nil {
		return err
	}
	// The breakers get connections of their own: a request holding its
	// transaction's connection must never wait on the same pool to claim
	// or finish a probe, or a recovery at full load deadlocks into 503s.
	breakerPool, err := db.Open(ctx, db.PoolConfig{URL: pool.Config().ConnString(), MaxConns: app.BreakerConns})
	if err != nil {
		return err
	}
	defer breakerPool.Close()

	// Listen before anything else runs so a taken port fails fast.
	var apiLn, simLn net.Listener
	if withHTTP {
		if apiLn, err = net.Listen("tcp", cfg.Addr); err != nil {
			return fmt.Errorf("SPILLWAY_ADDR %s: %w", cfg.Addr, err)
		}
		defer apiLn.Close()
	}
	if cfg.PaymentProvider == app.ProviderSim {
		if simLn, err = net.Listen("tcp", cfg.SimAddr); err != nil {
			return fmt.Errorf("SIM_ADDR %s: %w", cfg.SimAddr, err)
		}
		defer simLn.Close()
		cfg.PaymentProviderURL = "http://" + simLn.Addr().String()
	}
	prov, err := newProvider(cfg)
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		web.NewQueueDepthCollector(pool))
	metrics := app.NewMetrics(reg)
	instance := cfg.Instance
	if instance == "" {
		host, _ := os.Hostname()
		instance = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	// The gate needs the River client, which needs the breakers: it is
	// attached once both exist.
	var gate atomic.Pointer[jobs.QueueGate]
	breakers, err := app.NewBreakers(app.BreakersConfig{
		Store: &db.BreakerStore{Pool: breakerPool}, Instance: instance, Logger: log,
		OnChange: func(b app.Breaker, transition bool) {
			metrics.BreakerChanged(b, transition)
			if g := gate.Load(); g != nil && b.Name == dependencyPayment {
				g.BreakerChanged(b)
			}
		},
	})
	if err != nil {
		return err
	}
	if err := breakers.Register(ctx, dependencyPayment, app.DefaultBreakerPolicy(), cfg.PaymentBreaker); err != nil {
		return err
	}
	// The breaker loop outlives request handling so the last outcomes are
	// flushed for the other instances.
	bctx, stopBreakers := context.WithCancel(context.WithoutCancel(ctx))
	breakersDone := make(chan error, 1)
	go func() { breakersDone <- breakers.Run(bctx) }()
	defer func() { stopBreakers(); <-breakersDone }()

	senders, webhooks, err := newSenders(cfg)
	if err != nil {
		return err
	}
	stopping := make(chan struct{})
	jc := jobs.Config{
		Pool: pool, Provider: prov, Workers: cfg.Workers, CallTimeout: cfg.PaymentAsyncTimeout,
		KeyRetention: cfg.PaymentKeyRetention, Stopping: stopping,
		RetryBase: cfg.PaymentRetryBase, RetryMax: cfg.PaymentRetryMax, Logger: log,
		Breakers: breakers, Dependency: dependencyPayment, Metrics: metrics,
		Drain:   app.NewDrainLimiter(&db.RateLimitStore{Pool: pool}, dependencyPayment, cfg.DrainRate),
		Offpeak: cfg.Offpeak, Channels: senders.Channels(), Senders: senders, PublicURL: cfg.PublicURL,
		IdempotencyTTL: cfg.IdempotencyTTL, ReconcileEvery: cfg.ReconcileEvery, ReconcileAfter: cfg.ReconcileAfter,
		// A charge younger than the grace may belong to a request still
		// committing (it can take the deadline and the capture budget).
		Orphans: jobs.OrphanConfig{Every: cfg.OrphanSweepEvery, Refund: cfg.OrphanRefund,
			Grace: max(cfg.OrphanGrace, cfg.PaymentDeadline+cfg.CaptureTimeout+time.Minute)},
	}
	if cfg.LogLevel == "debug" {
		jc.RiverLogger = log
	}
	rc, err := jobs.NewClient(jc)
	if err != nil {
		return err
	}
	runner, err := app.NewRunner(app.RunnerConfig{
		Store: db.NewStore(pool), Jobs: rc, Provider: prov, Deadline: cfg.PaymentDeadline,
		CaptureTimeout: cfg.CaptureTimeout, SyncLimit: cfg.SyncConcurrency,
		Breakers: breakers, Dependency: dependencyPayment, Metrics: metrics,
		Channels: senders.Channels(), Offpeak: cfg.Offpeak, DefaultDefer: cfg.PaymentDefer,
		CheckCallback:   webhooks,
		HighValueAmount: cfg.HighValueAmount, MaxAttempts: cfg.PaymentMaxAttempts, Logger: log,
	})
	if err != nil {
		return err
	}

	errc := make(chan error, 2)
	var simServer, apiServer *http.Server
	if simLn != nil {
		simServer = &http.Server{Handler: sim.New(sim.Config{}), ReadHeaderTimeout: 5 * time.Second}
		go func() { errc <- serveHTTP(simServer, simLn) }()
		fmt.Fprintf(stdout, "simulator on http://%s (chaos: PUT /control)\n", simLn.Addr())
	}
	// River runs on a context no signal cancels: a cancelled start context
	// would cancel running jobs mid-call and spend their attempts. It is
	// stopped by shutdown, on its own schedule.
	if err := rc.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("start workers: %w", err)
	}
	if cfg.Workers > 0 {
		g := jobs.NewQueueGate(jobs.QueueGateConfig{Client: rc, Pool: pool, Queue: app.QueuePayments,
			Breakers: breakers, Dependency: dependencyPayment, Logger: log})
		gate.Store(g)
		go g.Run(bctx)
	}
	if apiLn != nil {
		operator, err := app.NewOperator(app.OperatorConfig{
			Store: db.NewStore(pool), Jobs: rc, Breakers: breakers, Provider: prov, Channels: senders.Channels(),
			GatedQueues: map[string]string{app.QueuePayments: dependencyPayment},
			SessionIdle: cfg.AdminSessionIdle, Logger: log,
		})
		if err != nil {
			return err
		}
		if cfg.AdminEmail != "" {
			if err := operator.EnsureFirstAdmin(ctx, cfg.AdminEmail, cfg.AdminPassword); err != nil {
				return err // names ADMIN_EMAIL or ADMIN_PASSWORD
			}
		}
		host, _, _ := net.SplitHostPort(apiLn.Addr().String())
		ip := net.ParseIP(host)
		adminHandler, err := admin.New(admin.Config{
			Pool: pool, Operator: operator, Logger: log,
			SecureCookies: !(host == "localhost" || (ip != nil && ip.IsLoopback())),
			PublicURL:     cfg.PublicURL, TrustedProxies: cfg.TrustedProxies,
			ReconcileAfter: cfg.ReconcileAfter, OrphanRefund: cfg.OrphanRefund,
		})
		if err != nil {
			return err
		}
		hub := web.NewEventHub(pool, log)
		go hub.Run(bctx)
		apiServer = &http.Server{
			Handler: web.NewServer(web.Config{Runner: runner, Pool: pool, Logger: log, Metrics: reg, Events: hub,
				Admin: adminHandler, MaxStreams: cfg.SSEMaxStreams, MetricsToken: cfg.MetricsToken}),
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       30 * time.Second,
			IdleTimeout:       2 * time.Minute,
		}
		// Shutdown closes the listener first, then ends every live stream,
		// so no reconnect lands here and no stream holds the shutdown.
		apiServer.RegisterOnShutdown(hub.Close)
		go func() { errc <- serveHTTP(apiServer, apiLn) }()
		fmt.Fprintf(stdout, "spillway serving on http://%s (provider %s, deadline %s)\n", apiLn.Addr(), cfg.PaymentProvider, cfg.PaymentDeadline)
		fmt.Fprintf(stdout, "admin UI on http://%s/admin (first operator from ADMIN_EMAIL/ADMIN_PASSWORD or `spillway admin create`)\n", apiLn.Addr())
	} else {
		fmt.Fprintf(stdout, "spillway worker running (provider %s)\n", cfg.PaymentProvider)
	}

	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	log.Info("shutting down", "grace", cfg.ShutdownGrace)
	serr := shutdown(shutdownPlan{
		api: apiServer, sim: simServer, workers: rc, stopping: stopping, hard: hardStop(ctx),
		requests: cfg.PaymentDeadline + cfg.CaptureTimeout + time.Second, grace: cfg.ShutdownGrace,
	}, log)
	// A server that failed says why it stopped; otherwise a clean shutdown
	// returns nil (exit 0) and one cut short says what it cut.
	return cmp.Or(err, serr)
}

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

// stopper is the part of the River client shutdown needs.
type stopper interface {
	Stop(ctx context.Context) error
	StopAndCancel(ctx context.Context) error
}

// shutdownPlan is what shutdown stops, and its time limits.
type shutdownPlan struct {
	api, sim *http.Server
	workers  stopper
	stopping chan struct{} // closed when shutdown begins
	hard     <-chan struct{}
	requests time.Duration // in-flight requests' budget (deadline + capture, and a little)
	grace    time.Duration // SHUTDOWN_GRACE for running jobs
}

// shutdown stops in the order that loses nothing and spends nothing:
//  1. at once, and side by side: the API stops accepting (live streams end
//     at once, so their clients reconnect elsewhere instead of holding the
//     shutdown; requests in flight finish within their budget), and the
//     workers fetch nothing more while running jobs finish within the
//     grace, so no attempt is spent on the shutdown;
//  2. the simulator, which requests and jobs may still be calling, goes
//     last.
//
// The workers must not wait for the API: River keeps fetching until Stop,
// so a job fetched while requests drained would start a provider call
// after the signal, which the grace (counted from the signal) was never
// meant to cover; at its end that call would be cut off and its attempt
// spent.
//
// A second signal (hard) stops at once: requests still in flight are cut
// off (none was answered, so none was acknowledged), running jobs are
// cancelled, record what they know (an outcome they do not know stays
// unknown, never failed) and are worked again later, which the provider's
// idempotency makes safe.
//
// It returns nil when everything in flight finished, and otherwise an
// error saying what was cut short, so that the process exits non-zero.
func shutdown(p shutdownPlan, log *slog.Logger) error {
	close(p.stopping)
	hardCtx := func(d time.Duration) (context.Context, context.CancelFunc) {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		go func() {
			select {
			case <-p.hard:
				cancel()
			case <-ctx.Done():
			}
		}()
		return ctx, cancel
	}
	wctx, wcancel := hardCtx(p.grace)
	defer wcancel()
	workersStopped := make(chan error, 1)
	go func() { workersStopped <- p.workers.Stop(wctx) }()

	var cut []string
	if p.api != nil {
		ctx, cancel := hardCtx(p.requests)
		if err := p.api.Shutdown(ctx); err != nil {
			log.Warn("http shutdown", "error", err)
			_ = p.api.Close()
			cut = append(cut, "requests in flight were cut off")
		}
		cancel()
	}
	if err := <-workersStopped; err != nil {
		log.Warn("workers did not stop in time; cancelling", "error", err)
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := p.workers.StopAndCancel(cctx); err != nil {
			log.Warn("workers did not stop after cancelling", "error", err)
		}
		ccancel()
		cut = append(cut, "running jobs were cancelled and will be worked again")
	}
	if p.sim != nil {
		ctx, cancel := hardCtx(5 * time.Second)
		_ = p.sim.Shutdown(ctx)
		cancel()
	}
	if len(cut) == 0 {
		return nil
	}
	why := fmt.Sprintf("the grace (%s) ran out", p.grace)
	select {
	case <-p.hard:
		why = "a second signal"
	default:
	}
	return fmt.Errorf("shutdown cut short by %s: %s", why, strings.Join(cut, "; "))
}

func newProvider(cfg app.Config) (app.PaymentProvider, error) {
	switch cfg.PaymentProvider {
	case app.ProviderStripe:
		return provider.NewStripe(provider.StripeConfig{
			APIBase: cfg.StripeAPIBase, SecretKey: cfg.StripeSecretKey, PaymentMethod: cfg.StripePaymentMethod,
		})
	default:
		return provider.NewHTTP(provider.HTTPConfig{BaseURL: cfg.PaymentProviderURL})
	}
}

func runSim(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := app.LoadConfig(getenv)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.SimAddr)
	if err != nil {
		return fmt.Errorf("SIM_ADDR %s: %w", cfg.SimAddr, err)
	}
	s := &http.Server{Handler: sim.New(sim.Config{}), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- serveHTTP(s, ln) }()
	fmt.Fprintf(stdout, "simulator on http://%s (POST /charges; chaos: PUT /control)\n", ln.Addr())
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.Shutdown(sctx)
	_ = stderr
	return err
}

// newSenders builds the notification senders whose variables are set, and
// the callback URL check the API applies at request time.
func newSenders(cfg app.Config) (*jobs.Senders, func(context.Context, string) error, error) {
	s := &jobs.Senders{}
	if cfg.SMTPURL != "" {
		e, err := notify.NewEmail(notify.EmailConfig{URL: cfg.SMTPURL, From: cfg.SMTPFrom, TLSPolicy: cfg.SMTPTLS})
		if err != nil {
			return nil, nil, err
		}
		s.Email = e
	}
	if cfg.SMSProviderURL != "" {
		m, err := notify.NewSMS(notify.SMSConfig{URL: cfg.SMSProviderURL, From: cfg.SMSFrom})
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
		w, err := notify.NewWebhook(notify.WebhookConfig{Secret: cfg.WebhookSecret, AllowPrivate: cfg.WebhookAllowPrivate})
		if err != nil {
			return nil, nil, err
		}
		s.Webhook = w
	}
	return s, check, nil
}
