package admin

import (
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/riverqueue/river/rivertype"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
)

// modeView is one dependency's state as the overview says it.
type modeView struct {
	Name        string
	Mode        string // SYNC, ASYNC, PROBING, FORCED OPEN, FORCED CLOSED
	Class       string
	Detail      string
	State       app.BreakerState
	Counts      app.Counts
	Window      time.Duration
	P95         time.Duration
	P95Calls    int
	P95Over     time.Duration
	P95Note     string // set when the latency could not be read in time
	FailureRate float64
	SlowRate    float64
	Policy      app.BreakerPolicy
	// Runbook is the runbook section for the mode when it is abnormal;
	// "" for SYNC.
	Runbook string
	// Since is when the breaker entered its state: how long the mode has
	// held.
	Since time.Time
	// Backlog and Bulkhead are nil when not configured: not shown.
	Backlog  *backlogView
	Bulkhead *bulkheadView
	// Flow is the dependency's drain and time to drain; nil when its
	// queue's flow was not read (FlowNote says why).
	Flow *flowView
	// Unresolved and Orphans are what awaits an operator, as the page's
	// alerts count them: unknown outcomes of every kind (an order's may
	// be any of its steps'), and orphan charges on the payment card only,
	// for they are the payment provider's.
	Unresolved int
	Orphans    int
	ShowOrphan bool
}

// backlogView is a dependency's captured work against its bound, as the
// admission check last read it.
type backlogView struct {
	Read   bool // false until the first reading
	Jobs   int
	Oldest time.Time
	Age    time.Duration
	Bound  string // "at most 100000 jobs, the oldest at most 10m00s", or "no bound"
	Over   bool
	Why    string // which part of the bound is passed, in words
	// TooOld is the oldest job past oldestJobTooOld, an abnormal state.
	TooOld bool
}

// oldestJobTooOld is when the oldest waiting job is an operator's
// concern: the SpillwayOldestJobTooOld alert's threshold.
const oldestJobTooOld = 30 * time.Minute

func newBacklogView(x app.BacklogBound, bl app.Backlog, read bool, now time.Time) *backlogView {
	v := &backlogView{Read: read, Jobs: bl.Jobs, Oldest: bl.Oldest, Bound: describeBound(x)}
	if !bl.Oldest.IsZero() {
		v.Age = max(now.Sub(bl.Oldest), 0)
		v.TooOld = read && v.Age > oldestJobTooOld
	}
	if read {
		v.Why, v.Over = x.Exceeded(bl, now)
	}
	return v
}

// oldest is the age of the oldest waiting job, to follow the count.
func (v *backlogView) oldest() string {
	if v.Oldest.IsZero() {
		return ""
	}
	return ", the oldest captured " + fmtDuration(v.Age) + " ago"
}

func describeBound(x app.BacklogBound) string {
	switch {
	case x.MaxJobs > 0 && x.MaxAge > 0:
		return fmt.Sprintf("at most %d jobs, the oldest at most %s", x.MaxJobs, fmtDuration(x.MaxAge))
	case x.MaxJobs > 0:
		return fmt.Sprintf("at most %d jobs, of any age", x.MaxJobs)
	case x.MaxAge > 0:
		return fmt.Sprintf("any number of jobs, the oldest at most %s", fmtDuration(x.MaxAge))
	}
	return "no bound"
}

// bulkheadView is this instance's sync bulkhead for a dependency, in words.
type bulkheadView struct {
	InUse, Limit, Reserved int
	Summary                string // "4 of 16 sync slots in use on this instance; 4 kept for …"
	Shedding               string // what happens to new work now, when it is shed; else ""
}

func newBulkheadView(b Bulkhead, highValue int64) *bulkheadView {
	v := &bulkheadView{InUse: b.InUse(), Limit: b.Limit(), Reserved: b.Reserved()}
	v.Summary = fmt.Sprintf("%d of %d sync slots in use on this instance; ", v.InUse, v.Limit)
	if v.Reserved > 0 {
		v.Summary += fmt.Sprintf("%d kept for payments and orders ≥ %d (HIGH_VALUE_AMOUNT, minor units: an order counts by its total).", v.Reserved, highValue)
	} else {
		v.Summary += "none kept for high-value payments and orders (SYNC_HIGH_VALUE_RESERVE is 0)."
	}
	switch {
	case v.InUse >= v.Limit:
		v.Shedding = "Every slot is taken: new payments and orders are captured (overloaded) and answer 202."
	case v.Reserved > 0 && v.InUse >= v.Limit-v.Reserved:
		v.Shedding = fmt.Sprintf("Only payments and orders ≥ %d are worked sync now; the others are captured (overloaded) and answer 202.", highValue)
	}
	return v
}

