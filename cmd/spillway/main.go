// Command spillway serves the Spillway API and workers, runs migrations,
// manages the project-local Postgres and runs the payment simulator.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signalContext()
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "spillway:", err)
		os.Exit(1)
	}
}

// hardStopKey carries the channel a second signal closes.
type hardStopKey struct{}

// signalContext is cancelled by the first SIGINT or SIGTERM, which asks
// for a graceful shutdown; a second one closes the channel hardStop
// returns, which asks to stop at once.
func signalContext() (context.Context, func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	hard := make(chan struct{})
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), hardStopKey{}, (<-chan struct{})(hard)))
	done := make(chan struct{})
	go func() {
		select {
		case <-sigs:
		case <-done:
			return
		}
		cancel()
		select {
		case <-sigs:
			close(hard)
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel()
	}
}

// hardStop is the channel a second signal closes; nil (never) when ctx
// did not come from signalContext.
func hardStop(ctx context.Context) <-chan struct{} {
	ch, _ := ctx.Value(hardStopKey{}).(<-chan struct{})
	return ch
}
