package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spillway/spillway/cmd/internal/loadgen"
)

// report is everything one bench run measured: the table rows and the raw
// figures behind them.
type report struct {
	StartedAt     time.Time        `json:"started_at"`
	Seconds       float64          `json:"seconds"`
	Machine       machineInfo      `json:"machine"`
	Rows          []row            `json:"rows"`
	CeilingsStart *ceilingResults  `json:"ceilings_start"`
	CeilingsEnd   *ceilingResults  `json:"ceilings_end"`
	Spillway      *spillwayResults `json:"spillway"`
	// DBOS is the peer measured in the same run: DBOS Transact for Go
	// doing the same job (dbos.go).
	DBOS  *dbosResults `json:"dbos"`
	Notes []string     `json:"notes,omitempty"`
}

type machineInfo struct {
	CPUs               int    `json:"cpus"`
	GOMAXPROCS         int    `json:"gomaxprocs"`
	Go                 string `json:"go"`
	OS                 string `json:"os"`
	Postgres           string `json:"postgres"`
	PostgresDurability string `json:"postgres_durability"`
}

// row is one line of the table. Ratio is Spillway ÷ ceiling, the ceiling
// being the mean of the start and end measurements when there are two.
type row struct {
	Figure       string   `json:"figure"`
	Unit         string   `json:"unit"`
	Spillway     *float64 `json:"spillway"`
	Ceiling      *float64 `json:"ceiling,omitempty"`
	CeilingStart *float64 `json:"ceiling_start,omitempty"`
	CeilingEnd   *float64 `json:"ceiling_end,omitempty"`
	CeilingName  string   `json:"ceiling_name,omitempty"`
	Ratio        *float64 `json:"ratio,omitempty"`
	Goal         string   `json:"goal,omitempty"`
	// Verdict is "met" or "MISS" for a row judged against its goal.
	Verdict string `json:"verdict,omitempty"`
	Note    string `json:"note,omitempty"`
	// Met is set on rows with a pass/fail goal that the bench judges
	// (the peer rows): whether the goal was met.
	Met *bool `json:"met,omitempty"`
}

type ceilingResults struct {
	PGBench      pgbenchResult `json:"pgbench"`
	CaptureFloor loadFigures   `json:"capture_floor"`
	SyncFloor    loadFigures   `json:"sync_floor"`
	River        drainFigures  `json:"river_noop"`
	// RiverBest is River's no-op at the worker count that ran it fastest.
	RiverBest drainFigures `json:"river_noop_best"`
}

type spillwayResults struct {
	Capture captureResult `json:"capture"`
	// Sync is measured with the floor's connections (syncAsFloor);
	// SyncDefaults with the shipped DB_MAX_CONNS and SYNC_CONCURRENCY.
	Sync         loadFigures `json:"sync"`
	SyncDefaults loadFigures `json:"sync_defaults"`
	// SyncProfile is the server's CPU profile during sync (BENCH_PROFILE=1).
	SyncProfile     string         `json:"sync_profile,omitempty"`
	SyncProfileNote string         `json:"sync_profile_note,omitempty"`
	Budget          budgetResult   `json:"budget"`
	Failover        failoverResult `json:"failover"`
	Drain           drainResult    `json:"drain"`
	Orders          ordersResult   `json:"orders"`
	// Scale is the curve with a backlog waiting, and the admin at scale (scale.go).
	Scale scaleResult `json:"scale"`
}

// loadFigures digests a loadgen result around the status that counts
// (202 for capture, 201 for sync).
type loadFigures struct {
	Status   int           `json:"status"`
	Seconds  float64       `json:"seconds"`
	Requests int64         `json:"requests"`
	Errors   int64         `json:"transport_errors"`
	ByStatus map[int]int64 `json:"by_status"`
	Rate     float64       `json:"rate_per_s"` // answers with Status per second
	P50ms    float64       `json:"p50_ms"`
	P99ms    float64       `json:"p99_ms"`
	Maxms    float64       `json:"max_ms"`
	// CPU is where the CPU went during the run, when measured.
	CPU *cpuUse `json:"cpu,omitempty"`
}

