package app_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/apptest"
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
		Store: db.NewStore(pool), Jobs: rc, Kinds: apptest.PaymentKinds(t, prov), Deadline: deadline, CaptureTimeout: guard,
		SyncLimit: 1, MaxAttempts: 5, Metrics: app.NewMetrics(reg), Now: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := app.ParsePaymentRequest([]byte(`{"amount": 1200, "currency": "usd"}`))

	out, err := r.Submit(context.Background(), app.KindPayment, "stepped-1", req)
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

// A charge answered for another request under the key (another amount)
// is a conflict, whatever the provider called it: the request is refused
// with key reuse, nothing is recorded, and the provider's health is not
// judged by it.
func TestAnotherRequestsAnswerUnderTheKeyIsAConflict(t *testing.T) {
	t.Parallel()
	prov := &fakeProvider{result: func(c app.Charge) (app.ChargeResult, error) {
		return app.ChargeResult{ProviderRef: "ch_1", Amount: c.Amount + 1, Currency: c.Currency}, nil
	}}
	pool := dbtest.New(t)
	rc, err := jobs.NewClient(jobs.Config{Pool: pool})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	r, err := app.NewRunner(app.RunnerConfig{Store: db.NewStore(pool), Jobs: rc, Kinds: apptest.PaymentKinds(t, prov),
		Deadline: guard, CaptureTimeout: guard, SyncLimit: 1, MaxAttempts: 5, Metrics: app.NewMetrics(reg)})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := app.ParsePaymentRequest([]byte(`{"amount": 300, "currency": "eur"}`))
	if _, err := r.Submit(context.Background(), app.KindPayment, "conflict-1", req); app.ErrorCode(err) != app.EKEYREUSED {
		t.Fatalf("err = %v, want key reuse", err)
	}
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM operations`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("operations recorded: %d (%v), want none", n, err)
	}
	if _, n := callSeconds(t, reg, "sync"); n != 1 {
		t.Fatalf("sync samples = %d, want 1", n)
	}
}

// A payment's one step through the state machine: an outcome we do not
// know is settled by charging again under the same key (the provider
// replays its first answer), except under a cancel, which must never
// charge, so it looks up; a charge's answer ends the payment.
func TestNextPaymentActionForEveryChargeOutcome(t *testing.T) {
	t.Parallel()
	charge := func(st app.StepStatus, unknown bool) []app.Step {
		s := app.NewPaymentSteps()
		s[0].Status, s[0].OutcomeUnknown = st, unknown
		return s
	}
	call := app.StepAction{Kind: app.ActCall}
	look := app.StepAction{Kind: app.ActLookUp}
	finish := func(s app.Status, code string) app.StepAction {
		return app.StepAction{Kind: app.ActFinish, Ending: app.Ending{Status: s, Code: code}}
	}
	tests := []struct {
		name      string
		steps     []app.Step
		cancelled bool
		want      app.StepAction
	}{
		{"not yet called", charge(app.StepPending, false), false, call},
		{"cut short without an answer", charge(app.StepProcessing, false), false, call},
		{"unknown: replay under the key", charge(app.StepProcessing, true), false, call},
		{"unknown and cancelled: look up, never charge", charge(app.StepProcessing, true), true, look},
		{"charged", charge(app.StepSucceeded, false), false, finish(app.StatusSucceeded, "")},
		{"charged, cancel too late", charge(app.StepSucceeded, false), true, finish(app.StatusSucceeded, "")},
		{"declined", charge(app.StepDeclined, false), false, finish(app.StatusDeclined, "declined")},
		{"failed for good", charge(app.StepFailed, false), false, finish(app.StatusFailed, "failed")},
	}
	for _, tt := range tests {
		if got := app.NextStepAction(tt.steps, tt.cancelled); got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, got, tt.want)
		}
	}
}

// A payment ends in the payment contract's terms, whatever path its charge
// took: the result carries the provider's reference and decline code, and
// the document lists no steps.
func TestPaymentEndsInThePaymentContractsTerms(t *testing.T) {
	t.Parallel()
	k, err := app.NewPaymentKind(app.PaymentKindConfig{Provider: &fakeProvider{}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		step       app.Step
		ending     app.Ending
		wantResult string
		wantError  string
	}{
		{"succeeded", app.Step{Status: app.StepSucceeded, Ref: "ch_1"}, app.Ending{Status: app.StatusSucceeded},
			`{"provider_ref":"ch_1"}`, ""},
		{"declined", app.Step{Status: app.StepDeclined, Ref: "ch_2", Code: "card_declined"},
			app.Ending{Status: app.StatusDeclined, Code: "card_declined"}, `{"provider_ref":"ch_2","decline_code":"card_declined"}`, ""},
		{"rejected", app.Step{Status: app.StepFailed, Code: "rejected"}, app.Ending{Status: app.StatusFailed, Code: "failed"},
			"", "rejected"},
		{"out of attempts", app.Step{Status: app.StepFailed, Code: "attempts_exhausted", Attempts: 4},
			app.Ending{Status: app.StatusFailed, Code: "failed"}, "", "attempts_exhausted"},
	}
	for _, tt := range tests {
		op := &app.Operation{Kind: app.KindPayment, Steps: []app.Step{tt.step}, Payment: app.PaymentRequest{Amount: 100, Currency: "usd"}}
		op.Steps[0].Name, op.Steps[0].Dependency = app.StepCharge, app.DepPayment
		op.ApplyEnding(k, tt.ending, now)
		doc := op.Document()
		if string(doc.Result) != tt.wantResult || doc.Steps != nil || doc.Status != tt.ending.Status {
			t.Errorf("%s: status %s, result %s, steps %v; want %s, %s and none", tt.name, doc.Status, doc.Result, doc.Steps,
				tt.ending.Status, tt.wantResult)
		}
		var code string
		if doc.Error != nil {
			code = doc.Error.Code
		}
		if code != tt.wantError {
			t.Errorf("%s: error %q, want %q", tt.name, code, tt.wantError)
		}
	}
}
