package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/cmd/internal/loadgen"
	"github.com/spillway/spillway/db"
)

type captureResult struct {
	Load       loadFigures `json:"load"`
	Accepted   int64       `json:"accepted_keys"` // keys answered 202, cut-off reads included
	Checked    int64       `json:"checked_with_job"`
	Missing    int64       `json:"missing_job"`
	Operations int64       `json:"operations_in_db"`
	Jobs       int64       `json:"payment_jobs_in_db"`
	PeakRSSMiB float64     `json:"peak_rss_mib"` // VmHWM after the run
	MaxRSSMiB  float64     `json:"max_sampled_rss_mib"`
	Profile    string      `json:"cpu_profile,omitempty"`
	// ProfileNote says why there is no profile when one was asked for.
	ProfileNote string `json:"profile_note,omitempty"`
}

// capture: provider hard down and breaker forced open, so every request
// takes the durable path; closed loop at benchConns. Afterwards every key
// answered 202 must have its operation and its River job.
func (b *bench) capture(ctx context.Context, out *spillwayResults) error {
	d, err := b.freshDB(ctx, "capture")
	if err != nil {
		return err
	}
	defer b.dropDB(d)
	s, err := b.startServer(ctx, "capture", d, nil)
	if err != nil {
		return err
	}
	defer s.Stop(20 * time.Second)
	if err := s.chaos(ctx, `{"down": true}`); err != nil {
		return err
	}
	if err := d.setBreaker(ctx, app.BreakerForcedOpen); err != nil {
		return err
	}
	if err := s.waitBreaker(ctx, app.BreakerForcedOpen); err != nil {
		return err
	}

	r := &out.Capture
	keys := newAcceptedKeys(benchConns)
	defer keys.close()
	cfg := paymentLoad(s.api+"/api/v1/payments", benchConns, benchCaptureTime, "capture")
	cfg.Client = &http.Client{Transport: keys}

	rssCtx, stopRSS := context.WithCancel(ctx)
	var samplers sync.WaitGroup
	samplers.Go(func() { r.MaxRSSMiB = sampleRSS(rssCtx, s) })
	if b.profile {
		samplers.Go(func() { r.Profile, r.ProfileNote = b.fetchProfile(rssCtx, s, "capture") })
	}
	b.logf("  %d connections, %s", benchConns, benchCaptureTime)
	mark := markCPU(s.Cmd.Process.Pid)
	res, err := loadgen.Run(ctx, cfg)
	use := mark.since()
	stopRSS()
	samplers.Wait()
	if err != nil {
		return err
	}
	if err := s.Alive(); err != nil {
		return err
	}
	if _, hwm, err := s.memory(); err == nil {
		r.PeakRSSMiB = float64(hwm) / 1024
	}
	r.Load = figuresOf(res, http.StatusAccepted)
	r.Load.CPU = &use
	b.logf("  %.0f 202/s, p50 %.2f ms, p99 %.2f ms, peak RSS %.0f MiB", r.Load.Rate, r.Load.P50ms, r.Load.P99ms, r.PeakRSSMiB)
	if r.Load.Rate == 0 {
		return fmt.Errorf("no 202 answers: %v, %d transport errors\n%s", res.ByStatus, res.Errors, s.LogTail())
	}

	// Let in-flight requests commit, then count.
	s.Stop(20 * time.Second)
	return b.verifyCapture(ctx, d, keys.taken(), r)
}

// verifyCapture checks that every key answered 202 has its operation and
// its River job.
func (b *bench) verifyCapture(ctx context.Context, d *benchDB, accepted map[string]struct{}, r *captureResult) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	r.Accepted = int64(len(accepted))
	captured, err := db.CapturedPaymentKeys(ctx, d.pool)
	if err != nil {
		return err
	}
	for _, k := range captured {
		if _, ok := accepted[k]; ok {
			r.Checked++
		}
	}
	r.Missing = r.Accepted - r.Checked
	if r.Operations, err = d.count(ctx, db.CountOperations); err != nil {
		return err
	}
	if r.Jobs, err = d.count(ctx, func(ctx context.Context, q db.Querier) (int64, error) {
		return db.CountJobs(ctx, q, app.PaymentArgs{}.Kind())
	}); err != nil {
		return err
	}
	b.logf("  %d keys answered 202; %d have their job row, %d do not (%d operations, %d payment jobs in the database)",
		r.Accepted, r.Checked, r.Missing, r.Operations, r.Jobs)
	return nil
}

// sampleRSS polls the child's VmRSS until ctx ends and returns the
// largest, in MiB.
func sampleRSS(ctx context.Context, s *server) float64 {
	var peak int64
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		if rss, _, err := s.memory(); err == nil {
			peak = max(peak, rss)
		}
		select {
		case <-ctx.Done():
			return float64(peak) / 1024
		case <-t.C:
		}
	}
}

// fetchProfile asks the server for a 10 s CPU profile a few seconds into
// a load run (phase names the file).
func (b *bench) fetchProfile(ctx context.Context, s *server, phase string) (path, note string) {
	return b.profileAfter(ctx, s, phase, 3*time.Second, 10)
}

// profileAfter asks the server for a CPU profile of seconds, after wait,
// signed in as an operator (pprof sits behind admin auth), into
// <phase>.cpu.pprof.
func (b *bench) profileAfter(ctx context.Context, s *server, phase string, wait time.Duration, seconds int) (path, note string) {
	select {
	case <-ctx.Done():
		return "", "BENCH_PROFILE: the " + phase + " ended before profiling began"
	case <-time.After(wait):
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	signin, err := client.PostForm(s.api+"/admin/signin", url.Values{"email": {benchAdminEmail}, "password": {benchAdminPassword}})
	if err != nil {
		return "", fmt.Sprintf("BENCH_PROFILE: sign in: %v", err)
	}
	signin.Body.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.api+"/admin/debug/pprof/profile?seconds="+strconv.Itoa(seconds), nil)
	if err != nil {
		return "", err.Error()
	}
	res, err := client.Do(req)
	if err != nil {
		return "", fmt.Sprintf("BENCH_PROFILE: %v", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return "", fmt.Sprintf("BENCH_PROFILE: skipped, the server answers %d on /admin/debug/pprof/profile", res.StatusCode)
	}
	path = filepath.Join(b.dir, phase+".cpu.pprof")
	f, err := os.Create(path)
	if err != nil {
		return "", err.Error()
	}
	defer f.Close()
	if _, err := io.Copy(f, io.LimitReader(res.Body, 64<<20)); err != nil {
		return "", fmt.Sprintf("BENCH_PROFILE: %v", err)
	}
	return path, ""
}

// acceptedKeys is the load's transport; it notes the Idempotency-Key of
// every request answered 202, so each can be checked against the database.
type acceptedKeys struct {
	base *http.Transport
	mu   sync.Mutex
	keys map[string]struct{}
}

func newAcceptedKeys(conns int) *acceptedKeys {
	// As loadgen's own transport: one socket per worker, no proxy.
	return &acceptedKeys{keys: map[string]struct{}{}, base: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     90 * time.Second,
	}}
}

func (a *acceptedKeys) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := a.base.RoundTrip(req)
	if err == nil && res.StatusCode == http.StatusAccepted {
		a.mu.Lock()
		a.keys[req.Header.Get("Idempotency-Key")] = struct{}{}
		a.mu.Unlock()
	}
	return res, err
}

func (a *acceptedKeys) taken() map[string]struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.keys
}

func (a *acceptedKeys) close() { a.base.CloseIdleConnections() }
