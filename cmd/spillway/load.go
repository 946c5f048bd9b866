package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/spillway/spillway/cmd/internal/loadgen"
)

// runLoad is `spillway load`: it sends payment POSTs to a local Spillway and
// prints latency and status counts. Only loopback targets are accepted, so a
// mistyped URL cannot turn it against someone else's server.
func runLoad(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	target := fs.String("url", "http://"+loadAddr(getenv)+"/api/v1/payments", "payments endpoint (loopback only)")
	conns := fs.Int("c", 64, "concurrent connections (closed-loop workers)")
	duration := fs.Duration("d", 10*time.Second, "how long to run (at most 10m)")
	maxReq := fs.Int("n", 0, "stop after this many requests (0 = no cap)")
	rate := fs.Float64("rate", 0, "target requests/s across all connections (0 = as fast as answers come)")
	amount := fs.Int64("amount", 1999, "payment amount in minor units")
	currency := fs.String("currency", "usd", "payment currency")
	every := fs.Duration("ticks", 0, "print one line per interval of this length (0 = only the final table)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil // -h: usage was printed, nothing failed
		}
		return fmt.Errorf("load: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("load: unexpected arguments %q", fs.Args())
	}
	if err := loadgen.CheckLoopback(*target); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	if *every < 0 {
		return fmt.Errorf("load: -ticks %s: want 0 or more", *every)
	}
	runID, err := newRunID()
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	// Every request carries the same body; only the key differs, so each one
	// is a new payment rather than a replay.
	body, err := json.Marshal(struct {
		Amount   int64  `json:"amount"`
		Currency string `json:"currency"`
	}{*amount, *currency})
	if err != nil {
		return fmt.Errorf("load: encode body: %w", err)
	}
	cfg := loadgen.Config{
		URL:         *target,
		Method:      http.MethodPost,
		Connections: *conns,
		Duration:    *duration,
		Requests:    *maxReq,
		Rate:        *rate,
		Body: func(i int64) ([]byte, http.Header) {
			h := make(http.Header, 2)
			h.Set("Content-Type", "application/json")
			h.Set("Idempotency-Key", fmt.Sprintf("load-%s-%d", runID, i))
			return body, h
		},
	}
	fmt.Fprintf(stdout, "load %s: POST %s, %d connections for %s\n", runID, *target, *conns, *duration)

	var res loadgen.Result
	if *every > 0 {
		res, err = loadgen.RunWithTicks(ctx, cfg, *every, func(t loadgen.Tick) { fmt.Fprintln(stdout, formatTick(t)) })
	} else {
		res, err = loadgen.Run(ctx, cfg)
	}
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("load: %w", err)
	}
	// Interrupted (Ctrl-C) is a normal way to end a load run: show what was
	// measured and succeed.
	res.Format(stdout)
	return nil
}

// loadAddr is where `spillway serve` listens by default, made dialable: a
// wildcard listen address (":8080", "0.0.0.0:8080") is reached on loopback.
func loadAddr(getenv func(string) string) string {
	addr := getenv("SPILLWAY_ADDR")
	if addr == "" {
		return "127.0.0.1:8080"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr // CheckLoopback will explain what is wrong with it
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// newRunID makes idempotency keys unique across runs, so a second run
// creates payments instead of replaying the first run's answers.
func newRunID() (string, error) {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("run id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// formatTick is one line per interval: time, rate, statuses, p50, p99.
func formatTick(t loadgen.Tick) string {
	var b strings.Builder
	rate := 0.0
	if t.Interval > 0 {
		rate = float64(t.Requests) / t.Interval.Seconds()
	}
	fmt.Fprintf(&b, "t=%7.2fs %8.1f req/s ", t.At.Seconds(), rate)
	for _, code := range slices.Sorted(maps.Keys(t.ByStatus)) {
		fmt.Fprintf(&b, " %d:%d", code, t.ByStatus[code])
	}
	if t.Errors > 0 {
		fmt.Fprintf(&b, " err:%d", t.Errors)
	}
	fmt.Fprintf(&b, "  p50 %s  p99 %s", loadgen.FormatDuration(t.P50), loadgen.FormatDuration(t.P99))
	return b.String()
}
