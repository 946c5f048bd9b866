package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/cmd/internal/loadgen"
	"github.com/spillway/spillway/db"
)

type drainResult struct {
	Captured    int64        `json:"captured"`
	Rejected    int64        `json:"rejected"` // backlog requests not answered 202
	Unlimited   drainFigures `json:"unlimited"`
	Limited     drainFigures `json:"limited"`
	LimitedNote string       `json:"limited_note,omitempty"`
	// River and RiverBest are River's no-op at Spillway's count and
	// settings and at its best, measured in this scenario when
	// BENCH_DRAIN_RIVER=1 (a partial run has no ceilings otherwise).
	River     *drainFigures `json:"river_noop,omitempty"`
	RiverBest *drainFigures `json:"river_noop_best,omitempty"`
	// Profile is a CPU profile of the server during the unlimited drain
	// (BENCH_PROFILE=1).
	Profile     string `json:"cpu_profile,omitempty"`
	ProfileNote string `json:"profile_note,omitempty"`
}

// riverRows are a partial run's drain ratios, to the River figures
// measured in the same scenario (one measurement each, not two).
func (d drainResult) riverRows() []row {
	if d.River == nil || d.RiverBest == nil {
		return nil
	}
	return []row{
		ceilingRow("drain, no limit", "jobs/s", d.Unlimited.Rate, "River no-op, "+d.River.Settings,
			d.River.Rate, d.River.Rate, "≥ 0.50"),
		ceilingRow("drain vs River at its best", "jobs/s", d.Unlimited.Rate, "River no-op at its best, "+d.RiverBest.Settings,
			d.RiverBest.Rate, d.RiverBest.Rate, "≥ 0.50"),
	}
}

// drain: a backlog captured through the API with the breaker forced open,
// then a restarted server with the provider instant and the breaker
// returned to closed; jobs/s until no operation is open. Then a smaller
// backlog the same way, drained by a server started with DRAIN_RATE.
func (b *bench) drain(ctx context.Context, out *spillwayResults) error {
	d, err := b.freshDB(ctx, "drain")
	if err != nil {
		return err
	}
	defer b.dropDB(d)
	r := &out.Drain
	noLimit := map[string]string{"DRAIN_RATE": ""}
	if b.getenv("BENCH_DRAIN_RIVER") == "1" {
		at, err := b.riverNoop(ctx, b.workers)
		if err != nil {
			return fmt.Errorf("river no-op: %w", err)
		}
		best, err := b.riverBest(ctx, at)
		if err != nil {
			return fmt.Errorf("river no-op at its best: %w", err)
		}
		r.River, r.RiverBest = &at, &best
		b.logf("  river no-op %.0f jobs/s at %s; at its best %.0f jobs/s at %s", at.Rate, at.Settings, best.Rate, best.Settings)
	}

	s, err := b.startServer(ctx, "drain-capture", d, noLimit)
	if err != nil {
		return err
	}
	defer func() {
		if s != nil {
			s.Stop(20 * time.Second)
		}
	}()
	b.logf("  capturing %d operations", benchDrainJobs)
	if r.Rejected, err = b.backlog(ctx, s, d, benchDrainJobs); err != nil {
		return err
	}
	if r.Captured, err = d.count(ctx, db.CountOpenOperations); err != nil {
		return err
	}
	s.Stop(20 * time.Second)

	if s, err = b.startServer(ctx, "drain", d, noLimit); err != nil {
		return err
	}
	// Bounded so a slow drain cannot stretch the run: past a minute the
	// rate over that minute is reported.
	b.logf("  draining %d, DRAIN_RATE unset (at most 1m)", r.Captured)
	pctx, stopProfile := context.WithCancel(ctx)
	profiled := make(chan struct{})
	go func() {
		defer close(profiled)
		if b.profile {
			r.Profile, r.ProfileNote = b.drainProfile(pctx, s)
		}
	}()
	r.Unlimited, err = b.drainAll(ctx, s, d, r.Captured, time.Minute)
	stopProfile()
	<-profiled
	if err != nil {
		return err
	}
	if r.Profile != "" {
		b.logf("  CPU profile of the drain: %s", r.Profile)
	}
	b.logf("  %.0f jobs/s (%d in %.2f s)", r.Unlimited.Rate, r.Unlimited.Jobs, r.Unlimited.Seconds)

	b.logf("  capturing %d operations", benchLimitedJobs)
	rejected, err := b.backlog(ctx, s, d, benchLimitedJobs)
	if err != nil {
		return err
	}
	r.Rejected += rejected
	queued, err := d.count(ctx, db.CountOpenOperations)
	if err != nil {
		return err
	}
	s.Stop(20 * time.Second)
	rate := strconv.Itoa(benchDrainRate)
	if s, err = b.startServer(ctx, "drain-limited", d, map[string]string{"DRAIN_RATE": rate}); err != nil {
		return err
	}
	limit := time.Duration(float64(queued)/benchDrainRate*1.5*float64(time.Second)) + 10*time.Second
	b.logf("  draining %d, DRAIN_RATE=%s (at most %s)", queued, rate, limit.Round(time.Second))
	if r.Limited, err = b.drainAll(ctx, s, d, queued, limit); err != nil {
		return err
	}
	switch {
	case r.Limited.Rate > benchDrainRate*1.2:
		r.LimitedNote = "DRAIN_RATE not honoured by this build (not implemented yet?)"
	case r.Unlimited.Rate < benchDrainRate*1.2:
		r.LimitedNote = fmt.Sprintf("the unlimited drain (%.0f/s) is not clearly above %d/s, so this does not show the limit at work", r.Unlimited.Rate, benchDrainRate)
	case !r.Limited.Empty:
		r.LimitedNote = fmt.Sprintf("not empty after %.0f s: rate over the window", r.Limited.Seconds)
	}
	b.logf("  %.0f jobs/s (%d in %.2f s) %s", r.Limited.Rate, r.Limited.Jobs, r.Limited.Seconds, r.LimitedNote)
	return nil
}

