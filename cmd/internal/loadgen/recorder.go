package loadgen

import (
	"maps"
	"sync"
	"time"
)

// recorder collects outcomes from all workers. One mutex is enough: the
// critical section is a few array increments, tiny next to an HTTP round
// trip, and a single owner keeps interval snapshots consistent.
type recorder struct {
	mu       sync.Mutex
	requests int64
	errors   int64
	byStatus map[int]int64
	all      Histogram
	perCode  map[int]*Histogram

	ticking bool // whether to keep the interval fields below
	iv      interval
}

// interval is what happened since the last tick.
type interval struct {
	requests, errors int64
	byStatus         map[int]int64
	hist             Histogram
}

func newRecorder(ticking bool) *recorder {
	return &recorder{
		byStatus: map[int]int64{},
		perCode:  map[int]*Histogram{},
		ticking:  ticking,
		iv:       interval{byStatus: map[int]int64{}},
	}
}

func (r *recorder) response(status int, latency time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	r.byStatus[status]++
	r.all.Record(latency)
	h := r.perCode[status]
	if h == nil {
		h = &Histogram{}
		r.perCode[status] = h
	}
	h.Record(latency)
	if r.ticking {
		r.iv.requests++
		r.iv.byStatus[status]++
		r.iv.hist.Record(latency)
	}
}

func (r *recorder) transportError() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	r.errors++
	if r.ticking {
		r.iv.requests++
		r.iv.errors++
	}
}

// takeInterval returns the interval so far as a Tick and starts a new one.
func (r *recorder) takeInterval(at, length time.Duration) Tick {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := Tick{
		At:       at,
		Interval: length,
		Requests: r.iv.requests,
		Errors:   r.iv.errors,
		ByStatus: maps.Clone(r.iv.byStatus),
		P50:      r.iv.hist.Quantile(0.50),
		P99:      r.iv.hist.Quantile(0.99),
		Max:      r.iv.hist.max,
	}
	r.iv.requests, r.iv.errors = 0, 0
	clear(r.iv.byStatus)
	r.iv.hist.Reset()
	return t
}

func (r *recorder) result(elapsed time.Duration) Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := Result{
		Requests:        r.requests,
		Errors:          r.errors,
		Elapsed:         elapsed,
		ByStatus:        maps.Clone(r.byStatus),
		Latency:         r.all.Summary(),
		LatencyByStatus: make(map[int]Summary, len(r.perCode)),
	}
	for code, h := range r.perCode {
		res.LatencyByStatus[code] = h.Summary()
	}
	if s := elapsed.Seconds(); s > 0 {
		res.Throughput = float64(r.requests-r.errors) / s
	}
	return res
}