// belowMinCalls reports whether the window holds too few calls for the
// breaker to judge its rates (MinCalls): a rate of 1 failure in 1 call
// says nothing, and the breaker does not act on it.
func (m modeView) belowMinCalls() bool { return m.Counts.Calls < m.Policy.MinCalls }

// minCallsWords says so plainly: "1 call in the window; the breaker
// judges the rate from 20 calls".
func (m modeView) minCallsWords() string {
	return fmt.Sprintf("Not judged: %d %s in the window; the breaker judges the rate from %d calls (opens over %s failures).",
		m.Counts.Calls, pluralWord(m.Counts.Calls, "call", "calls"), m.Policy.MinCalls, fmtPercent(m.Policy.FailureRate))
}

// describeMode says what a breaker state means for requests, in words for
// a tired operator.
func describeMode(b app.Breaker, now time.Time) (mode, class, detail string) {
	switch b.State {
	case app.BreakerClosed:
		return "SYNC", "mode-sync", "Breaker closed: requests call the provider and answer at once."
	case app.BreakerOpen:
		until := "any moment now"
		if !b.OpenUntil.IsZero() {
			until = fmt.Sprintf("%s (%s)", fmtTime(b.OpenUntil), fmtAgo(b.OpenUntil, now))
		}
		return "ASYNC", "mode-async", fmt.Sprintf("Breaker open until %s: requests are queued (202) and the queue is paused; then it probes.", until)
	case app.BreakerHalfOpen:
		return "PROBING", "mode-probing", fmt.Sprintf("Trying up to %d calls: all succeed → SYNC, one fails → ASYNC again.", b.Policy.Probes)
	case app.BreakerForcedOpen:
		return "FORCED OPEN", "mode-forced-open", fmt.Sprintf("An operator forced it open %s: every request is queued until someone returns it to auto.", fmtAgo(b.Since, now))
	case app.BreakerForcedClosed:
		return "FORCED CLOSED", "mode-forced-closed", fmt.Sprintf("An operator forced it closed %s: requests call the provider however it fails.", fmtAgo(b.Since, now))
	}
	return string(b.State), "", ""
}

// drainWindow is how far back the drain rate counts finished jobs.
const drainWindow = 5 * time.Minute

// flowView is how fast a dependency's acknowledged work is finishing and
// when it will be done, in words.
type flowView struct {
	Running int
	// Unfinished is acknowledged and not finished: the backlog's waiting
	// jobs (as last read) and the running ones.
	Unfinished int
	// Finished jobs over FinishedOver make the drain rate, PerSecond.
	Finished     int
	FinishedOver time.Duration
	PerSecond    float64
	// Net is the backlog's change per second (Backlogs.Trend: negative
	// while it shrinks) over NetOver; NetOK false when not judged yet.
	Net     float64
	NetOver time.Duration
	NetOK   bool
	// ETA is the time to drain when it can be estimated; ETAWords says it,
	// or says plainly why it cannot be.
	ETA      time.Duration
	HasETA   bool
	ETAWords string
	// Runbook is the section for an abnormal flow (growing, not
	// draining); "" when the flow is normal.
	Runbook string
}

