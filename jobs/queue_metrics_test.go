package jobs_test

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/sim"
	"github.com/spillway/spillway/cmd/spillway/service/servicetest"
)

// A payment captured because the provider was down, then drained by a
// worker once it is back, is seen by both histograms on /metrics: every
// attempt's wait in the payments queue (one observation per fetch, which
// is what River's attempt counts), and one time to its terminal status,
// labelled with its kind and that status.
func TestDrainedPaymentIsObservedByQueueWaitAndTimeToTerminal(t *testing.T) {
	t.Parallel()
	p := servicetest.New(t, servicetest.Options{Workers: 1})
	p.Sim.SetChaos(sim.Chaos{Down: true})
	r := p.Pay("histogram-1", `{"amount": 1999, "currency": "usd"}`)
	if r.Status != http.StatusAccepted {
		t.Fatalf("capture while the provider is down: %d %s", r.Status, r.Body)
	}
	id := r.JSON(t)["id"].(string)
	p.Sim.SetChaos(sim.Chaos{})
	p.WaitStatus(id, app.StatusSucceeded)
	attempts := p.Count(`SELECT j.attempt FROM river_job j JOIN operations o ON o.job_id = j.id WHERE o.id = $1`, id)

	body := scrape(t, p.URL+"/metrics")
	// The worker observes the wait before it works, and the end after it
	// recorded it; the operation is read as ended once that write commits,
	// so the end's observation may trail WaitStatus by a moment: poll.
	for range 100 {
		if metricValue(body, `spillway_async_operation_seconds_count{kind="payment",outcome="succeeded"}`) == 1 {
			break
		}
		waitABit()
		body = scrape(t, p.URL+"/metrics")
	}
	if got := metricValue(body, `spillway_async_operation_seconds_count{kind="payment",outcome="succeeded"}`); got != 1 {
		t.Errorf("time to terminal: %v observations, want 1\n%s", got, grepLines(body, "spillway_async_operation_seconds"))
	}
	if got := metricValue(body, `spillway_job_queue_wait_seconds_count{kind="payment",queue="payments"}`); got != float64(attempts) || attempts < 1 {
		t.Errorf("queue wait: %v observations, want one per attempt (%d)\n%s", got, attempts, grepLines(body, "spillway_job_queue_wait_seconds"))
	}
	// Every observation falls in some bucket: +Inf holds the count.
	if inf := metricValue(body, `spillway_async_operation_seconds_bucket{kind="payment",outcome="succeeded",le="+Inf"}`); inf != 1 {
		t.Errorf("time to terminal +Inf bucket: %v, want 1", inf)
	}
	// A sync payment is no async operation: no series for it appears.
	if r := p.Pay("histogram-sync", `{"amount": 1999, "currency": "usd"}`); r.Status != http.StatusCreated {
		t.Fatalf("sync payment: %d %s", r.Status, r.Body)
	}
	body = scrape(t, p.URL+"/metrics")
	if got := metricValue(body, `spillway_async_operation_seconds_count{kind="payment",outcome="succeeded"}`); got != 1 {
		t.Errorf("after a sync payment, time to terminal: %v observations, want still 1", got)
	}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, res.StatusCode, err)
	}
	return string(b)
}

// metricValue is the value of the sample named exactly series (name and
// labels as the text format writes them, labels sorted); -1 when absent.
func metricValue(body, series string) float64 {
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

func grepLines(body, prefix string) string {
	var out []string
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, prefix) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

func waitABit() { time.Sleep(20 * time.Millisecond) }
