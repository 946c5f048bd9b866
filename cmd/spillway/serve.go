package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/sim"
	"github.com/spillway/spillway/cmd/spillway/service"
)

// runServe starts workers and, when withHTTP, the API; it returns when ctx
// ends, after draining in-flight requests and jobs (see
// service.Service.Shutdown). The product is wired in package service, which
// the product-level tests use too.
func runServe(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer, withHTTP bool) error {
	cfg, err := app.LoadConfig(getenv)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	url, err := databaseURL(ctx, cfg, getenv, stderr)
	if err != nil {
		return err
	}
	sc := service.Config{App: cfg, DatabaseURL: url, Logger: log}
	if cfg.LogLevel == "debug" {
		sc.RiverLogger = log
	}
	if withHTTP {
		sc.APIAddr = cfg.Addr
	}
	if cfg.PaymentProvider == app.ProviderSim {
		sc.SimAddr = cfg.SimAddr
	}
	svc, err := service.New(ctx, sc)
	if err != nil {
		return err
	}
	defer svc.Close()
	if err := svc.Start(ctx); err != nil {
		return err
	}
	if a := svc.SimAddr(); a != nil {
		fmt.Fprintf(stdout, "simulator on http://%s (payments; inventory under %s; chaos: PUT /control, /control/inventory)\n", a, sim.InventoryPath)
	}
	if a := svc.APIAddr(); a != nil {
		fmt.Fprintf(stdout, "spillway serving on http://%s (provider %s, deadline %s)\n", a, cfg.PaymentProvider, cfg.Dep(app.DepPayment).Deadline)
		if svc.Shop() {
			fmt.Fprintf(stdout, "shop on http://%s/ (catalog, checkout, order pages)\n", a)
		}
		fmt.Fprintf(stdout, "admin UI on http://%s/admin (first operator from ADMIN_EMAIL/ADMIN_PASSWORD or `spillway admin create`)\n", a)
	} else {
		fmt.Fprintf(stdout, "spillway worker running (provider %s)\n", cfg.PaymentProvider)
	}

	select {
	case <-ctx.Done():
	case err = <-svc.Done():
	}
	log.Info("shutting down", "grace", cfg.ShutdownGrace)
	serr := svc.Shutdown(hardStop(ctx))
	// A server that failed says why it stopped; otherwise a clean shutdown
	// returns nil (exit 0) and one cut short says what it cut.
	return cmp.Or(err, serr)
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
	go func() {
		if err := s.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
		close(errc)
	}()
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
