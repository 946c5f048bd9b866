package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"time"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/cmd/internal/loadgen"
	"github.com/spillway/spillway/db"
)

// ordersResult is the order engine's figures beside the payment's from the
// same run (issue 13, goal 5).
type ordersResult struct {
	// Sync is two-line orders (reserve, reserve, charge) with both
	// dependencies instant.
	Sync loadFigures `json:"sync"`
	// Capture is the same orders with the inventory down and its breaker
	// forced open: captured before the first step.
	Capture loadFigures `json:"capture"`
}

// orders: the demo catalog seeded (spillway seed), the simulator restocked
// so no order runs out, then a closed loop of two-line orders with every
// dependency instant (201), and again with the inventory down and its
// breaker forced open (202).
func (b *bench) orders(ctx context.Context, out *spillwayResults) error {
	d, err := b.freshDB(ctx, "orders")
	if err != nil {
		return err
	}
	defer b.dropDB(d)
	seed := exec.CommandContext(ctx, b.bin, "seed")
	seed.Dir, seed.Env = b.root, []string{"DATABASE_URL=" + d.url, "LOG_LEVEL=warn"}
	if msg, err := seed.CombinedOutput(); err != nil {
		return fmt.Errorf("seed the catalog: %w: %s", err, msg)
	}
	s, err := b.startServer(ctx, "orders", d, nil)
	if err != nil {
		return err
	}
	defer s.Stop(20 * time.Second)
	if err := s.put(ctx, "/control/inventory/stock", `{"sku-tea": 100000000, "sku-mug": 100000000}`); err != nil {
		return err
	}
	url := s.api + "/api/v1/orders"
	b.logf("  sync: %d connections, %s", benchConns, benchSyncTime)
	res, err := loadgen.Run(ctx, orderLoad(url, benchConns, benchSyncTime, "orders-sync"))
	if err != nil {
		return err
	}
	out.Orders.Sync = figuresOf(res, http.StatusCreated)
	b.logf("  %.0f 201/s, p50 %.2f ms, p99 %.2f ms", out.Orders.Sync.Rate, out.Orders.Sync.P50ms, out.Orders.Sync.P99ms)

	if err := s.put(ctx, "/control/inventory", `{"down": true}`); err != nil {
		return err
	}
	if err := db.SetBreakerState(ctx, d.pool, app.DepInventory, app.BreakerForcedOpen); err != nil {
		return err
	}
	// The instance hears of the forced state by NOTIFY; a request or two
	// that still finds it closed is captured by the outage anyway.
	b.logf("  inventory down: %d connections, %s", benchConns, benchSyncTime)
	res, err = loadgen.Run(ctx, orderLoad(url, benchConns, benchSyncTime, "orders-capture"))
	if err != nil {
		return err
	}
	if err := s.Alive(); err != nil {
		return err
	}
	out.Orders.Capture = figuresOf(res, http.StatusAccepted)
	b.logf("  %.0f 202/s, p50 %.2f ms, p99 %.2f ms", out.Orders.Capture.Rate, out.Orders.Capture.P50ms, out.Orders.Capture.P99ms)
	if out.Orders.Sync.Rate == 0 || out.Orders.Capture.Rate == 0 {
		return fmt.Errorf("orders answered %v then %v\n%s", out.Orders.Sync.ByStatus, res.ByStatus, s.LogTail())
	}
	return nil
}

// orderLoad is a closed loop of two-line orders, each under its own key.
func orderLoad(url string, conns int, d time.Duration, prefix string) loadgen.Config {
	cfg := paymentLoad(url, conns, d, prefix)
	body := []byte(`{"lines":[{"sku":"sku-tea","quantity":1},{"sku":"sku-mug","quantity":1}],"currency":"usd"}`)
	keyed := cfg.Body
	cfg.Body = func(i int64) ([]byte, http.Header) {
		_, h := keyed(i)
		return body, h
	}
	return cfg
}

// put sends a control request to the simulator.
func (s *server) put(ctx context.Context, path, body string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, s.sim+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("sim %s: %w", path, err)
	}
	defer res.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("sim %s %s: %d %s", path, body, res.StatusCode, msg)
	}
	return nil
}
