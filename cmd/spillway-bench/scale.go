package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"riverqueue.com/riverui"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/cmd/internal/loadgen"
	"github.com/spillway/spillway/db"
)

// The scale scenario's sizes: short windows, so the curve adds about a
// minute and a half to the run, the million-row seed included.
const (
	scaleCaptureTime = 8 * time.Second
	scaleAdminTime   = 10 * time.Second
	scaleDrainLimit  = 40 * time.Second
	scaleSeedBatch   = 100_000
	// scaleMaxBacklog is PAYMENT_MAX_BACKLOG for the scale server: above
	// the seed, so the bound is read (and costs what it costs) but does not
	// refuse the captures being measured.
	scaleMaxBacklog = 5_000_000
)

// scaleWaiting are the backlog sizes of the curve, in order (each seeds
// the difference from the one before).
var scaleWaiting = []int{0, 100_000, 1_000_000}

type scaleResult struct {
	Points []scalePoint `json:"points"`
	// SeedSeconds is how long seeding the largest backlog took in all,
	// VACUUM ANALYZE included.
	SeedSeconds float64      `json:"seed_seconds"`
	Admin       *adminResult `json:"admin,omitempty"`
}

// scalePoint is capture and drain measured with Waiting jobs already in
// the queue.
type scalePoint struct {
	Waiting int          `json:"waiting_jobs"`
	Capture loadFigures  `json:"capture"`
	Drain   drainFigures `json:"drain"`
}

// adminResult is the admin's pages and riverui's API read while capture
// runs at full speed on the largest backlog.
type adminResult struct {
	Jobs        int64         `json:"jobs_in_db"` // reltuples, at the start
	Operations  int64         `json:"operations_in_db"`
	Capture     loadFigures   `json:"capture"`
	Pages       []pageLatency `json:"pages"`
	RiverUI     []pageLatency `json:"riverui"`
	RiverUINote string        `json:"riverui_note,omitempty"`
}

type pageLatency struct {
	Name     string  `json:"name"`
	Path     string  `json:"path"`
	Requests int     `json:"requests"`
	Errors   int     `json:"errors"` // non-200 answers and transport errors
	P50ms    float64 `json:"p50_ms"`
	P95ms    float64 `json:"p95_ms"`
	Maxms    float64 `json:"max_ms"`
}

// scale (issue 13, goals 6 and 7): capture and drain with 0, 100 k and 1 M
// jobs already waiting in the payments queue, then the admin's overview
// and job lists, and riverui's API beside them, while capture runs.
//
// "Waiting" is what a real backlog of this queue is: payments deferred to
// the off-peak window. Spillway captures them as operations queued with
// reason "deferred" and payment jobs scheduled for the window's start, in
// the same river_job table and the same queue the drain works, and they
// count against the queue's backlog bound. The drain must not work them
// now, and does not: River fetches only available jobs. So the curve shows
// what a big table, a big index and a big backlog count cost the hot paths.
func (b *bench) scale(ctx context.Context, out *spillwayResults) error {
	d, err := b.freshDB(ctx, "scale")
	if err != nil {
		return err
	}
	defer b.dropDB(d)
	env := map[string]string{"DRAIN_RATE": "", "PAYMENT_MAX_BACKLOG": strconv.Itoa(scaleMaxBacklog)}
	s, err := b.startServer(ctx, "scale", d, env)
	if err != nil {
		return err
	}
	defer func() { s.Stop(20 * time.Second) }()
	r := &out.Scale
	seeded := 0
	var seedTime time.Duration
	for _, n := range scaleWaiting {
		if n > seeded {
			// The server stops while the seed loads, as a bulk load would
			// be run off-line; its readings would only slow the load.
			s.Stop(20 * time.Second)
			t0 := time.Now()
			b.logf("  seeding %d deferred payments (to %d)", n-seeded, n)
			if err := b.seedWaiting(ctx, d, n-seeded); err != nil {
				return err
			}
			seeded = n
			seedTime += time.Since(t0)
			b.logf("  seeded in %.1f s", time.Since(t0).Seconds())
			if s, err = b.startServer(ctx, "scale", d, env); err != nil {
				return err
			}
		}
		p := scalePoint{Waiting: n}
		// The chaos stays down: captures must not succeed synchronously.
		if err := s.chaos(ctx, `{"down": true}`); err != nil {
			return err
		}
		since := time.Now()
		if p.Capture, err = b.scaleCapture(ctx, s, d, scaleCaptureTime, "scale"); err != nil {
			return err
		}
		queued, err := d.count(ctx, func(ctx context.Context, q db.Querier) (int64, error) {
			return db.CountOpenOperationsSince(ctx, q, since)
		})
		if err != nil {
			return err
		}
		if err := s.chaos(ctx, `{"down": false}`); err != nil {
			return err
		}
		if p.Drain, err = b.scaleDrain(ctx, s, d, since, queued); err != nil {
			return err
		}
		b.logf("  %d waiting: capture %.0f 202/s (p99 %.1f ms), drain %.0f jobs/s (%d in %.2f s)",
			n, p.Capture.Rate, p.Capture.P99ms, p.Drain.Rate, p.Drain.Jobs, p.Drain.Seconds)
		r.Points = append(r.Points, p)
	}
	r.SeedSeconds = seedTime.Seconds()

	if err := s.chaos(ctx, `{"down": true}`); err != nil {
		return err
	}
	a, err := b.adminUnderLoad(ctx, s, d)
	if err != nil {
		return err
	}
	r.Admin = a
	return nil
}

