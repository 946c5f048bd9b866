package app_test

import (
	"fmt"
	"testing"

	"github.com/spillway/spillway/app"
)

// order builds the steps of an order of two lines with statuses given in
// step order; "?" is a step whose outcome is unknown.
func order(statuses ...string) []app.Step {
	steps := app.NewOrderSteps([]app.OrderLine{{SKU: "tea", Quantity: 1}, {SKU: "mug", Quantity: 2}})
	for i, st := range statuses {
		if st == "?" {
			steps[i].Status, steps[i].OutcomeUnknown = app.StepProcessing, true
			continue
		}
		steps[i].Status = app.StepStatus(st)
		if steps[i].Status == app.StepDeclined {
			steps[i].Code = declineCode(steps[i])
		}
	}
	return steps
}

// declineCode is the code an order's handlers give a declined step: a
// reservation is out of stock, a charge declined.
func declineCode(s app.Step) string {
	if s.Compensable {
		return "out_of_stock"
	}
	return "declined"
}

// Every outcome of every step, at every position, with the steps before it
// done and those after it not yet called.
func TestNextOrderActionForEveryStepOutcome(t *testing.T) {
	t.Parallel()
	const (
		p   = "pending"
		ok  = "succeeded"
		no  = "declined"
		bad = "failed"
		run = "processing" // a call cut short: no answer, not known to be unknown
		unk = "?"
		rel = "released"
	)
	call := func(i int) app.StepAction { return app.StepAction{Kind: app.ActCall, Step: i} }
	look := func(i int) app.StepAction { return app.StepAction{Kind: app.ActLookUp, Step: i} }
	release := func(i int) app.StepAction { return app.StepAction{Kind: app.ActCompensate, Step: i} }
	finish := func(s app.Status, code string) app.StepAction {
		return app.StepAction{Kind: app.ActFinish, Ending: app.Ending{Status: s, Code: code}}
	}
	tests := []struct {
		steps     []string
		cancelled bool
		want      app.StepAction
	}{
		// Nothing done yet.
		{[]string{p, p, p}, false, call(0)},
		// First reservation.
		{[]string{ok, p, p}, false, call(1)},
		{[]string{no, p, p}, false, finish(app.StatusDeclined, "out_of_stock")},
		{[]string{bad, p, p}, false, finish(app.StatusFailed, "failed")},
		{[]string{run, p, p}, false, call(0)}, // called again under the same key
		{[]string{unk, p, p}, false, look(0)},
		// Second reservation: the first is given back when it does not succeed.
		{[]string{ok, ok, p}, false, call(2)},
		{[]string{ok, no, p}, false, release(0)},
		{[]string{rel, no, p}, false, finish(app.StatusDeclined, "out_of_stock")},
		{[]string{ok, bad, p}, false, release(0)},
		{[]string{rel, bad, p}, false, finish(app.StatusFailed, "failed")},
		{[]string{ok, run, p}, false, call(1)},
		{[]string{ok, unk, p}, false, look(1)},
		// The charge.
		{[]string{ok, ok, ok}, false, finish(app.StatusSucceeded, "")},
		{[]string{ok, ok, no}, false, release(0)},
		{[]string{rel, ok, no}, false, release(1)},
		{[]string{rel, rel, no}, false, finish(app.StatusDeclined, "declined")},
		{[]string{ok, ok, bad}, false, release(0)},
		{[]string{rel, rel, bad}, false, finish(app.StatusFailed, "failed")},
		{[]string{ok, ok, run}, false, call(2)},
		// A charge whose outcome is unknown is never compensated until known.
		{[]string{ok, ok, unk}, false, look(2)},
		{[]string{ok, ok, unk}, true, look(2)},
		// Cancelled by an operator.
		{[]string{p, p, p}, true, finish(app.StatusCancelled, "cancelled")},
		{[]string{ok, p, p}, true, release(0)},
		{[]string{ok, ok, p}, true, release(0)},
		{[]string{rel, ok, p}, true, release(1)},
		{[]string{rel, rel, p}, true, finish(app.StatusCancelled, "cancelled")},
		{[]string{ok, run, p}, true, look(1)},                         // a reservation may have been made: known first
		{[]string{ok, ok, run}, true, look(2)},                        // a charge may have been made: known first
		{[]string{ok, ok, ok}, true, finish(app.StatusSucceeded, "")}, // too late: it was paid
		{[]string{ok, no, p}, true, release(0)},                       // the decline, not the cancel, decides the code
		{[]string{rel, no, p}, true, finish(app.StatusDeclined, "out_of_stock")},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%v cancelled=%v", tt.steps, tt.cancelled)
		if got := app.NextStepAction(order(tt.steps...), tt.cancelled); got != tt.want {
			t.Errorf("%s: %s, want %s", name, got, tt.want)
		}
	}
}

// world plays an order to its end against dependencies whose answers are
// scripted: each call's outcome is the next of outcomes, and a lookup of
// an unknown outcome finds what the call really did (effect) or nothing.
type world struct {
	outcomes []string // per call: succeeded, declined, failed, or unknown:<succeeded|nothing>
	effects  map[string]int
	released map[string]int
	actions  int
}

