package web

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// QueueDepthCollector reports River's jobs by queue and state at scrape
// time: the queue is the product's backlog, so it is read fresh, not
// sampled.
type QueueDepthCollector struct {
	Pool *pgxpool.Pool
	desc *prometheus.Desc
}

// NewQueueDepthCollector returns a collector for pool's River jobs.
func NewQueueDepthCollector(pool *pgxpool.Pool) *QueueDepthCollector {
	return &QueueDepthCollector{Pool: pool, desc: prometheus.NewDesc("spillway_queue_jobs",
		"River jobs by queue and state.", []string{"queue", "state"}, nil)}
}

func (c *QueueDepthCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *QueueDepthCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rows, err := c.Pool.Query(ctx, `SELECT queue, state::text, count(*) FROM river_job GROUP BY queue, state`)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var queue, state string
		var n float64
		if err := rows.Scan(&queue, &state, &n); err != nil {
			ch <- prometheus.NewInvalidMetric(c.desc, err)
			return
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, n, queue, state)
	}
}
