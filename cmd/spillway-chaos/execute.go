package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/spillway/spillway/cmd/internal/loadgen"
)

// execute runs one prepared scenario: load for Warm, the fault for Fault,
// load for After with the fault removed, then waits for every operation to
// end (at most Drain) and checks the books.
func (s *suite) execute(ctx context.Context, r *scenarioRun) (row, error) {
	t := s.timing
	start := time.Now()
	answersc := make(chan []answer, 1)
	go func() {
		answersc <- runLoad(ctx, loadConfig{Rate: t.Rate, Duration: t.Warm + t.Fault + t.After,
			Prefix: fmt.Sprintf("chaos-%s-%s", s.runID, r.sc.Name), Targets: r.targets})
	}()

	var faultErr error
	if loadgen.SleepUntil(ctx, start.Add(t.Warm)) && r.sc.inject != nil {
		s.progress("%s: inject: %s", r.sc.Name, r.sc.Fault)
		faultErr = r.sc.inject(ctx, r)
	}
	loadgen.SleepUntil(ctx, start.Add(t.Warm+t.Fault))
	if r.sc.heal != nil {
		// Healed even when inject failed half-way, so the next scenario
		// starts clean.
		began := time.Now()
		if err := r.sc.heal(ctx, r); err != nil && faultErr == nil {
			faultErr = err
		}
		s.progress("%s: healed (in %s)", r.sc.Name, time.Since(began).Round(time.Millisecond))
	}
	healAt := time.Now()
	drained := make(chan drainResult, 1)
	loadDone := make(chan struct{})
	go func() { drained <- r.watchDrain(ctx, healAt, loadDone, t.After+t.Drain) }()
	answers := <-answersc
	if r.sc.inject != nil && !answeredSync(answers, healAt) {
		answers = append(answers, r.probeSync(ctx, healAt.Add(t.After+t.Drain))...)
	}
	close(loadDone)
	d := <-drained
	if faultErr != nil {
		return row{}, fmt.Errorf("%s: fault: %w", r.sc.Name, faultErr)
	}
	if err := ctx.Err(); err != nil {
		return row{}, err
	}
	// Recovered (or given up on): the client's turn to retry what it was
	// not told, then the drain again for what the retries captured.
	retries := retryUnanswered(ctx, answers, r.targets)
	if len(retries) > 0 {
		over := make(chan struct{})
		close(over)
		d.open = r.watchDrain(ctx, time.Now(), over, t.Drain).open
	}
	b, err := r.books(ctx)
	if err != nil {
		return row{}, fmt.Errorf("%s: reading the books: %w", r.sc.Name, err)
	}
	rw := judge(r.sc, answers, retries, b, healAt, d)
	return rw, nil
}

// drainResult is when the backlog the fault left was gone.
type drainResult struct {
	// backlogDone is the first moment no operation created before the heal
	// was still open; zero if that never happened within the wait.
	backlogDone time.Time
	// allDone: after the load, no operation at all was open.
	allDone bool
	// open is how many operations were still open when the wait ended.
	open int64
}

// watchDrain polls the scenario's database (directly, not through the
// proxy) from the heal on, until the load is over and no operation is
// open, or limit has passed since the heal.
func (r *scenarioRun) watchDrain(ctx context.Context, healAt time.Time, loadDone <-chan struct{}, limit time.Duration) drainResult {
	var d drainResult
	deadline := healAt.Add(limit)
	for {
		var backlog, open int64
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := r.pool.QueryRow(qctx, `SELECT count(*) FILTER (WHERE created_at < $1), count(*)
			FROM operations WHERE status IN ('queued', 'processing')`, healAt).Scan(&backlog, &open)
		cancel()
		now := time.Now()
		if err == nil {
			d.open = open
			if backlog == 0 && d.backlogDone.IsZero() {
				d.backlogDone = now
			}
			select {
			case <-loadDone:
				if open == 0 {
					d.allDone = true
					return d
				}
			default:
			}
		}
		if now.After(deadline) || !loadgen.SleepUntil(ctx, now.Add(200*time.Millisecond)) {
			return d
		}
	}
}

// answeredSync reports whether a request sent at or after healAt was
// answered 201.
func answeredSync(answers []answer, healAt time.Time) bool {
	for _, a := range answers {
		if a.Status == http.StatusCreated && !a.Sent.Before(healAt) {
			return true
		}
	}
	return false
}

// probeSync goes on sending one payment every 200 ms after the load until
// one is answered 201 or until deadline, so that a recovery slower than
// the load's After phase is still measured. The probes are requests like
// any other: those acknowledged are checked with the rest.
func (r *scenarioRun) probeSync(ctx context.Context, deadline time.Time) []answer {
	client := &http.Client{Timeout: clientTimeout}
	defer client.CloseIdleConnections()
	var out []answer
	for i := 0; time.Now().Before(deadline); i++ {
		targets := r.targets()
		if len(targets) > 0 {
			key := fmt.Sprintf("chaos-%s-%s-probe-%d", r.s.runID, r.sc.Name, i)
			a := send(ctx, client, targets[i%len(targets)], "payment", key, time.Now())
			out = append(out, a)
			if a.Status == http.StatusCreated {
				return out
			}
		}
		if !loadgen.SleepUntil(ctx, time.Now().Add(200*time.Millisecond)) {
			return out
		}
	}
	return out
}
