package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/apptest"
	"github.com/spillway/spillway/app/sim"
)

type sseEvent struct {
	id     string
	status string
}

// sseStream is an open status stream, read on its own goroutine; the test
// goroutine takes its events and fails the test if need be.
type sseStream struct {
	events <-chan sseEvent // closed when the stream ends
	err    <-chan error    // why it ended, sent before events is closed
}

// openEvents opens the status stream at url, resuming after lastEventID
// unless it is "".
func openEvents(t *testing.T, url, lastEventID string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		res.Body.Close()
		t.Fatalf("stream: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	events := make(chan sseEvent)
	errc := make(chan error, 1)
	go func() {
		defer res.Body.Close()
		errc <- scanEvents(ctx, res.Body, events)
		close(events)
	}()
	return &sseStream{events: events, err: errc}
}

// scanEvents sends each status event read from body until it ends or ctx
// does.
func scanEvents(ctx context.Context, body io.Reader, events chan<- sseEvent) error {
	var cur sseEvent
	sc := bufio.NewScanner(body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			cur.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			var d struct {
				ID     string `json:"id"`
				Status string `json:"status"`
			}
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &d); err != nil {
				return fmt.Errorf("bad event data %q: %w", line, err)
			}
			cur.status = d.Status
		case line == "" && cur.status != "":
			select {
			case events <- cur:
			case <-ctx.Done():
				return ctx.Err()
			}
			cur = sseEvent{}
		}
	}
	return fmt.Errorf("stream ended (%v)", sc.Err())
}

// next returns the stream's next event.
func (s *sseStream) next(t *testing.T) sseEvent {
	t.Helper()
	select {
	case e, ok := <-s.events:
		if !ok {
			t.Fatal(<-s.err)
		}
		return e
	case <-time.After(guard):
		t.Fatalf("no event within %s", guard)
	}
	return sseEvent{}
}

// until reads events up to and including the first in status want.
func (s *sseStream) until(t *testing.T, want string) []sseEvent {
	t.Helper()
	var evs []sseEvent
	for {
		e := s.next(t)
		evs = append(evs, e)
		if e.status == want {
			return evs
		}
	}
}

func TestLiveStatusStreamAndResume(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{workers: 1})
	h.sim.SetChaos(sim.Chaos{Down: true})
	r := h.pay("sse-1", payment)
	id := r.json(t)["id"].(string)
	url := h.url + "/api/v1/operations/" + id + "/events"

	// The stream is open and has sent the operation's first state before
	// anything else happens to it; the rest arrives live.
	live := openEvents(t, url, "")
	evs := []sseEvent{live.next(t)}
	if evs[0].status != "queued" {
		t.Fatalf("first event %v, want queued", evs[0])
	}
	apptest.WaitFor(t, "the worker to fail twice", func() bool {
		return h.count(`SELECT attempts FROM operations WHERE id = $1`, id) >= 3
	})
	h.sim.SetChaos(sim.Chaos{})
	evs = append(evs, live.until(t, "succeeded")...)
	if len(evs) < 3 {
		t.Fatalf("events %v: want queued, the attempts' changes and succeeded", evs)
	}
	// A client that saw up to the first event gets the rest, not again the first.
	again := openEvents(t, url, evs[0].id).until(t, "succeeded")
	if len(again) != len(evs)-1 || again[0].id == evs[0].id {
		t.Fatalf("resume after %s: %v, first stream %v", evs[0].id, again, evs)
	}
	if r := h.do(http.MethodGet, "/api/v1/operations/00000000-0000-0000-0000-000000000000/events", "", "", nil); r.status != http.StatusNotFound {
		t.Fatalf("unknown operation stream: %d", r.status)
	}
}

