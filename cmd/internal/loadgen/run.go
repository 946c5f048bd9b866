package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// maxDrain bounds how much of a response body is read. Reading the body
	// to EOF is what lets the transport reuse the connection; a body larger
	// than this is abandoned and its connection closed, which is fine for an
	// API whose answers are a few hundred bytes.
	maxDrain = 1 << 20
	// errorPause is how long a closed-loop worker waits after a transport
	// error. A refused connection fails in microseconds; without a pause,
	// every worker would spin on a dead server and starve it of the CPU it
	// needs to come back on this same machine.
	errorPause = 10 * time.Millisecond
	// minTick bounds how many ticks a run can deliver.
	minTick = time.Millisecond
)

// Run sends load as cfg describes until cfg.Duration passes, cfg.Requests
// have been sent or ctx ends. If ctx ends first, Run returns what it
// measured so far together with an error wrapping ctx.Err(). No goroutine
// of the run outlives it.
func Run(ctx context.Context, cfg Config) (Result, error) {
	return run(ctx, cfg, 0, nil)
}

// RunWithTicks is Run that also calls tick once per interval of length
// every, from a single goroutine, with what happened in that interval, and
// once more at the end for the last partial interval if anything happened
// in it, so the ticks add up to the Result. tick is never called after
// RunWithTicks returns; a slow tick delays the next ones but not the load.
func RunWithTicks(ctx context.Context, cfg Config, every time.Duration, tick func(Tick)) (Result, error) {
	if every < minTick || tick == nil {
		return Result{}, fmt.Errorf("ticks: want an interval of at least %s and a tick function", minTick)
	}
	return run(ctx, cfg, every, tick)
}

// runner is the state shared by the workers of one run.
type runner struct {
	cfg    Config
	client *http.Client
	rec    *recorder
	start  time.Time
	seq    atomic.Int64 // next request number
}

func run(ctx context.Context, cfg Config, every time.Duration, tick func(Tick)) (Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Result{}, fmt.Errorf("loadgen: %w", err)
	}
	r := &runner{cfg: cfg, client: cfg.Client, rec: newRecorder(tick != nil)}
	if r.client == nil {
		tr := newTransport(cfg.Connections)
		// Closing idle connections ends the transport's per-connection
		// goroutines, which would otherwise outlive the run.
		defer tr.CloseIdleConnections()
		r.client = &http.Client{
			Transport: tr,
			// Measure the server's own answer, not where it points.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}

	r.start = time.Now()
	runCtx, cancel := context.WithDeadline(ctx, r.start.Add(cfg.Duration))
	defer cancel()

	var workers sync.WaitGroup
	for range cfg.Connections {
		workers.Go(func() { r.work(runCtx) })
	}

	last := time.Duration(0)
	if tick != nil {
		stop := make(chan struct{})
		var ticker sync.WaitGroup
		ticker.Go(func() { last = r.tickLoop(stop, every, tick) })
		workers.Wait()
		close(stop)
		ticker.Wait()
	} else {
		workers.Wait()
	}
	elapsed := time.Since(r.start)
	if tick != nil {
		if t := r.rec.takeInterval(elapsed, elapsed-last); t.Requests > 0 {
			tick(t)
		}
	}

	res := r.rec.result(elapsed)
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("loadgen: stopped early: %w", err)
	}
	return res, nil
}

// tickLoop delivers ticks until stop closes and returns when the last
// delivered interval ended, since the start.
func (r *runner) tickLoop(stop <-chan struct{}, every time.Duration, tick func(Tick)) time.Duration {
	t := time.NewTicker(every)
	defer t.Stop()
	var last time.Duration
	for {
		select {
		case <-stop:
			return last
		case now := <-t.C:
			at := now.Sub(r.start)
			tick(r.rec.takeInterval(at, at-last))
			last = at
		}
	}
}

// work is one worker's loop. It ends when ctx does (at the latest after
// cfg.Duration) or when the request cap is reached.
func (r *runner) work(ctx context.Context) {
	for ctx.Err() == nil {
		i := r.seq.Add(1) - 1
		if r.cfg.Requests > 0 && i >= int64(r.cfg.Requests) {
			return
		}
		start := time.Now()
		if r.cfg.Rate > 0 {
			due := r.start.Add(time.Duration(float64(i) / r.cfg.Rate * float64(time.Second)))
			if !SleepUntil(ctx, due) {
				return
			}
			start = due
		}
		status, err := r.do(ctx, i)
		latency := time.Since(start)
		switch {
		case err != nil && ctx.Err() != nil:
			return // cut off by the end of the run: neither an answer nor a failure
		case err != nil:
			r.rec.transportError()
			if r.cfg.OnAnswer != nil {
				r.cfg.OnAnswer(start, latency, 0)
			}
			if r.cfg.Rate == 0 && !SleepUntil(ctx, time.Now().Add(errorPause)) {
				return
			}
		default:
			r.rec.response(status, latency)
			if r.cfg.OnAnswer != nil {
				r.cfg.OnAnswer(start, latency, status)
			}
		}
	}
}

// do sends request i and reads its answer to the end.
func (r *runner) do(ctx context.Context, i int64) (int, error) {
	var body []byte
	var header http.Header
	if r.cfg.Body != nil {
		body, header = r.cfg.Body(i)
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, r.cfg.Method, r.cfg.URL, rd)
	if err != nil {
		return 0, fmt.Errorf("build request %d: %w", i, err)
	}
	if header != nil {
		// Cloned because Body may hand every request the same header.
		req.Header = header.Clone()
	}
	res, err := r.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("request %d: %w", i, err)
	}
	defer res.Body.Close()
	if _, err := io.Copy(io.Discard, io.LimitReader(res.Body, maxDrain)); err != nil {
		return 0, fmt.Errorf("read response %d: %w", i, err)
	}
	return res.StatusCode, nil
}

// SleepUntil waits until t or until ctx ends, reporting whether it was t.
func SleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// newTransport keeps one idle connection per worker so that a closed loop
// reuses its sockets instead of churning through ephemeral ports. It also
// caps connections at one per worker: without the cap, a worker whose dial
// is overtaken by a connection freed by another worker leaves an extra
// socket behind, and the server sees more connections than asked for.
func newTransport(conns int) *http.Transport {
	return &http.Transport{
		// No Proxy: the target is loopback, and an HTTP_PROXY in the
		// environment must not reroute (or be charged for) the load.
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          conns,
		MaxIdleConnsPerHost:   conns,
		MaxConnsPerHost:       conns,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}
