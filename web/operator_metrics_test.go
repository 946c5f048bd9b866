package web_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/web"
)

func scrapeAwaiting(t *testing.T, reg prometheus.Gatherer) string {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	var out []string
	for line := range strings.Lines(rec.Body.String()) {
		if strings.HasPrefix(line, "spillway_outcome_unknown_operations ") || strings.HasPrefix(line, "spillway_orphan_charges_open ") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}

// A reading serves scrapes for MaxAge; a failed reading leaves the gauges
// out of that scrape without failing /metrics, and the next scrape reads
// again.
func TestAwaitingOperatorIsReadAtScrapeTimeAtMostOncePerMaxAge(t *testing.T) {
	t.Parallel()
	clk := newClock()
	var calls atomic.Int32
	var fail atomic.Bool
	c := web.NewAwaitingOperatorCollector(web.AwaitingOperatorConfig{Now: clk.Now, MaxAge: 5 * time.Second,
		Query: func(ctx context.Context) (db.AwaitingOperator, error) {
			n := calls.Add(1)
			if fail.Load() {
				return db.AwaitingOperator{}, errors.New("statement timeout")
			}
			return db.AwaitingOperator{Unresolved: int(n), Orphans: 2}, nil
		}})
	reg := prometheus.NewRegistry()
	reg.MustRegister(c, prometheus.NewGauge(prometheus.GaugeOpts{Name: "other"}))

	want := "spillway_orphan_charges_open 2\nspillway_outcome_unknown_operations 1\n"
	for range 3 {
		if got := scrapeAwaiting(t, reg); got != want {
			t.Fatalf("scrape:\n%s\nwant:\n%s", got, want)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d reads for 3 scrapes within MaxAge; want 1", n)
	}
	clk.Add(5 * time.Second)
	fail.Store(true)
	if got := scrapeAwaiting(t, reg); got != "" {
		t.Fatalf("a failed reading still reports:\n%s", got)
	}
	fail.Store(false)
	if got := scrapeAwaiting(t, reg); got != "spillway_orphan_charges_open 2\nspillway_outcome_unknown_operations 3\n" {
		t.Fatalf("scrape after a failed reading:\n%s", got)
	}
}

// The product counts from the database what awaits an operator.
func TestMetricsCountUnknownOutcomesAndOrphans(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	ctx := context.Background()
	if _, err := h.pool.Exec(ctx, `INSERT INTO orphan_charges (charge_id, reference, amount, currency, status,
		created_at, found_at) VALUES ('ch_1', 'not-ours', 4200, 'usd', 'open', now(), now()),
		('ch_2', 'not-ours', 4200, 'usd', 'refunded', now(), now())`); err != nil {
		t.Fatal(err)
	}
	r := h.do(http.MethodGet, "/metrics", "", "", nil)
	for _, want := range []string{"spillway_orphan_charges_open 1\n", "spillway_outcome_unknown_operations 0\n",
		`spillway_delivery_attempts_total{channel="webhook",outcome="failed"} 0`,
		`spillway_backlog_refusals_total{dependency="payment"} 0`} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
