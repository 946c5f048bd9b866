package jobs_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db/dbtest"
	"github.com/spillway/spillway/jobs"
	"github.com/spillway/spillway/jobs/notify"
)

// Each delivery attempt is counted by channel and outcome, the series
// SpillwayDeliveriesFailing watches: a 500 is a failed attempt, a 410 a
// disabled one.
func TestDeliveryAttemptsAreCountedByChannelAndOutcome(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	var status atomic.Int32
	status.Store(http.StatusInternalServerError)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(int(status.Load()))
	}))
	t.Cleanup(srv.Close)
	hook, err := notify.NewWebhook(notify.WebhookConfig{Secret: testWebhookSecret, AllowPrivate: true})
	if err != nil {
		t.Fatal(err)
	}
	metrics := app.NewMetrics(prometheus.NewRegistry())
	w := jobs.NewDeliveryWorker(jobs.Config{Pool: pool, Senders: &jobs.Senders{Webhook: hook}, Metrics: metrics,
		Logger: slog.New(slog.DiscardHandler), Now: time.Now})
	op := insertOperation(t, pool, srv.URL+"/hooks", app.StatusFailed)
	work := func(attempt int) error {
		return w.Work(context.Background(), &river.Job[app.DeliveryArgs]{
			JobRow: &rivertype.JobRow{ID: 1, Attempt: attempt},
			Args:   app.DeliveryArgs{OperationID: op, Channel: app.ChannelWebhook, Status: app.StatusFailed},
		})
	}
	count := func(channel, outcome string) float64 {
		return testutil.ToFloat64(metrics.Deliveries.WithLabelValues(channel, outcome))
	}

	if err := work(1); err == nil {
		t.Fatal("a 500 answer completed the delivery")
	}
	status.Store(http.StatusGone)
	if err := work(2); !isCancel(err) {
		t.Fatalf("a 410 answer: %v, want the job cancelled", err)
	}
	for _, c := range []struct {
		channel, outcome string
		want             float64
	}{{"webhook", "failed", 1}, {"webhook", "disabled", 1}, {"webhook", "sent", 0}, {"email", "failed", 0}} {
		if got := count(c.channel, c.outcome); got != c.want {
			t.Errorf("spillway_delivery_attempts_total{channel=%q,outcome=%q} = %g, want %g", c.channel, c.outcome, got, c.want)
		}
	}
}