// newFlowView works out the drain rate and the time to drain. The rate
// is what finished; the time to drain divides what is unfinished by the
// backlog's net shrink rate (drain minus new captures, from the backlog's
// own readings), since a drain of 100/s under captures of 100/s never
// ends. Until the readings span enough to judge, it divides by the drain
// rate alone and says it leaves new captures out.
func newFlowView(f db.QueueFlow, now time.Time, bl app.Backlog, read bool, t backlogTrend, open bool) *flowView {
	net, netOver, netOK := t.perSecond, t.over, t.ok
	v := &flowView{Running: f.Running, Finished: f.Finished, FinishedOver: max(now.Sub(f.FinishedSince), time.Second),
		Net: net, NetOver: netOver, NetOK: netOK}
	v.PerSecond = float64(v.Finished) / v.FinishedOver.Seconds()
	v.Unfinished = f.Running
	if read {
		v.Unfinished += bl.Jobs
	}
	switch {
	case !read:
		v.ETAWords = "Cannot be estimated: this instance has not read the backlog."
	case v.Unfinished == 0:
		v.ETAWords = "Nothing to drain."
	case v.Finished == 0 && open:
		v.ETAWords = fmt.Sprintf("Cannot be estimated: nothing has drained in the last %s; the breaker holds the queue until it probes.", fmtDuration(drainWindow))
		v.Runbook = runbookBreakerOpen
	case v.Finished == 0:
		v.ETAWords = fmt.Sprintf("Cannot be estimated: nothing has drained in the last %s.", fmtDuration(drainWindow))
		v.Runbook = runbookBacklogStalled
	case netOK && net >= 0:
		v.ETAWords = fmt.Sprintf("Cannot be estimated: the backlog grows faster than it drains (%s net over the last %s).",
			fmtSignedRate(net), fmtDuration(netOver))
		if net == 0 {
			v.ETAWords = fmt.Sprintf("Cannot be estimated: the backlog is not shrinking (no net change over the last %s): captures keep pace with the drain.", fmtDuration(netOver))
		}
		v.Runbook = runbookBacklogGrowing
	case netOK:
		v.ETA, v.HasETA = time.Duration(float64(v.Unfinished)/-net*float64(time.Second)), true
		v.ETAWords = fmt.Sprintf("About %s, at the net rate of %s over the last %s (drain less new captures).",
			fmtDuration(v.ETA), fmtSignedRate(net), fmtDuration(netOver))
	default:
		v.ETA, v.HasETA = time.Duration(float64(v.Unfinished)/v.PerSecond*float64(time.Second)), true
		v.ETAWords = fmt.Sprintf("About %s at the drain rate, not counting new captures (the backlog's trend is not judged yet).", fmtDuration(v.ETA))
	}
	return v
}

// backlogTrend is what Backlogs.Trend says.
type backlogTrend struct {
	perSecond float64
	over      time.Duration
	ok        bool
}

// fmtRate is a rate of jobs, per second when there are several a second,
// else per minute.
func fmtRate(perSecond float64) string {
	if perSecond >= 1 {
		return fmt.Sprintf("%.1f jobs/s", perSecond)
	}
	return fmt.Sprintf("%.1f jobs/min", perSecond*60)
}

// fmtSignedRate is a change per time, signed: "+3.0 jobs/min", "−5.0 jobs/min".
func fmtSignedRate(perSecond float64) string {
	if perSecond < 0 {
		return "−" + fmtRate(-perSecond)
	}
	return "+" + fmtRate(perSecond)
}

type queueView struct {
	Name   string
	Counts map[rivertype.JobState]int
	// Estimated marks the counts that are the planner's estimate (past
	// db.AdminCountCap), shown as "about".
	Estimated      map[rivertype.JobState]bool
	Total          int
	TotalEstimated bool
	Paused         bool
	PausedAt       *time.Time
	Known          bool // River has a row for it, so it can be paused
}

type overviewData struct {
	// Unresolved counts operations whose outcome has been unknown longer
	// than ReconcileAfter: each needs an operator.
	Unresolved int
	After      time.Duration
	// Orphans counts open orphan charges: money taken for no request of ours.
	Orphans int
	// UnresolvedNote, QueuesNote and ChartNote say that a section could not
	// be read in time ("" when it was).
	UnresolvedNote string
	QueuesNote     string
	ChartNote      string
	// FlowNote says the dependencies' running and finished jobs could not
	// be read in time ("" when they were).
	FlowNote    string
	Gated       map[string]string
	Modes       []modeView
	States      []rivertype.JobState
	Queues      []queueView
	Oldest      time.Time
	Chart       chart
	Transitions []db.BreakerTransition
	// Features is nil when the UI has no feature switch.
	Features *featuresView
	// LastDrills is each drillable dependency's last drill (drills.go).
	LastDrills     []lastDrillView
	LastDrillsNote string
}

// queueStates is the column order of the queue table.
var queueStates = []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStateScheduled, rivertype.JobStatePending,
	rivertype.JobStateRunning, rivertype.JobStateRetryable, rivertype.JobStateDiscarded, rivertype.JobStateCancelled,
	rivertype.JobStateCompleted}

// adminSectionTimeout is each overview section's statement_timeout, and
// the job list's: the page's reads together stay under its 300 ms goal on
// a million jobs (db.AdminQueueDepths), and one that Postgres cuts off
// leaves its section saying so instead of failing the page.
const adminSectionTimeout = 250 * time.Millisecond

// notInTime is what a section says when its query hit its timeout.
const notInTime = "could not be counted in time (the database is busy or the tables are large); it will be tried again at the next refresh"

// section runs one section's reads within adminSectionTimeout. A timeout
// comes back as the section's note for the page; any other error is the
// page's.
func (s *server) section(r *http.Request, fn func(db.Querier) error) (note string, err error) {
	err = db.ReadWithin(r.Context(), s.cfg.Pool, adminSectionTimeout, fn)
	if db.IsStatementTimeout(err) {
		s.log.Warn("admin section timed out", "path", r.URL.Path, "timeout", adminSectionTimeout, "error", err)
		return notInTime, nil
	}
	return "", err
}

