package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

const usage = `usage: spillway-bench   (make bench; go run ./cmd/spillway-bench)

Measures this machine's ceilings (pgbench, a minimal Go+pgx server, the sync
floor, River's no-op rate), then Spillway built and run as a user would
(capture, sync, budget, failover, drain, RSS, orders, and the scale curve:
capture and drain with 0, 100 k and 1 M deferred payments waiting, then the
admin's pages and riverui's API on that database while capture runs), then
DBOS Transact doing the
same job as the peer (sync, capture with the provider down, drain), then the
ceilings again, and prints Spillway's figures as ratios to the ceilings and
to DBOS's. It reports; it never
fails on a number. Runs on the project-local Postgres, one fresh database
per scenario (bench_*, dropped afterwards), from inside the checkout.

environment:
  BENCH_OUT          where the JSON report goes (default .data/bench/latest.json)
  BENCH_PROFILE      1: fetch a 10 s CPU profile from the server during capture
  BENCH_KEEP         1: keep the bench_* databases for inspection
  BENCH_POSTGRES_URL a running Postgres to create the bench_* databases on,
                     instead of the project-local cluster (they are named
                     after the checkout: bench_<scenario>_<dir>)

flags:
  -only failover     run only these scenarios (comma-separated: capture,
                     sync, budget, failover, drain, orders, scale), without the ceilings:
                     the table has their figures with fixed goals only
  SPILLWAY_DATA_DIR  where the local cluster lives, as for spillway db (default .data)
  GO                 the go command that builds bin/spillway (default go)
  PAYMENT_DEADLINE, CAPTURE_TIMEOUT, DB_MAX_CONNS, SYNC_CONCURRENCY, WORKERS,
  GOMAXPROCS, GOGC, GOMEMLIMIT, BREAKER_PAYMENT_WINDOW, _MIN_CALLS,
  _FAILURE_RATE and _CONSECUTIVE_FAILURES are passed on to the server when set.`

// run is the whole program; main only supplies the process's environment.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("spillway-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, usage) }
	onlyFlag := fs.String("only", "", "comma-separated scenarios to run alone, without the ceilings: capture,sync,budget,failover,drain,orders,scale")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	only := map[string]bool{}
	for _, s := range strings.Split(*onlyFlag, ",") {
		switch s = strings.TrimSpace(s); s {
		case "":
		case "capture", "sync", "budget", "failover", "drain", "orders", "scale":
			only[s] = true
		default:
			return fmt.Errorf("-only: no scenario %q (capture, sync, budget, failover, drain, orders, scale)", s)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, benchTimeout)
	defer cancel()

	b, err := newBench(ctx, getenv, stderr)
	if err != nil {
		return err
	}
	rep, err := b.run(ctx, only)
	if err != nil {
		return err
	}
	rep.Format(stdout)
	out := getenv("BENCH_OUT")
	if out == "" {
		out = filepath.Join(b.dir, "latest.json")
	}
	if err := rep.WriteJSON(out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nwritten to %s\n", out)
	return nil
}
