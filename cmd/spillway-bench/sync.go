package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/cmd/internal/loadgen"
)

// syncAsFloor is the server configuration the sync goal is judged at:
// every one of the load's connections allowed a sync call at once, as the
// floor allows, and the pool that takes (SYNC_CONCURRENCY + the 12
// connections config keeps for captures, workers, River and its other pools). The
// shipped defaults (DB_MAX_CONNS 30, SYNC_CONCURRENCY 16) fit three
// instances on a stock Postgres; with them, sync requests wait for a
// pooled connection, which each holds across its provider call, and
// SyncDefaults reports that.
var syncAsFloor = map[string]string{"SYNC_CONCURRENCY": fmt.Sprint(benchConns), "DB_MAX_CONNS": fmt.Sprint(benchConns + 16)}

// sync: provider instant, breaker closed; closed loop at benchConns, at the
// default pool and at the floor's.
func (b *bench) sync(ctx context.Context, out *spillwayResults) error {
	if err := b.syncAt(ctx, "sync_defaults", nil, &out.SyncDefaults, nil); err != nil {
		return err
	}
	return b.syncAt(ctx, "sync", syncAsFloor, &out.Sync, out)
}

// syncAt measures sync requests on a server started with extra; profile,
// when not nil, receives the CPU profile under BENCH_PROFILE.
func (b *bench) syncAt(ctx context.Context, name string, extra map[string]string, f *loadFigures, profile *spillwayResults) error {
	d, err := b.freshDB(ctx, name)
	if err != nil {
		return err
	}
	defer b.dropDB(d)
	s, err := b.startServer(ctx, name, d, extra)
	if err != nil {
		return err
	}
	defer s.Stop(20 * time.Second)
	b.logf("  %s: %d connections, %s", name, benchConns, benchSyncTime)
	profCtx, stopProfile := context.WithCancel(ctx)
	var profiled sync.WaitGroup
	if b.profile && profile != nil {
		profiled.Go(func() { profile.SyncProfile, profile.SyncProfileNote = b.fetchProfile(profCtx, s, "sync") })
	}
	mark := markCPU(s.Cmd.Process.Pid)
	res, err := loadgen.Run(ctx, paymentLoad(s.api+"/api/v1/payments", benchConns, benchSyncTime, name))
	use := mark.since()
	stopProfile()
	profiled.Wait()
	if err != nil {
		return err
	}
	if err := s.Alive(); err != nil {
		return err
	}
	*f = figuresOf(res, http.StatusCreated)
	f.CPU = &use
	b.logf("  %s: %.0f 201/s, p50 %.2f ms, p99 %.2f ms", name, f.Rate, f.P50ms, f.P99ms)
	if f.Rate == 0 {
		return fmt.Errorf("no 201 answers: %v, %d transport errors\n%s", res.ByStatus, res.Errors, s.LogTail())
	}
	return nil
}

type budgetResult struct {
	Load       loadFigures `json:"load"` // all answers, whatever their status
	DeadlineMS float64     `json:"deadline_ms"`
	// FirstWaveP99ms is the p99 of the answers in the first interval that
	// had any: the first 64 calls, which met a pool and a bulkhead that
	// had not yet served.
	FirstWaveP99ms float64 `json:"first_wave_p99_ms"`
	Note           string  `json:"note,omitempty"`
}

// budgetTick is how finely the budget run is cut to find its first wave.
const budgetTick = 250 * time.Millisecond

// budget: the provider answers after 10 s and the breaker is forced closed,
// so every request waits out PAYMENT_DEADLINE and is captured; the client's
// p99 shows what the budget costs on top. SYNC_CONCURRENCY is raised to the
// load's 64 connections (and the pool with it), with no slots kept for
// high-value payments, so every request is one of 64 concurrent calls to
// the hung provider rather than most being shed at once by the bulkhead.
// DB_MIN_CONNS opens the pool those calls need at start, as the README
// advises for bursts, so the first wave does not also open 64 Postgres
// connections before its calls begin. Measured (issue 13): first wave p99
// 3 246 ms with the pool cold, 3 222 ms warmed; later waves 3 012-3 028 ms.
// What remains of the first wave's cost is the rest of each connection's
// and each provider socket's first use.
func (b *bench) budget(ctx context.Context, out *spillwayResults) error {
	d, err := b.freshDB(ctx, "budget")
	if err != nil {
		return err
	}
	defer b.dropDB(d)
	s, err := b.startServer(ctx, "budget", d, map[string]string{
		"SYNC_CONCURRENCY": fmt.Sprint(benchConns), "DB_MAX_CONNS": fmt.Sprint(benchConns + 16), "SYNC_HIGH_VALUE_RESERVE": "0",
		"DB_MIN_CONNS": fmt.Sprint(benchConns + 4)})
	if err != nil {
		return err
	}
	// Workers are still calling the 10 s provider at the end; nothing of
	// theirs is measured, so do not wait for them.
	defer s.Stop(3 * time.Second)
	if err := d.setBreaker(ctx, app.BreakerForcedClosed); err != nil {
		return err
	}
	if err := s.waitBreaker(ctx, app.BreakerForcedClosed); err != nil {
		return err
	}
	if err := s.chaos(ctx, `{"latency_ms": 10000}`); err != nil {
		return err
	}
	b.logf("  provider 10 s late, %d connections, %s", benchConns, benchBudgetTime)
	r := &out.Budget
	res, err := loadgen.RunWithTicks(ctx, paymentLoad(s.api+"/api/v1/payments", benchConns, benchBudgetTime, "budget"),
		budgetTick, func(t loadgen.Tick) {
			if r.FirstWaveP99ms == 0 && t.Requests > t.Errors {
				r.FirstWaveP99ms = ms(t.P99)
			}
		})
	if err != nil {
		return err
	}
	if err := s.Alive(); err != nil {
		return err
	}
	r.DeadlineMS = ms(b.deadline)
	r.Load = figuresOf(res, http.StatusAccepted)
	// The budget holds for every answer, not just the 202s.
	r.Load.P50ms, r.Load.P99ms, r.Load.Maxms = ms(res.Latency.P50), ms(res.Latency.P99), ms(res.Latency.Max)
	if x := others(r.Load); x != "" {
		r.Note = "budget answers other than 202: " + x
	}
	b.logf("  %d answers, p50 %.0f ms, p99 %.0f ms, first wave p99 %.0f ms, max %.0f ms (deadline %s)", res.Requests,
		r.Load.P50ms, r.Load.P99ms, r.FirstWaveP99ms, r.Load.Maxms, b.deadline)
	if res.Latency.Count == 0 {
		return fmt.Errorf("no answers: %d transport errors\n%s", res.Errors, s.LogTail())
	}
	return nil
}
