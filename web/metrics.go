package web

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spillway/spillway/db"
)

// QueueDepthConfig configures a QueueDepthCollector. Only Query is
// required; the zero values of the rest are working defaults.
type QueueDepthConfig struct {
	// Query reads the counts: db.ListQueueDepths on the pool, exact up
	// to db.MetricsCountCap per queue and state, estimated past it.
	Query func(ctx context.Context) ([]db.QueueDepth, error)
	// MaxAge is how old the counts may be before a scrape starts a
	// refresh; zero means 5 s.
	MaxAge time.Duration
	// Wait bounds how long a scrape waits for a refresh in progress before
	// it serves the last counts; zero means 250 ms.
	Wait time.Duration
	// QueryTimeout bounds one refresh; zero means 10 s.
	QueryTimeout time.Duration
	Now          func() time.Time
	Logger       *slog.Logger
}

// QueueDepthCollector reports River's jobs by queue and state. Counting
// river_job is a scan that grows with the backlog, just when the database
// is busiest, and every Prometheus server (and every person with curl)
// scrapes on its own schedule; so the counts are cached for MaxAge and
// refreshed by one query at a time however many scrapes arrive. A scrape
// never waits on a slow refresh for more than Wait: it serves the last
// counts, and spillway_queue_jobs_age_seconds says how old they are.
type QueueDepthCollector struct {
	query   func(ctx context.Context) ([]db.QueueDepth, error)
	maxAge  time.Duration
	wait    time.Duration
	timeout time.Duration
	now     func() time.Time
	log     *slog.Logger
	desc    *prometheus.Desc
	ageDesc *prometheus.Desc

	mu         sync.Mutex
	counts     []db.QueueDepth
	read       bool          // the counts have been read once
	fresh      time.Time     // when the counts were read
	attempted  time.Time     // when the last refresh started
	err        error         // the last refresh's error, until one succeeds
	refreshing chan struct{} // non-nil while a refresh runs; closed when it ends
}

// NewQueueDepthCollector returns a collector for cfg.
func NewQueueDepthCollector(cfg QueueDepthConfig) *QueueDepthCollector {
	c := &QueueDepthCollector{query: cfg.Query, maxAge: cfg.MaxAge, wait: cfg.Wait, timeout: cfg.QueryTimeout,
		now: cfg.Now, log: cfg.Logger,
		desc: prometheus.NewDesc("spillway_queue_jobs", fmt.Sprintf("River jobs by queue and state, read at most every few seconds; capped: exact up to %d per queue and state, the planner's estimate past it.", db.MetricsCountCap),
			[]string{"queue", "state"}, nil),
		ageDesc: prometheus.NewDesc("spillway_queue_jobs_age_seconds",
			"How long ago spillway_queue_jobs was read from the database.", nil, nil),
	}
	if c.maxAge <= 0 {
		c.maxAge = 5 * time.Second
	}
	if c.wait <= 0 {
		c.wait = 250 * time.Millisecond
	}
	if c.timeout <= 0 {
		c.timeout = 10 * time.Second
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c *QueueDepthCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.desc
	ch <- c.ageDesc
}

func (c *QueueDepthCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	now := c.now()
	// Refresh when the counts are older than MaxAge, but start at most one
	// refresh per MaxAge even when they keep failing: a database that is
	// struggling gets no more queries for being scraped.
	if c.refreshing == nil && (c.attempted.IsZero() || now.Sub(c.attempted) >= c.maxAge) {
		c.attempted = now
		c.refreshing = make(chan struct{})
		go c.refresh(c.refreshing, now)
	}
	wait := c.refreshing
	c.mu.Unlock()

	if wait != nil {
		t := time.NewTimer(c.wait)
		select {
		case <-wait:
		case <-t.C:
		}
		t.Stop()
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.read {
		if c.err != nil {
			ch <- prometheus.NewInvalidMetric(c.desc, c.err)
		}
		return // still reading the first counts: report nothing rather than zeros
	}
	for _, q := range c.counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(q.Count), q.Queue, string(q.State))
	}
	ch <- prometheus.MustNewConstMetric(c.ageDesc, prometheus.GaugeValue, max(0, c.now().Sub(c.fresh).Seconds()))
}

// refresh reads the counts on its own deadline, apart from any scrape's,
// so a slow query that outlasts the scrape that started it still serves
// the next one. The counts are as of started.
func (c *QueueDepthCollector) refresh(done chan struct{}, started time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	counts, err := c.query(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	defer close(done)
	c.refreshing = nil
	if err != nil {
		c.err = err
		c.log.Warn("queue depth for /metrics", "error", err)
		return
	}
	c.counts, c.fresh, c.read, c.err = counts, started, true, nil
}

// requireBearer lets a request through only with "Authorization: Bearer
// <token>". Both sides are hashed before the constant-time compare, so
// neither the token's bytes nor its length leak through timing.
func requireBearer(token string) func(http.Handler) http.Handler {
	want := sha256.Sum256([]byte(token))
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			scheme, got, _ := strings.Cut(r.Header.Get("Authorization"), " ")
			sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
			if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
				writeProblem(w, r, problem{Type: "unauthorized", Title: "Unauthorized", Status: http.StatusUnauthorized,
					Detail: "this endpoint needs Authorization: Bearer with the metrics token"})
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
