package app_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/db/dbtest"
	"github.com/spillway/spillway/jobs"
)

// fakeProvider answers charges at once, after running during (while the
// call is out).
type fakeProvider struct {
	during func(ctx context.Context)
	result func(c app.Charge) (app.ChargeResult, error)
}

func (p *fakeProvider) Charge(ctx context.Context, c app.Charge) (app.ChargeResult, error) {
	if p.during != nil {
		p.during(ctx)
	}
	if p.result != nil {
		return p.result(c)
	}
	return app.ChargeResult{ProviderRef: "ch_" + c.IdempotencyKey, Amount: c.Amount, Currency: c.Currency}, nil
}

func (p *fakeProvider) Lookup(context.Context, string) (app.ChargeLookup, error) {
	return app.ChargeLookup{}, errors.New("not used")
}

func (p *fakeProvider) ListCharges(context.Context, time.Time, string, int) (app.ChargePage, error) {
	return app.ChargePage{}, errors.New("not used")
}

func (p *fakeProvider) Refund(context.Context, string, string) (app.RefundResult, error) {
	return app.RefundResult{}, errors.New("not used")
}

// callSeconds is the sum and count of the provider-call latency samples
// for path.
func callSeconds(t *testing.T, reg *prometheus.Registry, path string) (sum float64, n uint64) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "spillway_provider_call_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "path" && l.GetValue() == path {
					sum += m.GetHistogram().GetSampleSum()
					n += m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return sum, n
}

// The injected clock stamps operations, and a step of it (an NTP
// correction) shows in the stamps; but the call's deadline and its
// measured latency (what the metric records and the breaker judges
// slowness by) are elapsed time on the monotonic clock, which the step
// does not move.
func TestWallClockStepsMoveNeitherTheDeadlineNorTheMeasuredCall(t *testing.T) {
	t.Parallel()
	const deadline = 30 * time.Second
	// A wall clock NTP, or an operator, can step; like one read back from
	// a stepped wall, its readings carry no monotonic reading.
	clk := &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)}
	var left []time.Duration
	prov := &fakeProvider{during: func(ctx context.Context) {
		dl, ok := ctx.Deadline()
		if !ok {
			t.Error("the provider call has no deadline")
		}
		left = append(left, time.Until(dl))
		clk.Advance(time.Hour) // forward...
		clk.Advance(-3 * time.Hour)
		clk.Advance(time.Hour) // ...and back: an hour behind now
	}}
	pool := dbtest.New(t)
	rc, err := jobs.NewClient(jobs.Config{Pool: pool, Provider: prov, CallTimeout: guard})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	r, err := app.NewRunner(app.RunnerConfig{
		Store: db.NewStore(pool), Jobs: rc, Provider: prov, Deadline: deadline, CaptureTimeout: guard,
		SyncLimit: 1, MaxAttempts: 5, Metrics: app.NewMetrics(reg), Dependency: "provider", Now: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := app.ParsePaymentRequest([]byte(`{"amount": 1200, "currency": "usd"}`))

	out, err := r.SubmitPayment(context.Background(), "stepped-1", req)
	if err != nil || out.Document.Status != app.StatusSucceeded {
		t.Fatalf("got %v %+v, want succeeded", err, out)
	}
	if len(left) != 1 || left[0] <= 0 || left[0] > deadline {
		t.Fatalf("time left to the call's deadline = %v, want within (0, %v]", left, deadline)
	}
	// A call that took microseconds: not the hours the wall clock moved.
	if sum, n := callSeconds(t, reg, "sync"); n != 1 || sum < 0 || sum >= guard.Seconds() {
		t.Fatalf("measured call: %d samples, %.3fs in all; want 1, well under %v", n, sum, guard)
	}
	// The stamps are the injected clock's, as rows keep them.
	doc := out.Document
	start := time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)
	if !doc.CreatedAt.Equal(start) || doc.CompletedAt == nil || !doc.CompletedAt.Equal(start.Add(-time.Hour)) {
		t.Fatalf("stamps: created %v, completed %v; want %v and an hour before it", doc.CreatedAt, doc.CompletedAt, start)
	}
}

// Both paths classify the same way: an answer for another request under
// the key is a conflict, whatever the provider called it.
func TestChargeCallTakesAnotherRequestsAnswerForAConflict(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	c := &app.ChargeCaller{Dependency: "provider", Path: "async", Metrics: app.NewMetrics(reg),
		Provider: &fakeProvider{
			during: func(context.Context) { time.Sleep(5 * time.Millisecond) },
			result: func(c app.Charge) (app.ChargeResult, error) {
				return app.ChargeResult{ProviderRef: "ch_1", Amount: c.Amount + 1, Currency: c.Currency}, nil
			},
		}}
	req, _ := app.ParsePaymentRequest([]byte(`{"amount": 300, "currency": "eur"}`))
	op := &app.Operation{Kind: app.KindPayment, Payment: req}
	call := c.Call(context.Background(), op, &app.Permit{}, time.Minute)
	if call.Err == nil || call.Err.Kind != app.FaultConflict || call.Err.Fault() {
		t.Fatalf("err = %v, want a conflict that is no fault of the provider", call.Err)
	}
	if call.Elapsed < 5*time.Millisecond || call.Elapsed >= guard {
		t.Fatalf("elapsed = %v, want the call's own 5ms and more", call.Elapsed)
	}
	if _, n := callSeconds(t, reg, "async"); n != 1 {
		t.Fatalf("async samples = %d, want 1", n)
	}
}
