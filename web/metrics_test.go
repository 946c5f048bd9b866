package web_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/riverqueue/river/rivertype"

	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/web"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// scrapeQueueJobs scrapes reg as Prometheus would and returns its
// spillway_queue_jobs samples, one line each.
func scrapeQueueJobs(reg prometheus.Gatherer) (string, error) {
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		return "", fmt.Errorf("scrape: %d %s", rec.Code, rec.Body)
	}
	var samples []string
	for line := range strings.Lines(rec.Body.String()) {
		if strings.HasPrefix(line, "spillway_queue_jobs") {
			samples = append(samples, line)
		}
	}
	return strings.Join(samples, ""), nil
}

// queueJobsAre checks what a scrape of reg reports: jobs in the payments
// queue's available state, read age seconds ago.
func queueJobsAre(reg prometheus.Gatherer, jobs, age float64) error {
	want := fmt.Sprintf("spillway_queue_jobs{queue=\"payments\",state=\"available\"} %g\nspillway_queue_jobs_age_seconds %g\n", jobs, age)
	got, err := scrapeQueueJobs(reg)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("scrape:\n%s\nwant:\n%s", got, want)
	}
	return nil
}

func wantQueueJobs(t *testing.T, reg prometheus.Gatherer, jobs, age float64) {
	t.Helper()
	if err := queueJobsAre(reg, jobs, age); err != nil {
		t.Fatal(err)
	}
}

func payments(n float64) []db.QueueDepth {
	return []db.QueueDepth{{Queue: "payments", State: rivertype.JobStateAvailable, Count: int(n)}}
}

// eventually polls cond until it holds; the deadline only guards against a
// hang, it decides nothing.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(guard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// countQueueJobs is how many spillway_queue_jobs samples a scrape reports.
func countQueueJobs(t *testing.T, reg prometheus.Gatherer) int {
	t.Helper()
	got, err := scrapeQueueJobs(reg)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(got, "spillway_queue_jobs{")
}

