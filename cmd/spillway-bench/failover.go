package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/cmd/internal/loadgen"
	"github.com/spillway/spillway/db"
)

type failoverResult struct {
	Rate float64 `json:"rate_per_s"` // steady offered load
	// Seconds from the provider going down until the breaker opened (its
	// breaker_transitions row), and until every later interval's p99 stayed
	// under 20 ms.
	OpenAfter float64 `json:"breaker_open_after_s"`
	FastAfter float64 `json:"p99_under_20ms_after_s"`
	FastNote  string  `json:"p99_note,omitempty"`
	// The p99 of the requests started from failoverLate after the outage
	// began until the provider's return, and how many there were: by then
	// the breaker must be open and every request captured without a call.
	LateP99ms    float64       `json:"p99_started_1s_after_outage_ms"`
	LateRequests int           `json:"requests_started_1s_after_outage"`
	LateByStatus map[int]int64 `json:"by_status_started_1s_after_outage"`
	// Seconds from the provider's return until the breaker closed, and
	// until the first 201.
	ClosedAfter float64        `json:"breaker_closed_after_s"`
	SyncAfter   float64        `json:"sync_again_after_s"`
	OpenWait    string         `json:"open_wait"`
	ByStatus    map[int]int64  `json:"by_status"`
	Errors      int64          `json:"transport_errors"`
	Ticks       []failoverTick `json:"ticks"`
}

type failoverTick struct {
	At       float64       `json:"at_s"` // end of the interval, since the load began
	ByStatus map[int]int64 `json:"by_status"`
	Errors   int64         `json:"errors,omitempty"`
	P99ms    float64       `json:"p99_ms"`
}

const (
	failoverEvery    = 100 * time.Millisecond
	failoverDownAt   = 3 * time.Second // steady load before the outage
	failoverFastP99  = 20 * time.Millisecond
	failoverDownHold = 2 * time.Second // outage kept this long after the breaker opened
	// The trip-time goals (issue 13): the breaker open within
	// failoverOpenGoal of a hard outage, and the requests started
	// failoverLate into it answered with a p99 within failoverLateGoal.
	failoverOpenGoal = 500 * time.Millisecond
	failoverLate     = time.Second
	failoverLateGoal = 10 * time.Millisecond
)

// answer is one finished exchange of the load, by when it was started.
type answer struct {
	start   time.Time
	latency time.Duration
	status  int
}

// failover: steady open-loop load; the provider goes hard down, then comes
// back once the breaker has opened.
func (b *bench) failover(ctx context.Context, out *spillwayResults) error {
	d, err := b.freshDB(ctx, "failover")
	if err != nil {
		return err
	}
	defer b.dropDB(d)
	s, err := b.startServer(ctx, "failover", d, nil)
	if err != nil {
		return err
	}
	defer s.Stop(20 * time.Second)
	r := &out.Failover
	r.Rate = benchFailoverRate
	br, err := db.GetBreaker(ctx, d.pool, paymentBreaker)
	if err != nil {
		return err
	}
	r.OpenWait = br.Policy.OpenWait.String()

	cfg := paymentLoad(s.api+"/api/v1/payments", benchConns, benchFailoverTime, "failover")
	cfg.Rate = benchFailoverRate
	var (
		mu          sync.Mutex
		answers     []answer
		ticks       []loadgen.Tick
		down, up    time.Time
		chaosErr    error
		chaosDone   = make(chan struct{})
		loadStarted = time.Now()
	)
	cfg.OnAnswer = func(start time.Time, latency time.Duration, status int) {
		mu.Lock()
		answers = append(answers, answer{start, latency, status})
		mu.Unlock()
	}
	loadCtx, cancelLoad := context.WithCancel(ctx)
	defer cancelLoad()
	go func() {
		defer close(chaosDone)
		var err error
		down, up, err = b.failoverChaos(loadCtx, s, d)
		if err != nil && loadCtx.Err() == nil {
			mu.Lock()
			chaosErr = err
			mu.Unlock()
			cancelLoad()
		}
	}()
	b.logf("  %d req/s for %s; provider down at %s, back %s after the breaker opens", benchFailoverRate, benchFailoverTime, failoverDownAt, failoverDownHold)
	res, err := loadgen.RunWithTicks(loadCtx, cfg, failoverEvery, func(t loadgen.Tick) {
		mu.Lock()
		ticks = append(ticks, t)
		mu.Unlock()
	})
	cancelLoad()
	<-chaosDone
	if chaosErr != nil {
		return chaosErr
	}
	if err != nil {
		return err
	}
	if err := s.Alive(); err != nil {
		return err
	}
	r.ByStatus, r.Errors = res.ByStatus, res.Errors

	at := func(t time.Time) time.Duration { return t.Sub(loadStarted) }
	opened, closed, err := breakerTimes(ctx, d, down, up)
	if err != nil {
		return err
	}
	r.OpenAfter = opened.Sub(down).Seconds()
	if !closed.IsZero() {
		r.ClosedAfter = closed.Sub(up).Seconds()
	}
	// p99 under 20 ms for good: the end of the last slow interval between
	// the outage and the provider's return.
	var lastSlow time.Duration
	for _, t := range ticks {
		if t.At > at(down) && t.At-t.Interval < at(up) && t.P99 >= failoverFastP99 {
			lastSlow = t.At
		}
	}
	if lastSlow > 0 {
		r.FastAfter = (lastSlow - at(down)).Seconds()
	} else {
		r.FastNote = "no interval's p99 reached 20 ms during the outage: a hard-down provider fails fast"
	}
	r.LateP99ms, r.LateRequests, r.LateByStatus = lateP99(answers, down.Add(failoverLate), up)
	r.SyncAfter = -1
	for _, t := range ticks {
		if t.At-t.Interval >= at(up) && t.ByStatus[http.StatusCreated] > 0 {
			r.SyncAfter = (t.At - at(up)).Seconds()
			break
		}
	}
	for _, t := range ticks {
		r.Ticks = append(r.Ticks, failoverTick{At: t.At.Seconds(), ByStatus: t.ByStatus, Errors: t.Errors, P99ms: ms(t.P99)})
	}
	b.logf("  breaker open %.3f s after the outage (goal ≤ %s); p99 of the %d requests started %s into it %.2f ms (goal ≤ %s)",
		r.OpenAfter, failoverOpenGoal, r.LateRequests, failoverLate, r.LateP99ms, failoverLateGoal)
	b.logf("  p99 < 20 ms after %.2f s; breaker closed %.2f s and first 201 %.2f s after recovery",
		r.FastAfter, r.ClosedAfter, r.SyncAfter)
	return nil
}

