package web

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spillway/spillway/app"
)

// DrillMetricsConfig configures a DrillCollector. Query reads each
// dependency's last finished drill (db.LastDrills on the pool).
type DrillMetricsConfig struct {
	Query func(ctx context.Context) (map[string]app.Drill, error)
	// MaxAge is how long a reading serves scrapes; zero means 5 s.
	MaxAge time.Duration
	// QueryTimeout bounds one reading; zero means 3 s.
	QueryTimeout time.Duration
	Logger       *slog.Logger
}

// DrillCollector reports each dependency's last finished drill:
// spillway_drill_last_success (1 passed, 0 failed) and
// spillway_drill_last_end_timestamp_seconds, by dependency. Like the
// operator gauges it reads the database at scrape time, because any
// instance may have run the drill. A dependency never drilled has no
// series, so a new deployment pages nobody before its first drill; a
// failed read leaves both out of that scrape.
type DrillCollector struct {
	reading *scrapeReading[map[string]app.Drill]
	success *prometheus.Desc
	end     *prometheus.Desc
}

// NewDrillCollector returns a collector for cfg.
func NewDrillCollector(cfg DrillMetricsConfig) *DrillCollector {
	return &DrillCollector{reading: newScrapeReading("drills", cfg.Query, cfg.MaxAge, cfg.QueryTimeout, nil, cfg.Logger),
		success: prometheus.NewDesc("spillway_drill_last_success",
			"1 when the dependency's last finished failover drill passed, 0 when it failed. Read from the database at scrape time.",
			[]string{"dependency", "mode"}, nil),
		end: prometheus.NewDesc("spillway_drill_last_end_timestamp_seconds",
			"When the dependency's last failover drill finished (its verdict), in Unix seconds.",
			[]string{"dependency", "mode"}, nil),
	}
}

func (c *DrillCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.success
	ch <- c.end
}

func (c *DrillCollector) Collect(ch chan<- prometheus.Metric) {
	last, ok := c.reading.get()
	if !ok {
		return
	}
	for dep, d := range last {
		ok := 0.0
		if d.Status == app.DrillPassed {
			ok = 1
		}
		ch <- prometheus.MustNewConstMetric(c.success, prometheus.GaugeValue, ok, dep, string(d.Mode))
		ch <- prometheus.MustNewConstMetric(c.end, prometheus.GaugeValue, float64(d.FinishedAt.UnixNano())/1e9, dep, string(d.Mode))
	}
}