// seedWaiting adds n deferred payments in batches, then vacuums and
// analyzes as autovacuum eventually would after such a load.
func (b *bench) seedWaiting(ctx context.Context, d *benchDB, n int) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	// Tomorrow's window: far enough that no job comes due in the run.
	runAt := time.Now().Add(12 * time.Hour)
	// Two connections, one per core.
	batches := make(chan int, n/scaleSeedBatch+1)
	for left := n; left > 0; left -= scaleSeedBatch {
		batches <- min(left, scaleSeedBatch)
	}
	close(batches)
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			for k := range batches {
				if err := db.SeedDeferredPayments(ctx, d.pool, k, runAt); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			cancel()
			return err
		}
	}
	t0 := time.Now()
	if err := db.VacuumAnalyze(ctx, d.pool, "river_job", "operations"); err != nil {
		return err
	}
	b.logf("  vacuum analyze %.1f s", time.Since(t0).Seconds())
	return nil
}

// scaleCapture forces the breaker open and runs the capture load for dur.
func (b *bench) scaleCapture(ctx context.Context, s *server, d *benchDB, dur time.Duration, prefix string) (loadFigures, error) {
	if err := d.setBreaker(ctx, app.BreakerForcedOpen); err != nil {
		return loadFigures{}, err
	}
	if err := s.waitBreaker(ctx, app.BreakerForcedOpen); err != nil {
		return loadFigures{}, err
	}
	res, err := loadgen.Run(ctx, paymentLoad(s.api+"/api/v1/payments", benchConns, dur, prefix))
	if err != nil {
		return loadFigures{}, err
	}
	if err := s.Alive(); err != nil {
		return loadFigures{}, err
	}
	f := figuresOf(res, http.StatusAccepted)
	if f.Rate == 0 {
		return f, fmt.Errorf("no 202 answers: %v, %d transport errors\n%s", res.ByStatus, res.Errors, s.LogTail())
	}
	return f, nil
}

// scaleDrain returns the breaker to closed and times until the operations
// captured since are all done; the seeded backlog stays scheduled.
func (b *bench) scaleDrain(ctx context.Context, s *server, d *benchDB, since time.Time, queued int64) (drainFigures, error) {
	start := time.Now()
	if err := d.setBreaker(ctx, app.BreakerClosed); err != nil {
		return drainFigures{}, err
	}
	left, elapsed, err := waitEmpty(ctx, scaleDrainLimit, start, func(ctx context.Context) (int64, error) {
		if err := s.Alive(); err != nil {
			return 0, err
		}
		return d.count(ctx, func(ctx context.Context, q db.Querier) (int64, error) {
			return db.CountOpenOperationsSince(ctx, q, since)
		})
	})
	if err != nil {
		return drainFigures{}, err
	}
	return drainRate(queued-left, elapsed, b.workers, left == 0), nil
}

// adminPages are the admin pages goal 7 measures: the overview and each
// job-list tab.
func adminPages() [][2]string {
	pages := [][2]string{{"overview", "/admin/"}}
	for _, tab := range []string{"pending", "prioritized", "running", "retryable", "failed", "cancelled", "completed"} {
		pages = append(pages, [2]string{"jobs: " + tab, "/admin/jobs?tab=" + tab})
	}
	return pages
}