func (s *server) handleOverview(w http.ResponseWriter, r *http.Request) {
	d, err := s.readOverview(r, s.now())
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	p := s.page(r, "Overview", "overview")
	p.Flash, p.Live = s.takeFlash(w, r), 5
	s.render(w, r, http.StatusOK, overviewPage(p, d))
}

// readOverview reads the page. Its database sections run in one
// transaction on one connection (db.ReadSections): under load, a page that
// took a pooled connection per section waited for the pool as many times.
// The breakers and their counts come from the breakers' own pool.
func (s *server) readOverview(r *http.Request, now time.Time) (overviewData, error) {
	ctx := r.Context()
	d := overviewData{After: s.reconcileAfter(), Gated: s.operator.GatedQueues(), Features: newFeaturesView(s.cfg.Features)}
	bs, err := s.breakers.ListBreakers(ctx)
	if err != nil {
		return d, err
	}
	// Each section and the note it leaves when Postgres cuts it off.
	var sections []func(db.Querier) error
	var notes []*string
	section := func(note *string, fn func(db.Querier) error) {
		sections, notes = append(sections, fn), append(notes, note)
	}
	section(&d.UnresolvedNote, func(q db.Querier) (err error) {
		if d.Unresolved, err = db.CountUnresolved(ctx, q, now.Add(-d.After)); err != nil {
			return err
		}
		d.Orphans, err = db.CountOrphans(ctx, q, app.OrphanOpen)
		return err
	})
	queues, depOf := flowQueues(bs)
	var flows []db.QueueFlow
	if len(queues) > 0 {
		section(&d.FlowNote, func(q db.Querier) (err error) {
			flows, err = db.ReadQueueFlows(ctx, q, queues, now.Add(-drainWindow), db.AdminCountCap)
			return err
		})
	}
	section(&d.LastDrillsNote, func(q db.Querier) (err error) {
		d.LastDrills, err = s.lastDrills(ctx, q)
		return err
	})
	// The sync latency does not depend on the breaker: read once per span,
	// at least a minute so it has data (the breaker counts keep no
	// durations).
	type p95 struct {
		d    time.Duration
		n    int
		note string
	}
	p95s := map[time.Duration]*p95{}
	for _, b := range bs {
		over := max(b.Policy.Window, time.Minute)
		if p95s[over] != nil {
			continue
		}
		v := &p95{}
		p95s[over] = v
		section(&v.note, func(q db.Querier) (err error) {
			v.d, v.n, err = db.SyncLatencyP95(ctx, q, now.Add(-over))
			return err
		})
	}
	var depths []db.AdminQueueDepth
	var queueRows []db.QueueRow
	section(&d.QueuesNote, func(q db.Querier) (err error) {
		if depths, err = db.AdminQueueDepths(ctx, q, db.AdminCountCap); err != nil {
			return err
		}
		if d.Oldest, err = db.OldestWaiting(ctx, q, now); err != nil {
			return err
		}
		queueRows, err = db.ListQueues(ctx, q)
		return err
	})
	var buckets []db.ThroughputBucket
	section(&d.ChartNote, func(q db.Querier) (err error) {
		buckets, err = s.throughput.read(ctx, q, now)
		return err
	})
	// The history is a few rows by the newest: cut off, it shows none.
	var historyNote string
	section(&historyNote, func(q db.Querier) (err error) {
		d.Transitions, err = db.ListBreakerTransitions(ctx, q, "", 10)
		return err
	})
	timedOut, err := db.ReadSections(ctx, s.cfg.Pool, adminSectionTimeout, sections...)
	if err != nil {
		return d, err
	}
	for i, late := range timedOut {
		if late {
			s.log.Warn("admin section timed out", "path", r.URL.Path, "section", i, "timeout", adminSectionTimeout)
			*notes[i] = notInTime
		}
	}
	byDep := map[string]db.QueueFlow{}
	for _, f := range flows {
		for _, dep := range depOf[f.Queue] {
			byDep[dep] = f
		}
	}
	for _, b := range bs {
		m := modeView{Name: b.Name, State: b.State, Window: b.Policy.Window, Policy: b.Policy, Since: b.Since}
		m.Mode, m.Class, m.Detail = describeMode(b, now)
		m.Runbook = runbookForState(b.State)
		since := now.Add(-b.Policy.Window)
		if b.Since.After(since) {
			since = b.Since.Truncate(time.Second)
		}
		if m.Counts, err = s.breakers.WindowCounts(ctx, b.Name, b.Generation, since); err != nil {
			return d, err
		}
		m.FailureRate, m.SlowRate = m.Counts.FailureRate(), m.Counts.SlowRate()
		m.P95Over = max(b.Policy.Window, time.Minute)
		v := p95s[m.P95Over]
		m.P95, m.P95Calls, m.P95Note = v.d, v.n, v.note
		var bl app.Backlog
		var read bool
		var trend backlogTrend
		if s.cfg.Backlog != nil {
			bl, read = s.cfg.Backlog.Last(b.Name)
			trend.perSecond, trend.over, trend.ok = s.cfg.Backlog.Trend(b.Name)
			if x, ok := s.cfg.Backlog.Bound(b.Name); ok {
				m.Backlog = newBacklogView(x, bl, read, now)
			}
		}
		if bh := s.cfg.Bulkheads[b.Name]; bh != nil {
			m.Bulkhead = newBulkheadView(bh, s.cfg.HighValueAmount)
		}
		if f, ok := byDep[b.Name]; ok {
			open := b.State == app.BreakerOpen || b.State == app.BreakerForcedOpen
			m.Flow = newFlowView(f, now, bl, read, trend, open)
		}
		m.Unresolved, m.Orphans, m.ShowOrphan = d.Unresolved, d.Orphans, b.Name == app.DepPayment
		d.Modes = append(d.Modes, m)
	}
	d.States = queueStates
	d.Queues = mergeQueues(depths, queueRows)
	d.Chart = newChart(buckets)
	return d, nil
}

