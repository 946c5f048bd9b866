package web_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/apptest"
	"github.com/spillway/spillway/app/sim"
)

const payment = `{"amount": 1999, "currency": "usd", "customer": {"email": "a@b.example"}, "description": "tea"}`

func TestSyncSuccess(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{workers: 1})
	r := h.pay("sync-1", payment)
	if r.status != http.StatusCreated {
		t.Fatalf("status %d, want 201: %s", r.status, r.body)
	}
	doc := r.json(t)
	id := doc["id"].(string)
	if doc["status"] != "succeeded" || doc["mode"] != "sync" || doc["attempts"] != 1.0 || doc["completed_at"] == nil {
		t.Fatalf("unexpected document %v", doc)
	}
	if loc := r.header.Get("Location"); loc != "/api/v1/operations/"+id {
		t.Fatalf("Location %q", loc)
	}
	if got := h.sim.Effects(id); got != 1 {
		t.Fatalf("provider effects for %s = %d, want 1", id, got)
	}
	if got := h.operation(id); got["status"] != "succeeded" || got["kind"] != "payment" {
		t.Fatalf("GET: %v", got)
	}
	if n := h.count(`SELECT count(*) FROM river_job WHERE kind = 'payment'`); n != 0 {
		t.Fatalf("a sync success inserted %d jobs", n)
	}
}

func TestDeclineIsFinalAndNotRetried(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{workers: 1})
	r := h.pay("decline-1", `{"amount": 1002, "currency": "usd"}`) // the simulator declines amounts ending in 02
	if r.status != http.StatusPaymentRequired {
		t.Fatalf("status %d, want 402: %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q", ct)
	}
	p := r.json(t)
	op := p["operation"].(map[string]any)
	if p["type"] != "urn:spillway:problem:payment-declined" || op["status"] != "declined" {
		t.Fatalf("unexpected problem %v", p)
	}
	if n := h.count(`SELECT count(*) FROM river_job WHERE kind = 'payment'`); n != 0 {
		t.Fatalf("a decline inserted %d jobs", n)
	}
	if got := h.sim.Calls(op["id"].(string)); got != 1 {
		t.Fatalf("provider calls = %d, want 1", got)
	}
}

func TestTimeoutCapturesThenWorkerCompletesExactlyOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{workers: 2, syncTimeoutOnHold: true})
	// The simulator records the charge on arrival and holds its answer;
	// the sync call times out once it is held, so the money moved before
	// the deadline passed, the hardest case for exactly-once.
	key := providerKey("timeout-1")
	h.sim.Hold(key)
	r := h.pay("timeout-1", payment)
	if r.status != http.StatusAccepted {
		t.Fatalf("status %d, want 202: %s", r.status, r.body)
	}
	doc := r.json(t)
	id := doc["id"].(string)
	if doc["status"] != "queued" || doc["mode"] != "async" || doc["reason"] != "timeout" || id != key {
		t.Fatalf("unexpected document %v", doc)
	}
	if got := h.sim.Effects(id); got != 1 {
		t.Fatalf("provider effects when the sync call timed out = %d, want 1", got)
	}
	// The worker's call is answered from here on.
	h.sim.Release(key)
	if r.header.Get("Location") != "/api/v1/operations/"+id || r.header.Get("Retry-After") == "" {
		t.Fatalf("missing Location or Retry-After: %v", r.header)
	}
	done := h.waitStatus(id, app.StatusSucceeded)
	if done["mode"] != "async" || done["attempts"].(float64) < 2 {
		t.Fatalf("unexpected final document %v", done)
	}
	if got := h.sim.Effects(id); got != 1 {
		t.Fatalf("provider effects = %d, want exactly 1", got)
	}
	// River's batched completer completes the job after the worker
	// recorded the outcome.
	apptest.WaitFor(t, "the job to be completed", func() bool {
		return h.count(`SELECT count(*) FROM river_job WHERE kind = 'payment' AND state = 'completed'`) == 1
	})
	if n := h.count(`SELECT count(*) FROM river_job WHERE kind = 'payment'`); n != 1 {
		t.Fatalf("payment jobs = %d, want the one", n)
	}
}

func TestProviderErrorThenRecovery(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{workers: 1})
	h.sim.SetChaos(sim.Chaos{Down: true})
	r := h.pay("down-1", payment)
	if r.status != http.StatusAccepted {
		t.Fatalf("status %d, want 202: %s", r.status, r.body)
	}
	doc := r.json(t)
	id := doc["id"].(string)
	if doc["reason"] != "provider_error" {
		t.Fatalf("reason %v, want provider_error", doc["reason"])
	}
	// Let the worker fail a few times against the dead provider.
	apptest.WaitFor(t, "the worker to retry", func() bool {
		return h.count(`SELECT attempts FROM operations WHERE id = $1`, id) >= 3
	})
	if got := h.operation(id); got["status"] == "succeeded" || got["error"] == nil {
		t.Fatalf("while down: %v", got)
	}
	h.sim.SetChaos(sim.Chaos{})
	done := h.waitStatus(id, app.StatusSucceeded)
	if done["error"] != nil {
		t.Fatalf("a succeeded operation still reports an error: %v", done)
	}
	if got := h.sim.Effects(id); got != 1 {
		t.Fatalf("provider effects = %d, want 1", got)
	}
}

