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

// riverSettings are the knobs of one River no-op run: the payments
// queue's worker count and the client's fetch settings.
type riverSettings struct {
	Workers           int
	FetchCooldown     time.Duration
	FetchPollInterval time.Duration // 0: River's default (1 s)
}

// spillwaySettings are the fetch settings jobs.NewClient gives the
// payments queue, at n workers.
func spillwaySettings(n int) riverSettings {
	return riverSettings{Workers: n, FetchCooldown: 10 * time.Millisecond}
}

func (s riverSettings) String() string {
	out := fmt.Sprintf("%d workers, FetchCooldown %s", s.Workers, s.FetchCooldown)
	if s.FetchPollInterval > 0 {
		out += fmt.Sprintf(", FetchPollInterval %s", s.FetchPollInterval)
	}
	return out
}

// riverNoop is River's own ceiling on this machine: a queue of no-op jobs,
// inserted before the client starts, worked by nworkers workers with the
// same fetch cooldown as Spillway's payments queue, timed until empty.
func (b *bench) riverNoop(ctx context.Context, nworkers int) (drainFigures, error) {
	d, err := b.freshDB(ctx, "river")
	if err != nil {
		return drainFigures{}, err
	}
	defer b.dropDB(d)
	return b.riverNoopOn(ctx, d, spillwaySettings(nworkers))
}

// riverNoopOn is one no-op run with settings s on d, whose river_job table
// is emptied first (so runs can share one database).
func (b *bench) riverNoopOn(ctx context.Context, d *benchDB, s riverSettings) (drainFigures, error) {
	if _, err := d.pool.Exec(ctx, `TRUNCATE river_job`); err != nil {
		return drainFigures{}, fmt.Errorf("empty river_job: %w", err)
	}
	// The completer and the fetches hold connections, the no-op workers
	// none: past 64 a bigger pool only adds idle connections.
	pool, err := db.Open(ctx, db.PoolConfig{URL: d.url, MaxConns: min(s.Workers, 64) + 8})
	if err != nil {
		return drainFigures{}, err
	}
	defer pool.Close()
	workers := river.NewWorkers()
	river.AddWorker(workers, noopWorker{})
	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Workers:           workers,
		Queues:            map[string]river.QueueConfig{app.QueuePayments: {MaxWorkers: s.Workers}},
		FetchCooldown:     s.FetchCooldown,
		FetchPollInterval: s.FetchPollInterval,
		Logger:            slog.New(slog.DiscardHandler),
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

	b.logf("  river no-op: %d jobs, %s", benchRiverJobs, s)
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
	f := drainRate(benchRiverJobs-left, elapsed, s.Workers, left == 0)
	f.Settings = s.String()
	if !f.Empty {
		return f, fmt.Errorf("river no-op: %d of %d jobs left after %s", left, benchRiverJobs, elapsed.Round(time.Millisecond))
	}
	b.logf("  river no-op: %.0f jobs/s (%.2f s)", f.Rate, f.Seconds)
	return f, nil
}

// riverBestCounts are the worker counts River's no-op rate is searched at
// (with Spillway's fetch cooldown, then with River's shortest), to report
// River at its best on this machine beside River at Spillway's count.
// With a 10 ms cooldown a queue fetches at most MaxWorkers jobs per
// 10 ms, so the rate grows almost linearly with the count (measured here:
// 2 900 jobs/s at 32 workers, 5 800 at 64, 11 300 at 128) until Postgres
// or the CPU is the limit; the search climbs until a doubling gains less
// than riverPlateau.
var riverBestCounts = []int{64, 128, 256, 512, 1024}

// riverBestCooldowns are the FetchCooldowns tried at the best counts:
// River's minimum, and one between it and Spillway's.
var riverBestCooldowns = []time.Duration{time.Millisecond, 3 * time.Millisecond}

// riverPlateau is the least gain of a doubling that keeps the search
// climbing.
const riverPlateau = 1.10

// riverBest is the fastest of River's no-op runs over the search, Spillway's
// count and settings (at) included. Every run shares one database.
func (b *bench) riverBest(ctx context.Context, at drainFigures) (drainFigures, error) {
	d, err := b.freshDB(ctx, "river_best")
	if err != nil {
		return at, err
	}
	defer b.dropDB(d)
	best := at
	if best.Settings == "" {
		best.Settings = spillwaySettings(at.Workers).String()
	}
	// Climb the counts with Spillway's cooldown.
	bestN, prev := at.Workers, at.Rate
	for _, n := range riverBestCounts {
		if n <= at.Workers {
			continue
		}
		f, err := b.riverNoopOn(ctx, d, spillwaySettings(n))
		if err != nil {
			return best, err
		}
		if f.Rate > best.Rate {
			best, bestN = f, n
		}
		if f.Rate < prev*riverPlateau {
			break
		}
		prev = f.Rate
	}
	// Then a shorter cooldown at the best count and half of it: with
	// fetches no longer the limit, fewer workers may do as well.
	for _, cd := range riverBestCooldowns {
		for _, n := range []int{bestN, max(bestN/2, 1)} {
			f, err := b.riverNoopOn(ctx, d, riverSettings{Workers: n, FetchCooldown: cd, FetchPollInterval: 100 * time.Millisecond})
			if err != nil {
				return best, err
			}
			if f.Rate > best.Rate {
				best = f
			}
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
