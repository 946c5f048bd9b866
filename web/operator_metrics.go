package web

import (
	"context"
	"log/slog"
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
// person can do. They are read from the database (scrapeReading) rather
// than kept by the reconciler and the sweep, because those run on one
// instance at a time.
type AwaitingOperatorCollector struct {
	reading    *scrapeReading[db.AwaitingOperator]
	unresolved *prometheus.Desc
	orphans    *prometheus.Desc
}

// NewAwaitingOperatorCollector returns a collector for cfg.
func NewAwaitingOperatorCollector(cfg AwaitingOperatorConfig) *AwaitingOperatorCollector {
	return &AwaitingOperatorCollector{
		reading: newScrapeReading("operator work", cfg.Query, cfg.MaxAge, cfg.QueryTimeout, cfg.Now, cfg.Logger),
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
	last, ok := c.reading.get()
	if !ok {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.unresolved, prometheus.GaugeValue, float64(last.Unresolved))
	ch <- prometheus.MustNewConstMetric(c.orphans, prometheus.GaugeValue, float64(last.Orphans))
}
