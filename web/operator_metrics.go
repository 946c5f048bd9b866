package web

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spillway/spillway/db"
)

// AwaitingOperatorConfig configures an AwaitingOperatorCollector. Query
// is required.
type AwaitingOperatorConfig struct {
	// Query counts what awaits an operator: db.ReadAwaitingOperator on the
	// pool, with RECONCILE_AFTER before now.
	Query func(ctx context.Context) (db.AwaitingOperator, error)
	// MaxAge is how long a reading serves scrapes; zero means 5 s.
	MaxAge time.Duration
	// QueryTimeout bounds one reading; zero means 3 s.
	QueryTimeout time.Duration
	Now          func() time.Time
	Logger       *slog.Logger
}

// AwaitingOperatorCollector reports, at scrape time, the operations whose
// outcome is unknown and the orphan charges still open: the work only a
// person can do. They are read from the database rather than kept by the
// reconciler and the sweep, because those run on one instance at a time
// and a gauge set there would stay stale on the others. A reading serves
// scrapes for MaxAge, and scrapes take turns, so however many arrive the
// database sees at most one read per MaxAge. When a read fails the
// gauges are left out of that scrape (an alert on them then holds its
// state) and the rest of /metrics is served.
type AwaitingOperatorCollector struct {
	cfg        AwaitingOperatorConfig
	unresolved *prometheus.Desc
	orphans    *prometheus.Desc

	mu   sync.Mutex
	last db.AwaitingOperator
	at   time.Time // when last was read; zero: never
}

// NewAwaitingOperatorCollector returns a collector for cfg.
func NewAwaitingOperatorCollector(cfg AwaitingOperatorConfig) *AwaitingOperatorCollector {
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 5 * time.Second
	}
	if cfg.QueryTimeout <= 0 {
		cfg.QueryTimeout = 3 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &AwaitingOperatorCollector{cfg: cfg,
		unresolved: prometheus.NewDesc("spillway_outcome_unknown_operations",
			"Open operations whose outcome has been unknown (or whose job ended) longer than RECONCILE_AFTER: each needs an operator. Read from the database at scrape time.",
			nil, nil),
		orphans: prometheus.NewDesc("spillway_orphan_charges_open",
			"Orphan charges the sweep found that are neither refunded nor adopted. Read from the database at scrape time.",
			nil, nil),
	}
}

func (c *AwaitingOperatorCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.unresolved
	ch <- c.orphans
}

func (c *AwaitingOperatorCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.cfg.Now(); c.at.IsZero() || now.Sub(c.at) >= c.cfg.MaxAge {
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.QueryTimeout)
		got, err := c.cfg.Query(ctx)
		cancel()
		if err != nil {
			c.cfg.Logger.Warn("operator work for /metrics", "error", err)
			c.at = time.Time{}
			return
		}
		c.last, c.at = got, now
	}
	ch <- prometheus.MustNewConstMetric(c.unresolved, prometheus.GaugeValue, float64(c.last.Unresolved))
	ch <- prometheus.MustNewConstMetric(c.orphans, prometheus.GaugeValue, float64(c.last.Orphans))
}