func TestAttemptsExhaustedFails(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{workers: 1, maxAttempts: 3})
	h.sim.SetChaos(sim.Chaos{Down: true})
	r := h.pay("exhaust-1", payment)
	id := r.json(t)["id"].(string)
	done := h.waitStatus(id, app.StatusFailed)
	errDoc, _ := done["error"].(map[string]any)
	if errDoc["code"] != "attempts_exhausted" || done["completed_at"] == nil {
		t.Fatalf("unexpected failed document %v", done)
	}
	// 1 sync attempt + 3 worker attempts.
	if done["attempts"] != 4.0 {
		t.Fatalf("attempts = %v, want 4", done["attempts"])
	}
	apptest.WaitFor(t, "the job to be discarded", func() bool {
		return h.count(`SELECT count(*) FROM river_job WHERE state = 'discarded'`) == 1
	})
	if h.sim.Effects(id) != 0 {
		t.Fatal("a provider that was down recorded an effect")
	}
}

func TestPriorityOfCapturedJobs(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{}) // no workers: jobs stay where they were put
	h.sim.SetChaos(sim.Chaos{Down: true})
	small := h.pay("prio-small", `{"amount": 99999, "currency": "usd"}`).json(t)
	large := h.pay("prio-large", `{"amount": 100000, "currency": "usd"}`).json(t)
	for _, c := range []struct {
		doc  map[string]any
		want int
	}{{small, 3}, {large, 2}} {
		id := c.doc["id"].(string)
		if got := h.count(`SELECT j.priority FROM river_job j JOIN operations o ON o.job_id = j.id WHERE o.id = $1`, id); got != c.want {
			t.Errorf("job priority for amount %v = %d, want %d", c.doc["amount"], got, c.want)
		}
		if c.doc["priority"] != float64(c.want) {
			t.Errorf("document priority %v, want %d", c.doc["priority"], c.want)
		}
	}
	if n := h.count(`SELECT count(*) FROM river_job WHERE queue = 'payments' AND state = 'available'`); n != 2 {
		t.Fatalf("available payment jobs = %d, want 2", n)
	}
}

func TestIdempotentReplay(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	for _, tc := range []struct {
		name  string
		chaos sim.Chaos
		body  string
		want  int
	}{
		{"created", sim.Chaos{}, payment, http.StatusCreated},
		{"declined", sim.Chaos{}, `{"amount": 502, "currency": "usd"}`, http.StatusPaymentRequired},
		{"accepted", sim.Chaos{Down: true}, payment, http.StatusAccepted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.sim.SetChaos(tc.chaos)
			key := "replay-" + tc.name
			first := h.pay(key, tc.body)
			if first.status != tc.want {
				t.Fatalf("first: %d %s", first.status, first.body)
			}
			h.sim.SetChaos(sim.Chaos{}) // a replay must not consult the provider, whatever its state
			// Same meaning, different formatting: still the same request.
			again := h.pay(key, " "+strings.ReplaceAll(tc.body, "usd", "USD"))
			if again.status != first.status || !bytes.Equal(again.body, first.body) {
				t.Fatalf("replay differs:\nfirst  %d %s\nreplay %d %s", first.status, first.body, again.status, again.body)
			}
			if again.header.Get("Idempotent-Replayed") != "true" || first.header.Get("Idempotent-Replayed") != "" {
				t.Fatal("Idempotent-Replayed header wrong")
			}
			if again.header.Get("Location") != first.header.Get("Location") {
				t.Fatal("replay has another Location")
			}
		})
	}
	if n := h.count(`SELECT count(*) FROM operations`); n != 3 {
		t.Fatalf("operations = %d, want 3", n)
	}
	if n := h.sim.TotalEffects(); n != 2 { // the accepted one never reached the provider
		t.Fatalf("provider effects = %d, want 2", n)
	}
}

func TestKeyReusedWithDifferentBody(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	if r := h.pay("reuse-1", payment); r.status != http.StatusCreated {
		t.Fatalf("first: %d %s", r.status, r.body)
	}
	r := h.pay("reuse-1", `{"amount": 2000, "currency": "usd"}`)
	if r.status != http.StatusUnprocessableEntity || r.json(t)["type"] != "urn:spillway:problem:idempotency-key-reused" {
		t.Fatalf("got %d %s", r.status, r.body)
	}
	if n := h.count(`SELECT count(*) FROM operations`); n != 1 {
		t.Fatalf("operations = %d, want 1", n)
	}
	if n := h.sim.TotalEffects(); n != 1 {
		t.Fatalf("provider effects = %d, want 1", n)
	}
}