func TestDrainIsPacedAndHighPriorityFirst(t *testing.T) {
	t.Parallel()
	const rate = 20.0
	h := newHarness(t, harnessOpts{drainRate: rate})
	// Captured without calling anyone: an open breaker, then back to auto,
	// so the drain is not also waiting out a real trip.
	if _, err := h.breakers.Force(context.Background(), "payment", app.BreakerForcedOpen, "test", "capture"); err != nil {
		t.Fatal(err)
	}
	// Interleave ordinary and high-value payments while nothing works jobs.
	for i := range 20 {
		amount := "1000"
		if i%2 == 1 {
			amount = "200000"
		}
		if r := h.pay(keyf("drain-%d", i), `{"amount": `+amount+`, "currency": "usd"}`); r.status != http.StatusAccepted {
			t.Fatalf("capture %d: %d", i, r.status)
		}
	}
	if _, err := h.breakers.Force(context.Background(), "payment", app.BreakerClosed, "test", "drain"); err != nil {
		t.Fatal(err)
	}
	h.startWorkers(1)
	apptest.WaitFor(t, "the backlog to drain", func() bool {
		return h.count(`SELECT count(*) FROM operations WHERE status <> 'succeeded'`) == 0
	})
	rows, err := h.pool.Query(context.Background(), `SELECT priority FROM operations ORDER BY completed_at`)
	if err != nil {
		t.Fatal(err)
	}
	var order []int
	for rows.Next() {
		var p int
		_ = rows.Scan(&p)
		order = append(order, p)
	}
	for i, p := range order {
		if want := 2 + i/10; p != want {
			t.Fatalf("completion order by priority %v: want all 2s before 3s", order)
		}
	}
	// A lower bound only (a slow machine can only make it longer): 20 jobs
	// at 20/s with a burst of 2 take at least ~0.9 s.
	var span float64
	if err := h.pool.QueryRow(context.Background(), `SELECT extract(epoch FROM max(completed_at) - min(completed_at)) FROM operations`).Scan(&span); err != nil {
		t.Fatal(err)
	}
	if min := (20 - 2 - 1) / rate * 0.9; span < min {
		t.Fatalf("20 jobs drained in %.2fs, faster than the %v/s limit allows (%.2fs)", span, rate, min)
	}
}

func TestOffpeakDeferral(t *testing.T) {
	t.Parallel()
	// The runner's clock stands still: the deferral is computed from a
	// known moment, not from whenever the request got there.
	now := time.Now().UTC().Truncate(time.Second)
	// A one-hour window starting two hours from now: certainly closed now.
	start := now.Add(2 * time.Hour)
	window := start.Format("15:04") + "-" + start.Add(time.Hour).Format("15:04")
	w, err := app.ParseOffpeakWindow(window, "UTC")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, harnessOpts{workers: 1, offpeak: w, runnerNow: func() time.Time { return now }})
	r := h.pay("defer-1", `{"amount": 1999, "currency": "usd", "defer": "offpeak"}`)
	if r.status != http.StatusAccepted {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	doc := r.json(t)
	id := doc["id"].(string)
	if doc["reason"] != "deferred" || doc["attempts"] != 0.0 {
		t.Fatalf("document %v", doc)
	}
	var at time.Time
	if err := h.pool.QueryRow(context.Background(), `SELECT j.scheduled_at FROM river_job j JOIN operations o ON o.job_id = j.id WHERE o.id = $1`, id).Scan(&at); err != nil {
		t.Fatal(err)
	}
	if want := w.NextStart(now); !at.Equal(want) {
		t.Fatalf("scheduled at %s, want the window's start %s", at, want)
	}
	if h.sim.Calls(id) != 0 {
		t.Fatal("a deferred payment called the provider")
	}
	// An operator's "run now" (metadata run_now, scheduled now) runs it outside the window.
	if _, err := h.pool.Exec(context.Background(), `UPDATE river_job SET scheduled_at = now(), state = 'available',
		metadata = metadata || '{"run_now": true}' WHERE id = (SELECT job_id FROM operations WHERE id = $1)`, id); err != nil {
		t.Fatal(err)
	}
	h.waitStatus(id, app.StatusSucceeded)
	if bad := h.pay("defer-2", `{"amount": 1999, "currency": "usd", "defer": "later"}`); bad.status != http.StatusUnprocessableEntity {
		t.Fatalf("bad defer: %d", bad.status)
	}
}

func TestStatusPage(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	r := h.pay("page-1", `{"amount": 1999, "currency": "usd", "description": "<script>alert(1)</script>"}`)
	id := r.json(t)["id"].(string)
	page := h.do(http.MethodGet, "/status/"+id, "", "", nil)
	body := string(page.body)
	if page.status != http.StatusOK || !strings.HasPrefix(page.header.Get("Content-Type"), "text/html") ||
		!strings.Contains(body, "Succeeded") || !strings.Contains(body, "USD 19.99") {
		t.Fatalf("status page: %d %s", page.status, body)
	}
	if strings.Contains(body, "<script>alert(1)</script>") || !strings.Contains(body, "&lt;script&gt;") {
		t.Fatal("the description is not escaped on the status page")
	}
	if missing := h.do(http.MethodGet, "/status/not-an-id", "", "", nil); missing.status != http.StatusNotFound ||
		!strings.Contains(string(missing.body), "no payment with that reference") {
		t.Fatalf("unknown id: %d %s", missing.status, missing.body)
	}
}
