package web

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// scrapeReading is a figure read from the database at scrape time, for the
// gauges no one instance can keep (the reconciler, the sweep and drills
// run on whichever instance River picks, and a gauge set there would stay
// stale on the others). A reading serves scrapes for maxAge, and scrapes
// take turns, so however many arrive the database sees at most one read
// per maxAge. A failed read is not kept: that scrape leaves the gauges out
// (an alert on them holds its state) and the next scrape reads again.
type scrapeReading[T any] struct {
	query   func(ctx context.Context) (T, error)
	maxAge  time.Duration
	timeout time.Duration
	now     func() time.Time
	log     *slog.Logger
	what    string // names the reading in the log

	mu   sync.Mutex
	last T
	at   time.Time // when last was read; zero: never
}

// newScrapeReading applies the defaults: maxAge 5 s, timeout 3 s, the
// wall clock, no log.
func newScrapeReading[T any](what string, query func(context.Context) (T, error), maxAge, timeout time.Duration,
	now func() time.Time, log *slog.Logger) *scrapeReading[T] {
	r := &scrapeReading[T]{query: query, maxAge: maxAge, timeout: timeout, now: now, log: log, what: what}
	if r.maxAge <= 0 {
		r.maxAge = 5 * time.Second
	}
	if r.timeout <= 0 {
		r.timeout = 3 * time.Second
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	return r
}

// get is the current reading, read again when older than maxAge; false
// when that read failed.
func (r *scrapeReading[T]) get() (T, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); r.at.IsZero() || now.Sub(r.at) >= r.maxAge {
		ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
		got, err := r.query(ctx)
		cancel()
		if err != nil {
			r.log.Warn(r.what+" for /metrics", "error", err)
			r.at = time.Time{}
			var zero T
			return zero, false
		}
		r.last, r.at = got, now
	}
	return r.last, true
}