func figuresOf(res loadgen.Result, status int) loadFigures {
	f := loadFigures{Status: status, Seconds: res.Elapsed.Seconds(), Requests: res.Requests, Errors: res.Errors,
		ByStatus: res.ByStatus}
	if f.Seconds > 0 {
		f.Rate = float64(res.ByStatus[status]) / f.Seconds
	}
	s := res.LatencyByStatus[status]
	f.P50ms, f.P99ms, f.Maxms = ms(s.P50), ms(s.P99), ms(s.Max)
	return f
}

// drainFigures is a queue worked down: how many jobs, how long, how fast.
type drainFigures struct {
	Jobs    int64   `json:"jobs"`
	Seconds float64 `json:"seconds"`
	Rate    float64 `json:"jobs_per_s"`
	Workers int     `json:"workers"`
	// Settings are a River no-op run's worker count and fetch settings.
	Settings string `json:"settings,omitempty"`
	Empty    bool   `json:"emptied"` // false: the observation window ended first
	// CPU is where the CPU went during the drain, when measured.
	CPU *cpuUse `json:"cpu,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// f64 boxes a figure; nil (printed n/a) when it is not a number, which JSON
// could not carry.
func f64(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

func newReport() *report { return &report{StartedAt: time.Now().UTC()} }

func (r *report) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// ceilingRow fills a row whose ceiling was measured twice.
func ceilingRow(figure, unit string, spillway float64, name string, start, end float64, goal string) row {
	c := (start + end) / 2
	r := row{Figure: figure, Unit: unit, Spillway: f64(spillway), Ceiling: f64(c),
		CeilingStart: f64(start), CeilingEnd: f64(end), CeilingName: name, Goal: goal}
	if c > 0 {
		r.Ratio = f64(spillway / c)
	}
	return r
}

// fixedRow fills a row whose "ceiling" is a fixed target, not a measurement.
func fixedRow(figure, unit string, spillway float64, name string, target float64, goal string) row {
	r := row{Figure: figure, Unit: unit, Spillway: f64(spillway), Ceiling: f64(target), CeilingName: name, Goal: goal}
	if target > 0 {
		r.Ratio = f64(spillway / target)
	}
	return r
}

// atLeast and atMost judge r's ratio against a bound, which becomes its
// goal.
func atLeast(r row, bound float64) row {
	r.Goal = fmt.Sprintf("≥ %.2f", bound)
	return judged(r, r.Ratio != nil && *r.Ratio >= bound)
}

func atMost(r row, bound float64) row {
	r.Goal = fmt.Sprintf("≤ %.2f", bound)
	return judged(r, r.Ratio != nil && *r.Ratio <= bound)
}

// judged marks r as meeting its goal or missing it (a figure that is not a
// number misses).
func judged(r row, met bool) row {
	r.Verdict = "MISS"
	if met && r.Spillway != nil {
		r.Verdict = "met"
	}
	return r
}

// failoverRows are the trip-time figures, judged against their goals.
func (r *report) failoverRows(fo failoverResult) {
	r.Rows = append(r.Rows,
		judged(fixedRow("failover: breaker open after outage", "s", fo.OpenAfter, failoverOpenGoal.String(),
			failoverOpenGoal.Seconds(), "≤ 1.00"), fo.OpenAfter <= failoverOpenGoal.Seconds()),
		judged(fixedRow("failover: p99 of requests started 1 s into outage", "ms", fo.LateP99ms, failoverLateGoal.String(),
			ms(failoverLateGoal), "≤ 1.00"), fo.LateRequests > 0 && fo.LateP99ms <= ms(failoverLateGoal)))
	r.Rows[len(r.Rows)-1].Note = fmt.Sprintf("%d requests; statuses %v", fo.LateRequests, fo.LateByStatus)
	r.Rows = append(r.Rows, row{Figure: "failover: p99 < 20 ms after outage", Unit: "s", Spillway: f64(fo.FastAfter),
		Note: fo.FastNote})
	r.Rows = append(r.Rows, row{Figure: "failover: sync again after recovery", Unit: "s", Spillway: f64(fo.SyncAfter),
		Note: fmt.Sprintf("breaker closed after %.2f s; its open wait is %s", fo.ClosedAfter, fo.OpenWait)})
}

// build turns the measurements into the table's rows. A partial run (-only)
// has no ceilings, so it reports only the figures with fixed goals of the
// scenarios it ran.
func (r *report) build(b *bench, only map[string]bool) {
	s, cs, ce := r.Spillway, r.CeilingsStart, r.CeilingsEnd
	if cs == nil || ce == nil {
		if only["failover"] {
			r.failoverRows(s.Failover)
		}
		if only["orders"] && only["sync"] && only["capture"] {
			r.Rows = append(r.Rows, orderRows(s)...)
		}
		r.Rows = append(r.Rows, scaleRows(s.Scale)...)
		r.Rows = append(r.Rows, capacityRows(s)...)
		if only["drain"] {
			r.Rows = append(r.Rows, s.Drain.riverRows()...)
		}
		r.note("partial run (-only): no ceilings were measured, so no ratios to them")
		r.Notes = append(r.Notes, s.notes()...)
		return
	}
	c := s.Capture
	r.Rows = append(r.Rows,
		atLeast(ceilingRow("capture 202/s", "req/s", c.Load.Rate, "minimal Go+pgx+River server, 2-row tx",
			cs.CaptureFloor.Rate, ce.CaptureFloor.Rate, ""), 0.9),
		ceilingRow("capture 202/s vs database", "req/s", c.Load.Rate, "pgbench, same 2 inserts, "+fmt.Sprint(benchConns)+" clients",
			cs.PGBench.TPS, ce.PGBench.TPS, ""),
		ceilingRow("capture p50", "ms", c.Load.P50ms, "minimal server p50", cs.CaptureFloor.P50ms, ce.CaptureFloor.P50ms, ""),
		ceilingRow("capture p99", "ms", c.Load.P99ms, "minimal server p99", cs.CaptureFloor.P99ms, ce.CaptureFloor.P99ms, ""),
	)
	lost := row{Figure: "capture: 202s without a job row", Unit: "count", Spillway: f64(float64(c.Missing)), Goal: "= 0",
		Note: fmt.Sprintf("%d of %d acknowledged keys checked", c.Checked, c.Accepted)}
	r.Rows = append(r.Rows, lost)
	r.Rows = append(r.Rows,
		atLeast(ceilingRow("sync 201/s", "req/s", s.Sync.Rate, "minimal server, 1-row tx + provider call",
			cs.SyncFloor.Rate, ce.SyncFloor.Rate, ""), 0.8),
		ceilingRow("sync 201/s at the default pool", "req/s", s.SyncDefaults.Rate,
			"minimal server; Spillway at DB_MAX_CONNS 30, SYNC_CONCURRENCY 16", cs.SyncFloor.Rate, ce.SyncFloor.Rate, ""),
		ceilingRow("sync p50", "ms", s.Sync.P50ms, "sync floor p50", cs.SyncFloor.P50ms, ce.SyncFloor.P50ms, ""),
		ceilingRow("sync p99", "ms", s.Sync.P99ms, "sync floor p99", cs.SyncFloor.P99ms, ce.SyncFloor.P99ms, ""),
		atMost(fixedRow("budget p99, 64 calls to a hung provider", "ms", s.Budget.Load.P99ms, "PAYMENT_DEADLINE + 50 ms",
			ms(b.deadline)+50, ""), 1),
		atMost(fixedRow("budget p99, first wave", "ms", s.Budget.FirstWaveP99ms, "PAYMENT_DEADLINE + 50 ms",
			ms(b.deadline)+50, ""), 1),
		atMost(fixedRow("budget worst", "ms", s.Budget.Load.Maxms, "PAYMENT_DEADLINE + CAPTURE_TIMEOUT",
			ms(b.deadline+b.captureTimeout), ""), 1),
	)
	r.failoverRows(s.Failover)
	d := s.Drain
	r.Rows = append(r.Rows,
		ceilingRow("drain, no limit", "jobs/s", d.Unlimited.Rate, fmt.Sprintf("River no-op, %d workers", cs.River.Workers),
			cs.River.Rate, ce.River.Rate, "≥ 0.50"),
		ceilingRow("drain vs River at its best", "jobs/s", d.Unlimited.Rate,
			fmt.Sprintf("River no-op at its best (%s / %s)", cs.RiverBest.Settings, ce.RiverBest.Settings),
			cs.RiverBest.Rate, ce.RiverBest.Rate, "≥ 0.50"),
		fixedRow("drain, DRAIN_RATE=500", "jobs/s", d.Limited.Rate, "DRAIN_RATE", benchDrainRate, "≤ 1.00"),
	)
	if d.LimitedNote != "" {
		r.Rows[len(r.Rows)-1].Note = d.LimitedNote
	}
	r.Rows = append(r.Rows, atMost(fixedRow("peak RSS during capture", "MiB", c.PeakRSSMiB, fmt.Sprint(benchRSSGoalMiB, " MiB"), benchRSSGoalMiB, ""), 1))
	r.Rows = append(r.Rows, orderRows(s)...)
	r.Rows = append(r.Rows, scaleRows(s.Scale)...)
	r.Rows = append(r.Rows, capacityRows(s)...)

	if r.DBOS != nil {
		r.Rows = append(r.Rows, peerRows(s, r.DBOS)...)
		if r.DBOS.Note != "" {
			r.note("dbos: %s", r.DBOS.Note)
		}
	}

	if c.Profile != "" {
		r.note("CPU profile of the server during capture: %s", c.Profile)
	}
	if s.SyncProfile != "" {
		r.note("CPU profile of the server during sync: %s", s.SyncProfile)
	}
	r.Notes = append(r.Notes, s.notes()...)
}

func (s *spillwayResults) notes() []string {
	var n []string
	if s.Capture.ProfileNote != "" {
		n = append(n, s.Capture.ProfileNote)
	}
	if s.SyncProfileNote != "" {
		n = append(n, s.SyncProfileNote)
	}
	if x := others(s.Capture.Load); x != "" {
		n = append(n, "capture answers other than 202: "+x)
	}
	if x := others(s.SyncDefaults); x != "" {
		n = append(n, "sync at the default pool: answers other than 201: "+x)
	}
	if x := others(s.Sync); x != "" {
		n = append(n, "sync answers other than 201: "+x)
	}
	if s.Budget.Note != "" {
		n = append(n, s.Budget.Note)
	}
	if s.Drain.Profile != "" {
		n = append(n, "CPU profile of the server during the drain: "+s.Drain.Profile)
	}
	if s.Drain.ProfileNote != "" {
		n = append(n, s.Drain.ProfileNote)
	}
	if s.Drain.Rejected > 0 {
		n = append(n, fmt.Sprintf("drain: %d backlog requests were not captured (503: see .data/bench/drain*.log)", s.Drain.Rejected))
	}
	return n
}

// others lists the statuses besides the one that counts, and errors.
func others(f loadFigures) string {
	var parts []string
	for code, n := range f.ByStatus {
		if code != f.Status {
			parts = append(parts, fmt.Sprintf("%d×%d", n, code))
		}
	}
	if f.Errors > 0 {
		parts = append(parts, fmt.Sprintf("%d transport errors", f.Errors))
	}
	return strings.Join(parts, ", ")
}

// Format prints the table.
func (r *report) Format(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "\nspillway bench, %s: %d CPUs, %s, Postgres %s (%s), %.0f s\n\n",
		r.StartedAt.Format(time.RFC3339), m.CPUs, m.Go, m.Postgres, m.PostgresDurability, r.Seconds)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tspillway\tceiling (start / end)\tratio\tgoal\tceiling is")
	for _, x := range r.Rows {
		ceiling := "-"
		switch {
		case x.CeilingStart != nil:
			ceiling = fmt.Sprintf("%s / %s", num(*x.CeilingStart), num(*x.CeilingEnd))
		case x.Ceiling != nil:
			ceiling = num(*x.Ceiling)
		}
		ratio := "-"
		if x.Ratio != nil {
			ratio = fmt.Sprintf("%.2f", *x.Ratio)
		}
		what := x.CeilingName
		if x.Note != "" {
			what = strings.TrimPrefix(what+"; "+x.Note, "; ")
		}
		goal := strings.TrimSpace(x.Goal + " " + x.Verdict)
		fmt.Fprintf(tw, "%s (%s)\t%s\t%s\t%s\t%s\t%s\n", x.Figure, x.Unit, num(deref(x.Spillway)), ceiling, ratio, goal, what)
	}
	tw.Flush()
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

func deref(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

// num prints a figure with sensible precision.
func num(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v):
		return "n/a"
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// WriteJSON writes the report to path, creating its directory.
func (r *report) WriteJSON(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// peerRows sets Spillway's three rates beside DBOS's from the same run:
// the ceiling column holds DBOS's figure, the ratio is Spillway ÷ DBOS, and
// the goal (Spillway ahead) is judged per figure.
func peerRows(s *spillwayResults, d *dbosResults) []row {
	cfg := fmt.Sprintf("DBOS %s: queue worker concurrency %d, polling %s, pool %d",
		d.Config.Version, d.Config.WorkerConcurrency, d.Config.PollingInterval, d.Config.PoolMaxConns)
	return []row{
		peerRow("vs DBOS: sync", "req/s", s.Sync.Rate, d.Sync.Rate, "DBOS workflow run and awaited in the handler; "+cfg),
		peerRow("vs DBOS: capture, provider down", "req/s", s.Capture.Load.Rate, d.Capture.Rate, "DBOS workflow enqueued, 202 at once"),
		peerRow("vs DBOS: drain", "jobs/s", s.Drain.Unlimited.Rate, d.Drain.Rate, "DBOS enqueued workflows completing, provider back"),
	}
}

func peerRow(figure, unit string, spillway, peer float64, name string) row {
	r := row{Figure: figure, Unit: unit, Spillway: f64(spillway), Ceiling: f64(peer), CeilingName: name,
		Goal: "> 1.00 (Spillway ahead)"}
	if peer > 0 {
		r.Ratio = f64(spillway / peer)
	}
	met := r.Ratio != nil && *r.Ratio > 1
	r.Met = &met
	r.Note = "goal missed"
	if met {
		r.Note = "goal met"
	}
	return judged(r, met)
}

// orderRows set the order engine's rates against the payment's from the
// same run: a sync order makes three calls where a payment makes one, and
// an order captured at its first step writes what a captured payment does.
func orderRows(s *spillwayResults) []row {
	// The orders' server runs at the default pool, as does SyncDefaults.
	sync := fixedRow("order sync 201/s vs payment sync", "req/s", s.Orders.Sync.Rate, "payment sync 201/s, default pool", s.SyncDefaults.Rate, "≥ 0.50")
	capture := fixedRow("order capture 202/s (inventory down) vs payment capture", "req/s", s.Orders.Capture.Rate,
		"payment capture 202/s", s.Capture.Load.Rate, "≥ 0.80")
	return []row{
		judged(sync, sync.Ratio != nil && *sync.Ratio >= 0.5),
		judged(capture, capture.Ratio != nil && *capture.Ratio >= 0.8),
	}
}