func TestConcurrentRequestsWithOneKey(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{syncLimit: 64})
	// The first request to claim the key reaches the simulator, whose
	// answer is held until every other request has been answered: all
	// of them arrive while the first is in flight, however the machine
	// schedules them.
	key := providerKey("same-key")
	h.sim.Hold(key)
	const n = 50
	statuses := make(chan int, n)
	start := make(chan struct{})
	for range n {
		go func() {
			<-start
			r, err := h.post("same-key", payment)
			if err != nil {
				r.status = -1 // a transport error, which no expected status is
			}
			statuses <- r.status
		}()
	}
	close(start)
	counts := map[int]int{}
	for range n - 1 {
		select {
		case s := <-statuses:
			counts[s]++
		case <-time.After(guard):
			t.Fatalf("only %v answered while the first request was held", counts)
		}
	}
	if h.sim.Held(key) != 1 || h.sim.Calls(key) != 1 {
		t.Fatalf("held %d, calls %d at the simulator: want the one first request", h.sim.Held(key), h.sim.Calls(key))
	}
	h.sim.Release(key)
	select {
	case s := <-statuses:
		counts[s]++
	case <-time.After(guard):
		t.Fatal("the first request did not end once released")
	}
	if counts[http.StatusCreated] != 1 || counts[http.StatusConflict] != n-1 {
		t.Fatalf("statuses %v: want the first 201 and every other 409 while it was in flight", counts)
	}
	if got := h.count(`SELECT count(*) FROM operations`); got != 1 {
		t.Fatalf("operations = %d, want 1", got)
	}
	if got := h.sim.TotalEffects(); got != 1 {
		t.Fatalf("provider effects = %d, want 1", got)
	}
	r := h.pay("same-key", payment)
	if r.status != http.StatusCreated || r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("after the storm: %d %v", r.status, r.header)
	}
}

func TestBadInputIsRejectedAndWritesNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	big := `{"amount": 1, "currency": "usd", "description": "` + strings.Repeat("x", 70<<10) + `"}`
	tests := []struct {
		name, contentType, key, body string
		status                       int
		problem                      string
	}{
		{"malformed JSON", "application/json", "k1", `{"amount": `, 400, "bad-request"},
		{"wrong types", "application/json", "k2", `{"amount": "12", "currency": "usd"}`, 422, "validation-failed"},
		{"negative amount", "application/json", "k3", `{"amount": -1, "currency": "usd"}`, 422, "validation-failed"},
		{"zero amount", "application/json", "k4", `{"amount": 0, "currency": "usd"}`, 422, "validation-failed"},
		{"huge amount", "application/json", "k5", `{"amount": 1000000000000000, "currency": "usd"}`, 422, "validation-failed"},
		{"unknown currency", "application/json", "k6", `{"amount": 1, "currency": "xyz"}`, 422, "validation-failed"},
		{"oversized body", "application/json", "k7", big, 413, "body-too-large"},
		{"wrong content type", "text/plain", "k8", payment, 415, "unsupported-media-type"},
		{"no content type", "", "k9", payment, 415, "unsupported-media-type"},
		{"missing key", "application/json", "", payment, 400, "bad-request"},
		{"overlong key", "application/json", strings.Repeat("k", 256), payment, 400, "bad-request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do(http.MethodPost, "/api/v1/payments", tt.contentType, tt.key, []byte(tt.body))
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("Content-Type %q", ct)
			}
			p := r.json(t)
			if p["type"] != "urn:spillway:problem:"+tt.problem || p["status"] != float64(tt.status) || p["detail"] == "" {
				t.Fatalf("problem %v", p)
			}
		})
	}
	if n := h.count(`SELECT (SELECT count(*) FROM operations) + (SELECT count(*) FROM river_job)`); n != 0 {
		t.Fatalf("bad input wrote %d rows", n)
	}
	if n := h.sim.TotalEffects(); n != 0 {
		t.Fatalf("bad input reached the provider %d times", n)
	}
}

func TestGetOperationNotFound(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	for _, id := range []string{"00000000-0000-0000-0000-000000000000", "not-a-uuid"} {
		r := h.do(http.MethodGet, "/api/v1/operations/"+id, "", "", nil)
		if r.status != http.StatusNotFound || r.header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("GET %s: %d %s", id, r.status, r.body)
		}
	}
	r := h.do(http.MethodDelete, "/api/v1/payments", "", "", nil)
	if r.status != http.StatusMethodNotAllowed {
		t.Fatalf("DELETE: %d", r.status)
	}
}