// riverUIPaths are riverui's API calls its jobs view makes: the state
// counts (its sidebar) and one list per state.
func riverUIPaths() [][2]string {
	paths := [][2]string{{"states (counts)", "/riverui/api/states"}}
	for _, st := range []string{"available", "scheduled", "running", "retryable", "discarded", "cancelled", "completed"} {
		paths = append(paths, [2]string{"jobs: " + st, "/riverui/api/jobs?state=" + st + "&limit=20"})
	}
	return paths
}

// adminUnderLoad reads the admin's pages (signed in as the bench's
// operator) and riverui's API (its handler mounted here, in-process, on
// the same database) in two closed loops while capture runs at full
// speed.
func (b *bench) adminUnderLoad(ctx context.Context, s *server, d *benchDB) (*adminResult, error) {
	a := &adminResult{}
	if err := d.pool.QueryRow(ctx, `SELECT (SELECT reltuples::bigint FROM pg_class WHERE oid = 'river_job'::regclass),
		(SELECT reltuples::bigint FROM pg_class WHERE oid = 'operations'::regclass)`).Scan(&a.Jobs, &a.Operations); err != nil {
		return nil, fmt.Errorf("table sizes: %w", err)
	}
	jar, _ := cookiejar.New(nil)
	admin := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := admin.PostForm(s.api+"/admin/signin", url.Values{"email": {benchAdminEmail}, "password": {benchAdminPassword}})
	if err != nil {
		return nil, fmt.Errorf("admin sign-in: %w", err)
	}
	res.Body.Close()
	if res.StatusCode >= 400 {
		return nil, fmt.Errorf("admin sign-in: %d", res.StatusCode)
	}

	ui, stopUI, err := b.startRiverUI(ctx, d)
	if err != nil {
		a.RiverUINote = "riverui: " + err.Error()
		b.logf("  %s", a.RiverUINote)
	} else {
		defer stopUI()
	}

	if err := d.setBreaker(ctx, app.BreakerForcedOpen); err != nil {
		return nil, err
	}
	if err := s.waitBreaker(ctx, app.BreakerForcedOpen); err != nil {
		return nil, err
	}
	loadCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { a.Pages = readLoop(loadCtx, admin, s.api, adminPages()) })
	if ui != "" {
		wg.Go(func() { a.RiverUI = readLoop(loadCtx, http.DefaultClient, ui, riverUIPaths()) })
	}
	b.logf("  admin and riverui read for %s during capture on %d jobs, %d operations", scaleAdminTime, a.Jobs, a.Operations)
	res2, err := loadgen.Run(ctx, paymentLoad(s.api+"/api/v1/payments", benchConns, scaleAdminTime, "scale-admin"))
	stop()
	wg.Wait()
	if err != nil {
		return nil, err
	}
	a.Capture = figuresOf(res2, http.StatusAccepted)
	for _, p := range a.Pages {
		b.logf("  admin %-18s p50 %6.1f ms  p95 %6.1f ms  (%d, %d errors)", p.Name, p.P50ms, p.P95ms, p.Requests, p.Errors)
	}
	for _, p := range a.RiverUI {
		b.logf("  riverui %-16s p50 %6.1f ms  p95 %6.1f ms  (%d, %d errors)", p.Name, p.P50ms, p.P95ms, p.Requests, p.Errors)
	}
	return a, nil
}

// startRiverUI mounts riverui's handler in-process on an insert-only River
// client of the same database and serves it on loopback, as a user would
// mount it in their own server. Its URL is returned.
func (b *bench) startRiverUI(ctx context.Context, d *benchDB) (string, func(), error) {
	pool, err := db.Open(ctx, db.PoolConfig{URL: d.url, MaxConns: 8})
	if err != nil {
		return "", nil, err
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Logger: logger})
	if err != nil {
		pool.Close()
		return "", nil, err
	}
	h, err := riverui.NewHandler(&riverui.HandlerOpts{Endpoints: riverui.NewEndpoints(client, nil), Logger: logger, Prefix: "/riverui"})
	if err != nil {
		pool.Close()
		return "", nil, err
	}
	uiCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	if err := h.Start(uiCtx); err != nil {
		cancel()
		pool.Close()
		return "", nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/riverui/", h)
	srv := httptest.NewServer(mux)
	return srv.URL, func() { srv.Close(); cancel(); pool.Close() }, nil
}