// failoverChaos takes the provider down at failoverDownAt, waits for the
// breaker to open, holds the outage a little longer and brings it back.
func (b *bench) failoverChaos(ctx context.Context, s *server, d *benchDB) (down, up time.Time, err error) {
	select {
	case <-ctx.Done():
		return down, up, ctx.Err()
	case <-time.After(failoverDownAt):
	}
	down = time.Now()
	if err := s.chaos(ctx, `{"down": true}`); err != nil {
		return down, up, err
	}
	limit := time.Now().Add(10 * time.Second)
	for {
		n, err := d.count(ctx, func(ctx context.Context, q db.Querier) (int64, error) {
			return db.CountBreakerTransitions(ctx, q, paymentBreaker, app.BreakerOpen)
		})
		if err != nil {
			return down, up, err
		}
		if n > 0 {
			break
		}
		if time.Now().After(limit) {
			return down, up, errors.New("the breaker did not open within 10 s of the provider going down")
		}
		select {
		case <-ctx.Done():
			return down, up, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	select {
	case <-ctx.Done():
		return down, up, ctx.Err()
	case <-time.After(failoverDownHold):
	}
	up = time.Now()
	return down, up, s.chaos(ctx, `{"down": false}`)
}

// breakerTimes reads when the breaker first opened after down, and when it
// first closed after up (zero if it had not by the end).
func breakerTimes(ctx context.Context, d *benchDB, down, up time.Time) (opened, closed time.Time, err error) {
	o, c, err := db.FirstBreakerTransitions(ctx, d.pool, paymentBreaker, down, up)
	if err != nil {
		return opened, closed, err
	}
	if o == nil {
		return opened, closed, fmt.Errorf("no open transition after %s", down.Format(time.RFC3339Nano))
	}
	opened = *o
	if c != nil {
		closed = *c
	}
	return opened, closed, nil
}

// lateP99 is the exact (nearest-rank) p99 latency of the answers started in [from, to),
// transport errors counted as answers at their latency, with how many
// there were and their statuses (0: a transport error).
func lateP99(answers []answer, from, to time.Time) (p99ms float64, n int, byStatus map[int]int64) {
	byStatus = map[int]int64{}
	var lat []time.Duration
	for _, a := range answers {
		if !a.start.Before(from) && a.start.Before(to) {
			lat = append(lat, a.latency)
			byStatus[a.status]++
		}
	}
	if len(lat) == 0 {
		return 0, 0, byStatus // judged a miss: nothing was measured
	}
	slices.Sort(lat)
	i := int(math.Ceil(0.99*float64(len(lat)))) - 1
	return ms(lat[max(i, 0)]), len(lat), byStatus
}
