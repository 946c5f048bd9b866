package admin

import (
	"context"
	"sync"
	"time"

	"github.com/spillway/spillway/db"
)

// throughputWindow is the overview chart's span, one bucket a minute.
const throughputWindow = 60 * time.Minute

// throughputSettle is how long after a minute ends it may still gain
// operations: each is stamped at its request's arrival and committed when
// the request ends, within its budget (ORDER_DEADLINE + CAPTURE_TIMEOUT by
// default; this leaves room beyond).
const throughputSettle = 30 * time.Second

// throughputCache keeps the chart's minutes that can no longer change, so
// a refresh counts only the last minute or two rather than the whole hour:
// at a million operations an hour, the hour's count was a tenth of a
// second of every overview's refresh, every 5 s.
type throughputCache struct {
	mu      sync.Mutex
	settled map[time.Time]db.ThroughputBucket
}

// read returns the window's buckets ending at now, counting in q only the
// minutes it does not hold yet.
func (c *throughputCache) read(ctx context.Context, q db.Querier, now time.Time) ([]db.ThroughputBucket, error) {
	first := now.Add(-throughputWindow + time.Minute).Truncate(time.Minute)
	c.mu.Lock()
	from := first
	for ; from.Before(now) && c.has(from); from = from.Add(time.Minute) {
	}
	c.mu.Unlock()
	fresh, err := db.Throughput(ctx, q, from, now)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.merge(first, fresh, now), nil
}

func (c *throughputCache) has(m time.Time) bool {
	_, ok := c.settled[m.UTC()]
	return ok
}

// merge keeps the settled ones of fresh, forgets minutes that left the
// window, and returns the window's buckets in order. c.mu is held.
func (c *throughputCache) merge(first time.Time, fresh []db.ThroughputBucket, now time.Time) []db.ThroughputBucket {
	if c.settled == nil {
		c.settled = map[time.Time]db.ThroughputBucket{}
	}
	for _, b := range fresh {
		if !b.Minute.Add(time.Minute + throughputSettle).After(now) {
			c.settled[b.Minute.UTC()] = b
		}
	}
	for m := range c.settled {
		if m.Before(first) {
			delete(c.settled, m)
		}
	}
	var out []db.ThroughputBucket
	i := 0
	for m := first; !m.After(now); m = m.Add(time.Minute) {
		for i < len(fresh) && fresh[i].Minute.Before(m) {
			i++
		}
		switch {
		case i < len(fresh) && fresh[i].Minute.Equal(m):
			out = append(out, fresh[i])
		case c.has(m):
			out = append(out, c.settled[m.UTC()])
		default:
			out = append(out, db.ThroughputBucket{Minute: m})
		}
	}
	return out
}