// readLoop GETs each path in turn until ctx ends, one request at a time,
// and returns each path's latencies.
func readLoop(ctx context.Context, c *http.Client, base string, paths [][2]string) []pageLatency {
	lat := make([][]time.Duration, len(paths))
	errs := make([]int, len(paths))
	for i := 0; ctx.Err() == nil; i = (i + 1) % len(paths) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+paths[i][1], nil)
		if err != nil {
			break
		}
		t0 := time.Now()
		res, err := c.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
		if ctx.Err() != nil {
			break // cut off by the end of the window: not a figure
		}
		lat[i] = append(lat[i], time.Since(t0))
		if err != nil || res.StatusCode != http.StatusOK {
			errs[i]++
		}
	}
	out := make([]pageLatency, len(paths))
	for i, p := range paths {
		out[i] = pageLatency{Name: p[0], Path: p[1], Requests: len(lat[i]), Errors: errs[i]}
		if len(lat[i]) > 0 {
			slices.Sort(lat[i])
			out[i].P50ms, out[i].P95ms, out[i].Maxms = ms(quantile(lat[i], 0.50)), ms(quantile(lat[i], 0.95)), ms(lat[i][len(lat[i])-1])
		}
	}
	return out
}

// quantile of sorted latencies, nearest rank.
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(float64(len(sorted))*q+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// scaleRows are the curve's rows (each figure beside the empty queue's
// from the same run, judged against goal 6's slow-down) and the admin's
// (judged against goal 7's 300 ms), with riverui's beside them.
func scaleRows(sc scaleResult) []row {
	if len(sc.Points) == 0 {
		return nil
	}
	var rows []row
	base := sc.Points[0]
	for _, p := range sc.Points {
		what := fmt.Sprintf("%d deferred payments waiting", p.Waiting)
		if p.Waiting == 0 {
			rows = append(rows,
				row{Figure: "scale: capture 202/s, empty queue", Unit: "req/s", Spillway: f64(p.Capture.Rate), Note: "the curve's base"},
				row{Figure: "scale: drain, empty queue", Unit: "jobs/s", Spillway: f64(p.Drain.Rate),
					Note: fmt.Sprintf("the curve's base; %d jobs", p.Drain.Jobs)})
			continue
		}
		c := fixedRow("scale: capture 202/s, "+what, "req/s", p.Capture.Rate, "capture, empty queue", base.Capture.Rate, "≥ 0.90")
		c = judged(c, c.Ratio != nil && *c.Ratio >= 0.9)
		dr := fixedRow("scale: drain, "+what, "jobs/s", p.Drain.Rate, "drain, empty queue", base.Drain.Rate, "≥ 0.80")
		dr = judged(dr, dr.Ratio != nil && *dr.Ratio >= 0.8 && p.Drain.Empty)
		dr.Note = fmt.Sprintf("%d jobs", p.Drain.Jobs)
		if !p.Drain.Empty {
			dr.Note += ", not drained within the window"
		}
		rows = append(rows, c, dr)
	}
	if a := sc.Admin; a != nil {
		load := fmt.Sprintf("%.0f 202/s meanwhile, %d jobs, %d operations", a.Capture.Rate, a.Jobs, a.Operations)
		for _, p := range a.Pages {
			r := fixedRow("admin p95: "+p.Name, "ms", p.P95ms, "300 ms", 300, "≤ 1.00")
			r = judged(r, p.Requests > 0 && p.Errors == 0 && p.P95ms <= 300)
			r.Note = fmt.Sprintf("p50 %.1f ms, %d requests, %d errors; %s", p.P50ms, p.Requests, p.Errors, load)
			rows = append(rows, r)
		}
		for _, p := range a.RiverUI {
			rows = append(rows, row{Figure: "riverui p95: " + p.Name, Unit: "ms", Spillway: f64(p.P95ms),
				Note: fmt.Sprintf("peer, same database and window: p50 %.1f ms, %d requests, %d errors (%s)", p.P50ms, p.Requests, p.Errors, p.Path)})
		}
		if a.RiverUINote != "" {
			rows = append(rows, row{Figure: "riverui", Note: a.RiverUINote})
		}
	}
	return rows
}
