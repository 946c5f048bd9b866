// Command spillway-chaos is Spillway's chaos suite: `make chaos` runs it,
// and `go run ./cmd/spillway-chaos -h` lists its scenarios and what it
// reads from the environment.
//
// It is a tool, not the product, so it is a command of its own, like
// spillway-bench: it builds cmd/spillway into bin/spillway and runs two
// `spillway serve` instances as a user would, on a Postgres cluster of its
// own (.data/chaos/postgres, on a port of its own, so a restart never
// touches the shared cluster), with Toxiproxy (toxiproxy-server, installed
// by scripts/setup.sh) between the instances and Postgres, the payment
// provider and the inventory. Each scenario sends payments and orders at a
// fixed rate, injects one fault, removes it, waits for the backlog to
// drain, and then checks every acknowledged request against the database
// and the simulator's books. It prints one row per scenario and fails when
// any row lost or duplicated something.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// The first signal cancels the run, which stops the child processes
	// and the cluster in order.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "spillway-chaos:", err)
		os.Exit(1)
	}
}
