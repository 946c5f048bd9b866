package service_test

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/apptest"
	"github.com/spillway/spillway/app/sim"
	"github.com/spillway/spillway/app/tracing/jaegertest"
	"github.com/spillway/spillway/cmd/spillway/service/servicetest"
)

// A captured payment's story is one trace in a real Jaeger: the request's
// server span → the runner → the capture → the job's first attempt (a
// child: the traceparent went into the job's metadata) → its provider
// call, with the database's queries inside. The retry that succeeds is a
// trace of its own with a span link back to the first, and holds the
// webhook delivery, whose request carries that trace's traceparent.
func TestCapturedPaymentIsOneTraceAndItsRetryLinksBack(t *testing.T) {
	j := jaegertest.Start(t)
	hooks := &webhookReceiver{}
	receiver := httptest.NewServer(hooks)
	t.Cleanup(receiver.Close)
	p := servicetest.New(t, servicetest.Options{Workers: 2, OwnAdapters: true, Configure: func(c *app.Config) {
		c.Traces = app.TracesConfig{URL: j.TracesURL, ServiceName: "spillway-test"}
		c.WebhookSecret, c.WebhookAllowPrivate = "whsec_"+"dGVzdHNlY3JldHRlc3RzZWNyZXR0ZXN0c2VjcmV0", true
	}})
	// Down: the sync call fails and the request is captured; the first
	// attempt fails too, so that a retry follows.
	p.Sim.SetChaos(sim.Chaos{Down: true})

	traceID, parent := newID(16), newID(8)
	req, err := http.NewRequest(http.MethodPost, p.URL+"/api/v1/payments", strings.NewReader(
		`{"amount": 1999, "currency": "usd", "callback_url": "`+receiver.URL+`/hook"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "trace-1")
	// The caller's trace: the server continues it, so the test knows the
	// trace id to ask Jaeger for.
	req.Header.Set("traceparent", "00-"+traceID+"-"+parent+"-01")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("payment answered %d, want 202 (captured)", res.StatusCode)
	}
	id := servicetest.ProviderKey("trace-1")
	waitFor(t, "the first attempt to fail", func() bool {
		return p.Count(`SELECT count(*) FROM river_job WHERE args->>'operation_id' = $1 AND cardinality(errors) >= 1`, id) == 1
	}, func() string {
		var state string
		var attempt int
		_ = p.Pool.QueryRow(context.Background(), `SELECT state, attempt FROM river_job WHERE args->>'operation_id' = $1`, id).Scan(&state, &attempt)
		return fmt.Sprintf("job %s at attempt %d", state, attempt)
	})
	p.Sim.SetChaos(sim.Chaos{})
	p.WaitStatus(id, app.StatusSucceeded)
	waitFor(t, "the webhook", hooks.received, nil)
	// Its job's span ends once the delivery is recorded: all of it is
	// flushed below.
	waitFor(t, "the delivery job to complete", func() bool {
		return p.Count(`SELECT count(*) FROM river_job WHERE kind = 'delivery' AND state = 'completed'`) == 1
	}, nil)
	if err := p.Service.Tracing().ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}

	// The first trace: request → capture → attempt 1 → provider call.
	var story jaegertest.Trace
	var missing string
	waitFor(t, "the captured request's story in Jaeger", func() bool {
		tr, found, err := j.Get(context.Background(), traceID)
		if err != nil {
			t.Fatal(err)
		}
		story, missing = tr, checkStory(tr, parent)
		return found && missing == ""
	}, func() string { return "missing: " + missing + "\n" + describe(story) })
	t.Logf("trace %s:\n%s", traceID, describe(story))

	// The retry: a trace of its own, linked to the first, holding the
	// webhook's delivery.
	var retry jaegertest.Trace
	waitFor(t, "the retry's trace, linked to the first", func() bool {
		trs, err := j.Find(context.Background(), "spillway-test", "river.work/payment")
		if err != nil {
			t.Fatal(err)
		}
		for _, tr := range trs {
			for _, s := range tr.Spans {
				if s.OperationName == "river.work/payment" && s.TraceID != traceID && linksTo(s, traceID) &&
					hasSpan(tr, "river.work/delivery") && hasSpan(tr, "deliver webhook") {
					retry = tr
					return true
				}
			}
		}
		return false
	}, func() string {
		trs, _ := j.Find(context.Background(), "spillway-test", "")
		var b strings.Builder
		for _, tr := range trs {
			fmt.Fprintf(&b, "trace %s:\n%s", tr.TraceID, describe(tr))
		}
		return "the service's traces:\n" + b.String()
	})
	t.Logf("retry trace %s:\n%s", retry.TraceID, describe(retry))
	if tp := hooks.traceparent(); !strings.HasPrefix(tp, "00-"+retry.TraceID+"-") {
		t.Errorf("webhook traceparent %q, want one in the retry's trace %s", tp, retry.TraceID)
	}
}

// checkStory says what the first trace lacks, "" when nothing: the chain
// from the caller's span to the provider call of attempt 1.
func checkStory(tr jaegertest.Trace, callerSpan string) string {
	byID := map[string]jaegertest.Span{}
	for _, s := range tr.Spans {
		byID[s.SpanID] = s
	}
	// under reports whether s descends from a span named name.
	under := func(s jaegertest.Span, name string) bool {
		for p := s.Parent(); p != ""; p = byID[p].Parent() {
			if byID[p].OperationName == name {
				return true
			}
		}
		return false
	}
	find := func(name string, ok func(jaegertest.Span) bool) bool {
		for _, s := range tr.Spans {
			if s.OperationName == name && ok(s) {
				return true
			}
		}
		return false
	}
	steps := []struct {
		what string
		ok   bool
	}{
		{"the server span POST /api/v1/payments, child of the caller's", find("POST /api/v1/payments", func(s jaegertest.Span) bool { return s.Parent() == callerSpan })},
		{"runner.submit under the server span", find("runner.submit", func(s jaegertest.Span) bool { return under(s, "POST /api/v1/payments") })},
		{"the sync provider call under runner.submit", find("payment POST", func(s jaegertest.Span) bool { return byID[s.Parent()].OperationName == "runner.submit" })},
		{"runner.capture under runner.submit", find("runner.capture", func(s jaegertest.Span) bool { return under(s, "runner.submit") })},
		{"a query under the runner", find("db batch", func(s jaegertest.Span) bool { return under(s, "runner.submit") })},
		{"attempt 1 (river.work/payment) under runner.capture", find("river.work/payment", func(s jaegertest.Span) bool {
			return s.Tag("river.job.attempt") == "1" && under(s, "runner.capture")
		})},
		{"the attempt's provider call", find("payment POST", func(s jaegertest.Span) bool { return under(s, "river.work/payment") })},
	}
	var missing []string
	for _, s := range steps {
		if !s.ok {
			missing = append(missing, s.what)
		}
	}
	return strings.Join(missing, "; ")
}

func linksTo(s jaegertest.Span, traceID string) bool {
	for _, l := range s.Links() {
		if l.TraceID == traceID {
			return true
		}
	}
	return false
}

func hasSpan(tr jaegertest.Trace, name string) bool {
	for _, s := range tr.Spans {
		if s.OperationName == name {
			return true
		}
	}
	return false
}

// describe lists a trace's spans as a tree, for the log.
func describe(tr jaegertest.Trace) string {
	kids := map[string][]jaegertest.Span{}
	ids := map[string]bool{}
	for _, s := range tr.Spans {
		ids[s.SpanID] = true
	}
	var roots []jaegertest.Span
	spans := slices.Clone(tr.Spans)
	slices.SortFunc(spans, func(a, b jaegertest.Span) int { return cmp.Compare(a.StartTime, b.StartTime) })
	for _, s := range spans {
		if p := s.Parent(); p != "" && ids[p] {
			kids[p] = append(kids[p], s)
		} else {
			roots = append(roots, s)
		}
	}
	var b strings.Builder
	var walk func(s jaegertest.Span, depth int)
	walk = func(s jaegertest.Span, depth int) {
		fmt.Fprintf(&b, "%s%s", strings.Repeat("  ", depth), s.OperationName)
		if a := s.Tag("river.job.attempt"); a != "" {
			fmt.Fprintf(&b, " (attempt %s)", a)
		}
		for _, l := range s.Links() {
			fmt.Fprintf(&b, " [link → trace %s span %s]", l.TraceID, l.SpanID)
		}
		b.WriteString("\n")
		for _, k := range kids[s.SpanID] {
			walk(k, depth+1)
		}
	}
	for _, r := range roots {
		walk(r, 0)
	}
	return b.String()
}

// webhookReceiver answers every webhook 200 and keeps the first one's
// traceparent.
type webhookReceiver struct {
	mu  sync.Mutex
	got bool
	tp  string
}

func (h *webhookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	if !h.got {
		h.got, h.tp = true, r.Header.Get("traceparent")
	}
	h.mu.Unlock()
}

func (h *webhookReceiver) received() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.got
}

func (h *webhookReceiver) traceparent() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.tp
}

// waitFor polls cond for up to apptest.Patience; why, when set, says
// what was seen last.
func waitFor(t *testing.T, what string, cond func() bool, why func() string) {
	t.Helper()
	deadline := time.Now().Add(apptest.Patience)
	for !cond() {
		if time.Now().After(deadline) {
			msg := ""
			if why != nil {
				msg = ": " + why()
			}
			t.Fatalf("timed out waiting for %s%s", what, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func newID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
