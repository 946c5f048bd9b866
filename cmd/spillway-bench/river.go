package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
)

// noopArgs is a job that does nothing, on the queue Spillway drains.
type noopArgs struct {
	N int `json:"n"`
}

func (noopArgs) Kind() string { return "bench_noop" }

type noopWorker struct {
	river.WorkerDefaults[noopArgs]
}

func (noopWorker) Work(context.Context, *river.Job[noopArgs]) error { return nil }

// riverNoop is River's own ceiling on this machine: a queue of no-op jobs,
// inserted before the client starts, worked by workers with the same fetch
// cooldown as Spillway's payments queue, timed until empty.
func (b *bench) riverNoop(ctx context.Context, nworkers int) (drainFigures, error) {
	d, err := b.freshDB(ctx, "river")
	if err != nil {
		return drainFigures{}, err
	}
	defer b.dropDB(d)
	pool, err := db.Open(ctx, db.PoolConfig{URL: d.url, MaxConns: min(nworkers, 64) + 8})
	if err != nil {
		return drainFigures{}, err
	}
	defer pool.Close()
	workers := river.NewWorkers()
	river.AddWorker(workers, noopWorker{})
	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Workers:       workers,
		Queues:        map[string]river.QueueConfig{app.QueuePayments: {MaxWorkers: nworkers}},
		FetchCooldown: 10 * time.Millisecond, // as jobs.NewClient sets it
		Logger:        slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return drainFigures{}, err
	}
	const batch = 2000
	for i := 0; i < benchRiverJobs; i += batch {
		params := make([]river.InsertManyParams, 0, batch)
		for j := i; j < min(i+batch, benchRiverJobs); j++ {
			params = append(params, river.InsertManyParams{Args: noopArgs{N: j}, InsertOpts: &river.InsertOpts{Queue: app.QueuePayments}})
		}
		if _, err := rc.InsertManyFast(ctx, params); err != nil {
			return drainFigures{}, fmt.Errorf("insert no-op jobs: %w", err)
		}
	}

	b.logf("  river no-op: %d jobs, %d workers", benchRiverJobs, nworkers)
	start := time.Now()
	if err := rc.Start(ctx); err != nil {
		return drainFigures{}, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = rc.Stop(sctx)
	}()
	left, elapsed, err := waitEmpty(ctx, 2*time.Minute, start, func(ctx context.Context) (int64, error) {
		return d.count(ctx, db.CountUnfinalizedJobs)
	})
	if err != nil {
		return drainFigures{}, err
	}
	f := drainRate(benchRiverJobs-left, elapsed, nworkers, left == 0)
	if !f.Empty {
		return f, fmt.Errorf("river no-op: %d of %d jobs left after %s", left, benchRiverJobs, elapsed.Round(time.Millisecond))
	}
	b.logf("  river no-op: %.0f jobs/s (%.2f s)", f.Rate, f.Seconds)
	return f, nil
}

// riverBestCounts are the worker counts River's no-op rate is also
// measured at, to report River at its best on this machine beside River at
// Spillway's count: the rate grows with the count (measured here: 363
// jobs/s at 4 workers, 693 at 8, 1446 at 16, 2438 at 32, 5483 at 64, 8819
// at 128), so only counts above Spillway's are worth the bench's time.
var riverBestCounts = []int{64, 128}

// riverBest is the fastest of River's no-op runs at riverBestCounts and at
// Spillway's count (at).
func (b *bench) riverBest(ctx context.Context, at drainFigures) (drainFigures, error) {
	best := at
	for _, n := range riverBestCounts {
		if n == b.workers {
			continue
		}
		f, err := b.riverNoop(ctx, n)
		if err != nil {
			return best, err
		}
		if f.Rate > best.Rate {
			best = f
		}
	}
	return best, nil
}

func drainRate(jobs int64, elapsed time.Duration, workers int, empty bool) drainFigures {
	f := drainFigures{Jobs: jobs, Seconds: elapsed.Seconds(), Workers: workers, Empty: empty}
	if f.Seconds > 0 {
		f.Rate = float64(jobs) / f.Seconds
	}
	return f
}

// waitEmpty polls left every 50 ms until it reports zero or limit passes,
// and returns the last count and the time since start it was read.
func waitEmpty(ctx context.Context, limit time.Duration, start time.Time, left func(context.Context) (int64, error)) (int64, time.Duration, error) {
	deadline := start.Add(limit)
	for {
		n, err := left(ctx)
		at := time.Since(start)
		if err != nil {
			return 0, at, err
		}
		if n == 0 || time.Now().After(deadline) {
			return n, at, nil
		}
		select {
		case <-ctx.Done():
			return n, at, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
