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
	// A failed attempt with nothing out leaves it queued, and the one that
	// succeeds writes its outcome and the ending in one write: queued,
	// then succeeded, with no passing "processing" between.
	if len(evs) < 2 {
		t.Fatalf("events %v: want queued, then succeeded", evs)
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

// noRedirect sends a request and returns the answer without following a
// redirect.
func (h *harness) noRedirect(method, path string) *http.Response {
	h.t.Helper()
	req, err := http.NewRequest(method, h.url+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	res.Body.Close()
	return res
}

func TestStatusPage(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	r := h.pay("page-1", `{"amount": 1999, "currency": "usd", "description": "<script>alert(1)</script>"}`)
	id := r.json(t)["id"].(string)
	// The address older emails carry leads to the order page.
	if old := h.noRedirect(http.MethodGet, "/status/"+id); old.StatusCode != http.StatusMovedPermanently ||
		old.Header.Get("Location") != "/orders/"+id {
		t.Fatalf("/status/%s: %d to %q; want 301 to /orders/%s", id, old.StatusCode, old.Header.Get("Location"), id)
	}
	page := h.do(http.MethodGet, "/orders/"+id, "", "", nil)
	body := string(page.body)
	if page.status != http.StatusOK || !strings.HasPrefix(page.header.Get("Content-Type"), "text/html") ||
		!strings.Contains(body, "Succeeded") || !strings.Contains(body, "USD 19.99") {
		t.Fatalf("status page: %d %s", page.status, body)
	}
	if strings.Contains(body, "<script>alert(1)</script>") || !strings.Contains(body, "&lt;script&gt;") {
		t.Fatal("the description is not escaped on the status page")
	}
	if missing := h.do(http.MethodGet, "/status/not-an-id", "", "", nil); missing.status != http.StatusNotFound ||
		!strings.Contains(string(missing.body), "no order or payment with that reference") {
		t.Fatalf("unknown id: %d %s", missing.status, missing.body)
	}
}