func TestQueueDepthConcurrentScrapesRunOneQuery(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	started := make(chan struct{})
	release := make(chan struct{})
	unblock := sync.OnceFunc(func() { close(release) })
	t.Cleanup(unblock)
	clk := newClock()
	c := web.NewQueueDepthCollector(web.QueueDepthConfig{
		Query: func(ctx context.Context) ([]db.QueueDepth, error) {
			if calls.Add(1) == 1 {
				close(started)
			}
			select {
			case <-release:
				return payments(4), nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		},
		Now: clk.Now, Wait: time.Millisecond, QueryTimeout: time.Minute,
	})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)

	// Every scrape ends while the one query is still held: none waited on
	// it past the bound, and none started another.
	const scrapes = 50
	var wg sync.WaitGroup
	for range scrapes {
		wg.Go(func() {
			if _, err := reg.Gather(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	select {
	case <-started:
	case <-time.After(guard):
		t.Fatal("no query started")
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d scrapes ran %d queries, want 1", scrapes, n)
	}
	if n := countQueueJobs(t, reg); n != 0 {
		t.Fatalf("%d series before the first read finished, want none", n)
	}

	unblock()
	eventually(t, "the first counts", func() bool { return countQueueJobs(t, reg) == 1 })
	for range scrapes {
		wg.Go(func() {
			if _, err := reg.Gather(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	wantQueueJobs(t, reg, 4, 0)
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d queries within MaxAge, want 1", n)
	}
}

func TestQueueDepthRefreshesAfterMaxAge(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	clk := newClock()
	fail := errors.New("database is away")
	var failing atomic.Bool
	c := web.NewQueueDepthCollector(web.QueueDepthConfig{
		Query: func(context.Context) ([]db.QueueDepth, error) {
			n := calls.Add(1)
			if failing.Load() {
				return nil, fail
			}
			return payments(float64(n)), nil
		},
		// Scrapes wait for every refresh here, so each one shows what the
		// query returned without depending on how fast it ran.
		Now: clk.Now, MaxAge: 5 * time.Second, Wait: time.Hour,
	})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)

	wantQueueJobs(t, reg, 1, 0)
	clk.Add(4 * time.Second)
	wantQueueJobs(t, reg, 1, 4)
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d queries within MaxAge, want 1", n)
	}
	clk.Add(time.Second)
	wantQueueJobs(t, reg, 2, 0)
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d queries after MaxAge, want 2", n)
	}

	// A failed refresh leaves the last counts served, older, and is not
	// retried on every scrape.
	failing.Store(true)
	clk.Add(5 * time.Second)
	wantQueueJobs(t, reg, 2, 5)
	wantQueueJobs(t, reg, 2, 5)
	if n := calls.Load(); n != 3 {
		t.Fatalf("%d queries, want one failed refresh per MaxAge", n)
	}
	failing.Store(false)
	clk.Add(5 * time.Second)
	wantQueueJobs(t, reg, 4, 0)
}

func TestQueueDepthScrapeDoesNotWaitOnSlowRefresh(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	started := make(chan struct{})
	release := make(chan struct{})
	unblock := sync.OnceFunc(func() { close(release) })
	t.Cleanup(unblock)
	clk := newClock()
	c := web.NewQueueDepthCollector(web.QueueDepthConfig{
		Query: func(ctx context.Context) ([]db.QueueDepth, error) {
			if calls.Add(1) == 1 {
				return payments(1), nil
			}
			close(started)
			select {
			case <-release:
				return payments(2), nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		},
		Now: clk.Now, MaxAge: 5 * time.Second, Wait: 10 * time.Millisecond, QueryTimeout: time.Minute,
	})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	eventually(t, "the first counts", func() bool { return countQueueJobs(t, reg) == 1 })

	// The refresh hangs until released; the scrape that started it still
	// answers, with the last counts and their age.
	clk.Add(5 * time.Second)
	scraped := make(chan error, 1)
	go func() { scraped <- queueJobsAre(reg, 1, 5) }()
	select {
	case err := <-scraped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(guard):
		t.Fatal("a scrape waited on the hung refresh")
	}
	select {
	case <-started:
	case <-time.After(guard):
		t.Fatal("no refresh started after MaxAge")
	}
	wantQueueJobs(t, reg, 1, 5) // still hung: the same answer, no second query
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d queries, want 2", n)
	}

	unblock()
	// Read at the clock's present, so the new counts are 0 s old.
	eventually(t, "the refreshed counts", func() bool { return queueJobsAre(reg, 2, 0) == nil })
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d queries, want 2", n)
	}
}

func TestMetricsBearerToken(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	up := prometheus.NewGauge(prometheus.GaugeOpts{Name: "spillway_test_up", Help: "A gauge."})
	reg.MustRegister(up)
	scrape := func(token, authorization string) *httptest.ResponseRecorder {
		t.Helper()
		h := web.NewServer(web.Config{Metrics: reg, MetricsToken: token})
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	const token = "s3cret-metrics-token"
	tests := []struct {
		name, token, authorization string
		ok                         bool
	}{
		{name: "no token configured", ok: true},
		{name: "no token configured, header ignored", authorization: "Bearer whatever", ok: true},
		{name: "right token", token: token, authorization: "Bearer " + token, ok: true},
		{name: "scheme is case-insensitive", token: token, authorization: "bearer " + token, ok: true},
		{name: "no header", token: token},
		{name: "wrong token", token: token, authorization: "Bearer s3cret-metrics-tokeN"},
		{name: "prefix of the token", token: token, authorization: "Bearer s3cret"},
		{name: "token plus more", token: token, authorization: "Bearer " + token + "x"},
		{name: "empty bearer", token: token, authorization: "Bearer "},
		{name: "other scheme", token: token, authorization: "Basic " + token},
		{name: "token without scheme", token: token, authorization: token},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := scrape(tt.token, tt.authorization)
			if tt.ok {
				if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "spillway_test_up 0") {
					t.Fatalf("got %d %s, want the metrics", rec.Code, rec.Body)
				}
				return
			}
			if rec.Code != http.StatusUnauthorized || !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") ||
				rec.Header().Get("Content-Type") != "application/problem+json" ||
				!strings.Contains(rec.Body.String(), `"type":"urn:spillway:problem:unauthorized"`) {
				t.Fatalf("got %d %v %s, want 401 problem with WWW-Authenticate: Bearer", rec.Code, rec.Header(), rec.Body)
			}
			if strings.Contains(rec.Body.String(), "spillway_test_up") {
				t.Fatal("metrics served without the token")
			}
		})
	}
}
