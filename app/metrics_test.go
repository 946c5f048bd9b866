package app_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/spillway/spillway/app"
)

// A breaker's change sets its state and the moment it entered it, so an
// alert or a dashboard can say "open since".
func TestBreakerChangedSetsStateAndSince(t *testing.T) {
	m := app.NewMetrics(prometheus.NewRegistry())
	since := time.Date(2030, 1, 2, 3, 4, 5, 500_000_000, time.UTC)
	m.BreakerChanged(app.Breaker{Name: "payment", State: app.BreakerOpen, Since: since}, true)
	if got := testutil.ToFloat64(m.BreakerState.WithLabelValues("payment", "open")); got != 1 {
		t.Errorf("open state gauge = %g, want 1", got)
	}
	if got := testutil.ToFloat64(m.BreakerState.WithLabelValues("payment", "closed")); got != 0 {
		t.Errorf("closed state gauge = %g, want 0", got)
	}
	if got, want := testutil.ToFloat64(m.BreakerSince.WithLabelValues("payment")), 1893553445.5; got != want {
		t.Errorf("since = %f, want %f", got, want)
	}
}

// Refusals and delivery attempts exist at 0 from the start, so a rate
// over them is defined before the first one.
func TestCountersStartAtZeroForEveryLabel(t *testing.T) {
	m := app.NewMetrics(prometheus.NewRegistry())
	if n := testutil.CollectAndCount(m.Deliveries); n != 12 {
		t.Errorf("%d delivery series, want 3 channels × 4 outcomes", n)
	}
	if n := testutil.CollectAndCount(m.BacklogShed); n != len(app.Dependencies()) {
		t.Errorf("%d refusal series, want one per dependency (%d)", n, len(app.Dependencies()))
	}
}