// backlog captures n operations through s's API with the breaker forced
// open, so they wait as jobs on a paused queue. A few 503s (nothing
// captured) are Spillway's to explain, not a broken set-up: they are
// reported, and the drain works on what was captured.
func (b *bench) backlog(ctx context.Context, s *server, d *benchDB, n int) (rejected int64, err error) {
	if err := d.setBreaker(ctx, app.BreakerForcedOpen); err != nil {
		return 0, err
	}
	if err := s.waitBreaker(ctx, app.BreakerForcedOpen); err != nil {
		return 0, err
	}
	cfg := paymentLoad(s.api+"/api/v1/payments", benchConns, 3*time.Minute, "drain")
	cfg.Requests = n
	res, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return 0, err
	}
	got := res.ByStatus[http.StatusAccepted]
	if got < int64(n)*9/10 {
		return 0, fmt.Errorf("backlog: only %d of %d requests answered 202 (%v, %d transport errors)\n%s", got, n, res.ByStatus, res.Errors, s.LogTail())
	}
	return int64(n) - got, nil
}

// drainAll starts a server's workers on the backlog by returning the
// breaker to closed, and times until no operation is open or limit passes.
func (b *bench) drainAll(ctx context.Context, s *server, d *benchDB, queued int64, limit time.Duration) (drainFigures, error) {
	if err := s.waitBreaker(ctx, app.BreakerForcedOpen); err != nil {
		return drainFigures{}, err
	}
	start := time.Now()
	mark := markCPU(s.Cmd.Process.Pid)
	if err := d.setBreaker(ctx, app.BreakerClosed); err != nil {
		return drainFigures{}, err
	}
	left, elapsed, err := waitEmpty(ctx, limit, start, func(ctx context.Context) (int64, error) {
		if err := s.Alive(); err != nil {
			return 0, err
		}
		return d.count(ctx, db.CountOpenOperations)
	})
	if err != nil {
		return drainFigures{}, err
	}
	f := drainRate(queued-left, elapsed, b.workers, left == 0)
	use := mark.since()
	f.CPU = &use
	return f, nil
}

// drainProfile fetches a 2 s CPU profile of s half a second into the drain
// (a fast drain is over before capture's 10 s profile would end), into
// drain.cpu.pprof.
func (b *bench) drainProfile(ctx context.Context, s *server) (path, note string) {
	return b.profileAfter(ctx, s, "drain", 500*time.Millisecond, 2)
}
