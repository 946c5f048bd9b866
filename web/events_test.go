package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/web/sim"
)

type sseEvent struct {
	id     string
	status string
}

// readEvents reads status events from an SSE stream until want arrives.
func readEvents(t *testing.T, url, lastEventID, want string) []sseEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	var evs []sseEvent
	var cur sseEvent
	sc := bufio.NewScanner(res.Body)
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
				t.Fatalf("bad event data %q", line)
			}
			cur.status = d.Status
		case line == "" && cur.status != "":
			evs = append(evs, cur)
			if cur.status == want {
				return evs
			}
			cur = sseEvent{}
		}
	}
	t.Fatalf("stream ended before %s: %v (%v)", want, evs, sc.Err())
	return nil
}

func TestLiveStatusStreamAndResume(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{workers: 1})
	h.sim.SetChaos(sim.Chaos{Down: true})
	r := h.pay("sse-1", payment)
	id := r.json(t)["id"].(string)
	url := h.url + "/api/v1/operations/" + id + "/events"

	got := make(chan []sseEvent, 1)
	go func() { got <- readEvents(t, url, "", "succeeded") }()
	time.Sleep(300 * time.Millisecond) // the worker fails a few times meanwhile
	h.sim.SetChaos(sim.Chaos{})
	var evs []sseEvent
	select {
	case evs = <-got:
	case <-time.After(40 * time.Second):
		t.Fatal("no succeeded event")
	}
	if evs[0].status != "queued" || evs[len(evs)-1].status != "succeeded" {
		t.Fatalf("events %v: want queued first and succeeded last", evs)
	}
	// A client that saw up to the first event gets the rest, not again the first.
	again := readEvents(t, url, evs[0].id, "succeeded")
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
	deadline := time.Now().Add(30 * time.Second)
	for h.count(`SELECT count(*) FROM operations WHERE status <> 'succeeded'`) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("backlog did not drain")
		}
		time.Sleep(20 * time.Millisecond)
	}
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
	now := time.Now().UTC()
	// A one-hour window starting two hours from now: certainly closed now.
	start := now.Add(2 * time.Hour)
	window := start.Format("15:04") + "-" + start.Add(time.Hour).Format("15:04")
	w, err := app.ParseOffpeakWindow(window, "UTC")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, harnessOpts{workers: 1, offpeak: w})
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
	if want := w.NextStart(now); at.Sub(want) > time.Minute || want.Sub(at) > time.Minute {
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
