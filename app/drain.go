package app

import (
	"context"
	"sync"
	"time"
)

// RateLimitStore hands out tokens from a bucket shared by every instance.
type RateLimitStore interface {
	// TakeTokens takes up to want tokens from the named bucket, refilled at
	// rate per second up to burst, and says how long until the next one
	// when it had none.
	TakeTokens(ctx context.Context, name string, rate float64, burst, want int) (got int, wait time.Duration, err error)
}

// DrainLimiter paces async calls to a dependency so a backlog drains at no
// more than Rate per second across all instances, leaving the rest of the
// provider's capacity to new synchronous requests. Tokens are claimed from
// the shared bucket in small batches, so the database sees a claim per
// batch rather than per job.
type DrainLimiter struct {
	store RateLimitStore
	name  string
	rate  float64
	burst int
	mu    sync.Mutex
	local int
}

// NewDrainLimiter returns a limiter for name at rate jobs/s; a rate of 0
// means no limit and a nil limiter.
func NewDrainLimiter(store RateLimitStore, name string, rate float64) *DrainLimiter {
	if rate <= 0 {
		return nil
	}
	// A tenth of a second's worth: smooth, yet few claims.
	return &DrainLimiter{store: store, name: "drain:" + name, rate: rate, burst: max(1, int(rate/10))}
}

// Wait blocks until a call may go ahead, or until max has passed; then it
// returns false and how long until a token is likely, so the caller can
// snooze instead of holding a worker.
func (l *DrainLimiter) Wait(ctx context.Context, max time.Duration) (bool, time.Duration, error) {
	if l == nil {
		return true, 0, nil
	}
	deadline := time.Now().Add(max)
	for {
		l.mu.Lock()
		if l.local > 0 {
			l.local--
			l.mu.Unlock()
			return true, 0, nil
		}
		l.mu.Unlock()
		got, wait, err := l.store.TakeTokens(ctx, l.name, l.rate, l.burst, l.burst)
		if err != nil {
			return false, time.Second, err
		}
		if got > 0 {
			l.mu.Lock()
			l.local += got - 1
			l.mu.Unlock()
			return true, 0, nil
		}
		if time.Now().Add(wait).After(deadline) {
			return false, wait, nil
		}
		select {
		case <-ctx.Done():
			return false, wait, ctx.Err()
		case <-time.After(wait):
		}
	}
}
