package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/jobs"
	"github.com/spillway/spillway/web"
	"github.com/spillway/spillway/web/admin"
	"github.com/spillway/spillway/web/notify"
	"github.com/spillway/spillway/web/provider"
	"github.com/spillway/spillway/web/sim"
)

// dependencyPayment names the payment provider's breaker.
const dependencyPayment = "payment"

// runServe starts workers and, when withHTTP, the API; it returns when ctx
// ends, after draining in-flight requests and jobs.
func runServe(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer, withHTTP bool) error {
	cfg, err := app.LoadConfig(getenv)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	pool, err := openDatabase(ctx, cfg, getenv, stderr, db.PoolConfig{MaxConns: cfg.DBMaxConns,
		// Open what a burst of sync calls plus captures needs before the
		// first request: opening dozens under load outlasts CAPTURE_TIMEOUT.
		MinConns: min(cfg.DBMaxConns, cfg.SyncConcurrency+8)})
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := db.MigrateUp(ctx, pool, io.Discard); err != nil {
		return err
	}

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
		Store: &db.BreakerStore{Pool: pool}, Instance: instance, Logger: log,
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
	jc := jobs.Config{
		Pool: pool, Provider: prov, Workers: cfg.Workers, CallTimeout: cfg.PaymentAsyncTimeout,
		RetryBase: cfg.PaymentRetryBase, RetryMax: cfg.PaymentRetryMax, Logger: log,
		Breakers: breakers, Dependency: dependencyPayment, Metrics: metrics,
		Drain:   app.NewDrainLimiter(&db.RateLimitStore{Pool: pool}, dependencyPayment, cfg.DrainRate),
		Offpeak: cfg.Offpeak, Channels: senders.Channels(), Senders: senders, PublicURL: cfg.PublicURL,
		IdempotencyTTL: cfg.IdempotencyTTL,
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
	var servers []*http.Server
	if simLn != nil {
		s := &http.Server{Handler: sim.New(sim.Config{}), ReadHeaderTimeout: 5 * time.Second}
		servers = append(servers, s)
		go func() { errc <- serveHTTP(s, simLn) }()
		fmt.Fprintf(stdout, "simulator on http://%s (chaos: PUT /control)\n", simLn.Addr())
	}
	if err := rc.Start(ctx); err != nil {
		return fmt.Errorf("start workers: %w", err)
	}
	if cfg.Workers > 0 {
		g := jobs.NewQueueGate(rc, app.QueuePayments, log)
		gate.Store(g)
		if b, ok := breakers.Get(dependencyPayment); ok {
			g.BreakerChanged(b)
		}
		go g.Run(bctx)
	}
	if apiLn != nil {
		if cfg.AdminEmail != "" {
			if err := admin.EnsureFirstAdmin(ctx, pool, cfg.AdminEmail, cfg.AdminPassword); err != nil {
				return err // names ADMIN_EMAIL or ADMIN_PASSWORD
			}
		}
		host, _, _ := net.SplitHostPort(apiLn.Addr().String())
		ip := net.ParseIP(host)
		adminHandler, err := admin.New(admin.Config{
			Pool: pool, River: rc, Breakers: breakers, Logger: log, Instance: instance, Channels: senders.Channels(),
			SecureCookies: !(host == "localhost" || (ip != nil && ip.IsLoopback())),
		})
		if err != nil {
			return err
		}
		hub := web.NewEventHub(pool, log)
		go hub.Run(bctx)
		s := &http.Server{
			Handler: web.NewServer(web.Config{Runner: runner, Pool: pool, Logger: log, Metrics: reg, Events: hub,
				Admin: adminHandler}),
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       30 * time.Second,
			IdleTimeout:       2 * time.Minute,
		}
		servers = append(servers, s)
		go func() { errc <- serveHTTP(s, apiLn) }()
		fmt.Fprintf(stdout, "spillway serving on http://%s (provider %s, deadline %s)\n", apiLn.Addr(), cfg.PaymentProvider, cfg.PaymentDeadline)
		fmt.Fprintf(stdout, "admin UI on http://%s/admin (first operator from ADMIN_EMAIL/ADMIN_PASSWORD or `spillway admin create`)\n", apiLn.Addr())
	} else {
		fmt.Fprintf(stdout, "spillway worker running (provider %s)\n", cfg.PaymentProvider)
	}

	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shutdown(servers, rc, log)
	return err
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

// shutdown stops taking requests, lets in-flight ones commit, then lets
// running jobs finish; jobs still running after the grace period are
// cancelled and River retries them later, which the provider's idempotency
// makes safe.
func shutdown(servers []*http.Server, rc stopper, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for i := len(servers) - 1; i >= 0; i-- {
		if err := servers[i].Shutdown(ctx); err != nil {
			log.Warn("http shutdown", "error", err)
		}
	}
	if err := rc.Stop(ctx); err != nil {
		log.Warn("workers did not stop in time; cancelling", "error", err)
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer ccancel()
		_ = rc.StopAndCancel(cctx)
	}
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
		return notify.CheckURLContext(ctx, url, cfg.WebhookAllowPrivate)
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
