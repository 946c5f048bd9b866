// Command spillway-bench measures Spillway against this machine's ceilings
// and prints its figures as ratios to them; `make bench` runs it, and
// `go run ./cmd/spillway-bench -h` lists what it reads from the environment.
//
// It is a tool, not the product, so it is a command of its own: it builds
// cmd/spillway into bin/spillway and runs `spillway serve` as a child
// process, as a user would, and never links the product's wiring. The
// ceilings (pgbench, a minimal Go+pgx server, the sync floor, River's no-op
// rate) are measured before and after Spillway, each scenario on a fresh
// database of the project-local cluster (bench_*, dropped afterwards). It
// reports; it never fails on a number.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// The first signal cancels the run, which stops the child servers in
	// order and drops the bench databases; later ones are ignored until
	// that is done.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "spillway-bench:", err)
		os.Exit(1)
	}
}