func (w *world) play(t *testing.T, steps []app.Step, cancelAfter int) app.Ending {
	t.Helper()
	real := map[int]string{} // what an unknown call really did, by step
	for {
		w.actions++
		if w.actions > 100 {
			t.Fatalf("the order never ends: %+v", steps)
		}
		a := app.NextStepAction(steps, cancelAfter >= 0 && w.actions > cancelAfter)
		switch a.Kind {
		case app.ActCall:
			s := &steps[a.Step]
			if len(w.outcomes) == 0 {
				t.Fatalf("step %s called with no outcome left", s.Name)
			}
			o := w.outcomes[0]
			w.outcomes = w.outcomes[1:]
			s.Attempts++
			switch o {
			case "succeeded":
				w.effects[s.Name]++
				s.Status = app.StepSucceeded
			case "declined":
				s.Status, s.Code = app.StepDeclined, declineCode(*s)
			case "failed":
				s.Status = app.StepFailed
			case "unknown:succeeded":
				w.effects[s.Name]++
				s.Status, s.OutcomeUnknown, real[a.Step] = app.StepProcessing, true, "succeeded"
			case "unknown:nothing":
				s.Status, s.OutcomeUnknown, real[a.Step] = app.StepProcessing, true, "nothing"
			}
		case app.ActLookUp:
			s := &steps[a.Step]
			// A lookup that finds nothing closes the key: the step failed
			// for good, and nothing can happen under it any more.
			s.OutcomeUnknown = false
			if real[a.Step] == "succeeded" {
				s.Status = app.StepSucceeded
			} else {
				s.Status = app.StepFailed
			}
		case app.ActCompensate:
			s := &steps[a.Step]
			for _, u := range steps {
				if u.OutcomeUnknown {
					t.Fatalf("released %s while %s's outcome was unknown", s.Name, u.Name)
				}
			}
			w.released[s.Name]++
			s.Status = app.StepReleased
		case app.ActFinish:
			return a.Ending
		}
	}
}

// Every combination of call outcomes, for an order of two lines, played to
// its end: every reservation that took effect is released exactly once
// unless the order succeeded, nothing is charged after an out-of-stock
// line, and the order ends as its first failing step says.
func TestOrderPlaysEveryOutcomeToAnEnd(t *testing.T) {
	t.Parallel()
	outcomes := []string{"succeeded", "declined", "failed", "unknown:succeeded", "unknown:nothing"}
	var scripts [][]string
	var build func(prefix []string)
	build = func(prefix []string) {
		if len(prefix) == 3 {
			scripts = append(scripts, append([]string(nil), prefix...))
			return
		}
		for _, o := range outcomes {
			build(append(prefix, o))
		}
	}
	build(nil)
	for _, script := range scripts {
		for _, cancelAfter := range []int{-1, 1, 2, 3} {
			name := fmt.Sprintf("%v cancel after %d", script, cancelAfter)
			w := &world{outcomes: script, effects: map[string]int{}, released: map[string]int{}}
			steps := app.NewOrderSteps([]app.OrderLine{{SKU: "tea", Quantity: 1}, {SKU: "mug", Quantity: 2}})
			end := w.play(t, steps, cancelAfter)
			charged := w.effects[app.StepCharge] > 0
			for _, s := range steps {
				if !s.Compensable {
					continue
				}
				made, released := w.effects[s.Name], w.released[s.Name]
				switch {
				case made > 1:
					t.Errorf("%s: %s reserved %d times", name, s.Name, made)
				case end.Status == app.StatusSucceeded && released != 0:
					t.Errorf("%s: succeeded, yet %s was released", name, s.Name)
				case end.Status != app.StatusSucceeded && released != made:
					t.Errorf("%s: ended %s with %s reserved %d and released %d times", name, end.Status, s.Name, made, released)
				}
			}
			if charged != (end.Status == app.StatusSucceeded) {
				t.Errorf("%s: ended %+v, charged %v", name, end, charged)
			}
			if end.Code == "out_of_stock" && w.effects[app.StepCharge]+steps[2].Attempts > 0 {
				t.Errorf("%s: out of stock, yet the charge was tried", name)
			}
			if end.Status != app.StatusSucceeded && end.Code == "" {
				t.Errorf("%s: ended %s with no error code", name, end.Status)
			}
		}
	}
}

func TestStepKeysAreDistinctPerStep(t *testing.T) {
	t.Parallel()
	id := app.OperationID("orders", "k-1")
	keys := map[string]bool{}
	for _, s := range app.NewOrderSteps([]app.OrderLine{{SKU: "tea", Quantity: 1}, {SKU: "mug", Quantity: 1}}) {
		k := app.StepKey(id, s.Name)
		if keys[k] {
			t.Fatalf("key %s used twice", k)
		}
		keys[k] = true
	}
	if app.StepKey(id, "charge") != app.StepKey(app.OperationID("orders", "k-1"), "charge") {
		t.Fatal("a step's key is not derived from the order and the step alone")
	}
}