// flowQueues are the queues of the listed breakers' dependencies, each
// once, and which dependencies each serves.
func flowQueues(bs []app.Breaker) (queues []string, depOf map[string][]string) {
	queueOf := map[string]string{}
	for _, d := range app.Dependencies() {
		queueOf[d.Name] = d.Queue
	}
	depOf = map[string][]string{}
	for _, b := range bs {
		if q, ok := queueOf[b.Name]; ok {
			if len(depOf[q]) == 0 {
				queues = append(queues, q)
			}
			depOf[q] = append(depOf[q], b.Name)
		}
	}
	return queues, depOf
}

func mergeQueues(depths []db.AdminQueueDepth, queues []db.QueueRow) []queueView {
	byName := map[string]*queueView{}
	var names []string
	get := func(name string) *queueView {
		q, ok := byName[name]
		if !ok {
			q = &queueView{Name: name, Counts: map[rivertype.JobState]int{}, Estimated: map[rivertype.JobState]bool{}}
			byName[name] = q
			names = append(names, name)
		}
		return q
	}
	for _, d := range depths {
		q := get(d.Queue)
		q.Counts[d.State] += d.Count
		q.Total += d.Count
		if d.Estimated {
			q.Estimated[d.State], q.TotalEstimated = true, true
		}
	}
	for _, row := range queues {
		q := get(row.Name)
		q.Known, q.PausedAt, q.Paused = true, row.PausedAt, row.PausedAt != nil
	}
	slices.Sort(names)
	out := make([]queueView, 0, len(names))
	for _, n := range names {
		out = append(out, *byName[n])
	}
	return out
}

// chart is the throughput bar chart's geometry, computed here so the
// template only places shapes.
type chart struct {
	Width, Height int
	Bars          []chartBar
	Max           int
	TotalSync     int
	TotalAsync    int
}

type chartBar struct {
	X, W           int
	SyncY, SyncH   int
	AsyncY, AsyncH int
	Title          string
}

const (
	chartW, chartH = 720, 140
	chartPad       = 20 // room for labels at the bottom
)

func newChart(buckets []db.ThroughputBucket) chart {
	c := chart{Width: chartW, Height: chartH}
	for _, b := range buckets {
		c.Max = max(c.Max, b.Sync+b.Async)
		c.TotalSync += b.Sync
		c.TotalAsync += b.Async
	}
	scale := max(c.Max, 1)
	n := max(len(buckets), 1)
	slot := (chartW - 40) / n
	plot := chartH - chartPad - 10
	for i, b := range buckets {
		sh := b.Sync * plot / scale
		ah := b.Async * plot / scale
		base := chartH - chartPad
		c.Bars = append(c.Bars, chartBar{
			X: 40 + i*slot, W: max(slot-1, 1),
			SyncY: base - sh, SyncH: sh,
			AsyncY: base - sh - ah, AsyncH: ah,
			Title: fmt.Sprintf("%s: %d sync, %d async", b.Minute.UTC().Format("15:04"), b.Sync, b.Async),
		})
	}
	return c
}
