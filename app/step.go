package app

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// StepStatus is where one step of an operation is. Released is a
// compensable step whose effect was undone (its compensation done).
type StepStatus string

const (
	StepPending    StepStatus = "pending"
	StepProcessing StepStatus = "processing"
	StepSucceeded  StepStatus = "succeeded"
	StepDeclined   StepStatus = "declined" // the dependency said no (out of stock, the charge declined)
	StepFailed     StepStatus = "failed"   // failed for good: nothing happened under its key
	StepReleased   StepStatus = "released"
)

// Step is one call an operation of a step kind makes, with its own
// idempotency key (StepKey). The kind decides the steps when the operation
// is recorded; the state machine (NextStepAction) and the engine
// (StepCalls) only read and write these fields.
type Step struct {
	// Name is <type> or <type>:<detail> (reserve:sku-tea, charge); the
	// type picks the kind's handler.
	Name       string     `json:"name"`
	Dependency string     `json:"dependency"`
	Status     StepStatus `json:"status"`
	Mode       Mode       `json:"mode,omitempty"`
	Attempts   int        `json:"attempts"`
	// Compensable steps are undone, once each, when a later step does not
	// succeed or the operation is cancelled.
	Compensable bool `json:"compensable,omitempty"`
	// OutcomeUnknown: the step's latest call timed out or lost its
	// connection after it may have been sent, so it may have taken effect.
	// Until a lookup says what happened, nothing after it runs and nothing
	// before it is compensated.
	OutcomeUnknown bool `json:"outcome_unknown,omitempty"`
	// AttemptedAt is when the step's latest call started: a lookup that
	// finds nothing and cannot close the key is believed only well after
	// it (LookupSettle).
	AttemptedAt *time.Time `json:"attempted_at,omitempty"`
	// Ref is the dependency's id for what the step did: a reservation's
	// id (what a release names) or a charge's.
	Ref string `json:"ref,omitempty"`
	// Code is why a declined step was declined (out_of_stock, declined),
	// or why a failed one failed (rejected, attempts_exhausted).
	Code string `json:"code,omitempty"`
	// Replays: the dependency answers a repeated call under the step's key
	// with the first call's answer (a payment provider's idempotency), so
	// an outcome we do not know is settled by calling again under the same
	// key rather than by a lookup, unless the operation is being cancelled
	// or its worker judges the key may be forgotten (KEY_RETENTION).
	Replays bool `json:"replays,omitempty"`
}

// Type is the part of the step's name that picks its handler.
func (s Step) Type() string {
	t, _, _ := strings.Cut(s.Name, ":")
	return t
}

// StepDocument is a step as clients see it (DESIGN.md, Orders).
type StepDocument struct {
	Name       string     `json:"name"`
	Dependency string     `json:"dependency"`
	Status     StepStatus `json:"status"`
	Mode       Mode       `json:"mode,omitempty"`
	Attempts   int        `json:"attempts"`
}

// StepKey is the idempotency key of one step's call: derived from the
// operation and the step alone, so every attempt of the step, sync or
// async, in any process, carries the same key and the step takes effect
// once. A compensation needs none: it names what the step did (its Ref),
// and undoing it twice is undoing it once.
func StepKey(op uuid.UUID, step string) string { return op.String() + ":" + step }

// Ending is how a finished operation of a step kind ended, and the error
// code a failed one reports.
type Ending struct {
	Status Status
	Code   string // "", the declining step's code, failed or cancelled
}

// ActionKind is what an operation of a step kind needs done next.
type ActionKind int

const (
	// ActCall: call step Step.
	ActCall ActionKind = iota + 1
	// ActLookUp: step Step's outcome is unknown; ask its dependency
	// before anything else happens.
	ActLookUp
	// ActCompensate: undo what step Step did.
	ActCompensate
	// ActFinish: the operation is over; Ending says how.
	ActFinish
)

// StepAction is the next thing an operation needs, as NextStepAction
// decides it.
type StepAction struct {
	Kind   ActionKind
	Step   int
	Ending Ending
}

func (a StepAction) String() string {
	switch a.Kind {
	case ActCall:
		return fmt.Sprintf("call %d", a.Step)
	case ActLookUp:
		return fmt.Sprintf("look up %d", a.Step)
	case ActCompensate:
		return fmt.Sprintf("compensate %d", a.Step)
	case ActFinish:
		if a.Ending.Code != "" {
			return fmt.Sprintf("finish %s (%s)", a.Ending.Status, a.Ending.Code)
		}
		return fmt.Sprintf("finish %s", a.Ending.Status)
	}
	return "nothing"
}

// NextStepAction decides an operation's next action from its steps alone;
// cancelled says an operator cancelled it. It is the whole state machine of
// every step kind, and every path through an operation (the sync runner, a
// worker after a capture, an operator) follows it:
//
//   - An unknown outcome comes first: it is looked up (or, for a step whose
//     dependency replays, called again under its key) before any later step
//     runs and before anything is compensated, since releasing stock for a
//     charge that went through would sell it twice.
//   - A step that did not succeed (declined, or failed for good), or a
//     cancel, turns the operation into compensation: every compensable
//     step that took effect is undone, one at a time, each exactly once and
//     retried until it is; only then does the operation end.
//   - Otherwise the first step not yet done is called (again, under the
//     same key, if an earlier call of it was cut short); when all are done
//     the operation has succeeded, and a cancel that comes too late changes
//     nothing: the customer has what was paid for.
func NextStepAction(steps []Step, cancelled bool) StepAction {
	for i, s := range steps {
		switch {
		case s.OutcomeUnknown && s.Replays && !cancelled:
			return StepAction{Kind: ActCall, Step: i}
		case s.OutcomeUnknown:
			return StepAction{Kind: ActLookUp, Step: i}
		}
	}
	done := true
	for _, s := range steps {
		done = done && s.Status == StepSucceeded
	}
	if done {
		return StepAction{Kind: ActFinish, Ending: Ending{Status: StatusSucceeded}}
	}
	ending, ok := stepsEnding(steps, cancelled)
	if !ok {
		for i, s := range steps {
			if s.Status != StepSucceeded {
				return StepAction{Kind: ActCall, Step: i}
			}
		}
	}
	// Ending: a step still processing was cut short (a crash, a cancel
	// between attempts) and may have taken effect; it is known before
	// anything is undone.
	for i, s := range steps {
		if s.Status == StepProcessing {
			return StepAction{Kind: ActLookUp, Step: i}
		}
	}
	for i, s := range steps {
		if s.Compensable && s.Status == StepSucceeded {
			return StepAction{Kind: ActCompensate, Step: i}
		}
	}
	return StepAction{Kind: ActFinish, Ending: ending}
}

// stepsEnding says whether the operation has failed, and how, so that what
// remains is compensation: the first step that did not succeed decides
// the code, and an operator's cancel counts only when no step did.
func stepsEnding(steps []Step, cancelled bool) (Ending, bool) {
	for _, s := range steps {
		switch s.Status {
		case StepDeclined:
			code := s.Code
			if code == "" {
				code = "declined"
			}
			return Ending{Status: StatusDeclined, Code: code}, true
		case StepFailed:
			return Ending{Status: StatusFailed, Code: "failed"}, true
		}
	}
	if cancelled {
		return Ending{Status: StatusCancelled, Code: "cancelled"}, true
	}
	return Ending{}, false
}

// StepsMayHaveActed reports whether any step may have taken effect: it
// succeeded, or its outcome is unknown. A 503 then must not say nothing
// was done.
func StepsMayHaveActed(steps []Step) bool {
	for _, s := range steps {
		if s.OutcomeUnknown || s.Status == StepSucceeded || s.Status == StepProcessing {
			return true
		}
	}
	return false
}

// TrackUnknown keeps the operation's unknown-outcome mark in step with its
// steps': set from the first step whose outcome we do not know, cleared
// when none is left. While it is set the operation may have taken effect
// somewhere, so nothing reports it failed or cancelled (MayHaveCharged).
func (o *Operation) TrackUnknown(now time.Time) {
	unknown := false
	for _, s := range o.Steps {
		unknown = unknown || s.OutcomeUnknown
	}
	switch {
	case unknown:
		if o.OutcomeUnknownSince == nil {
			o.OutcomeUnknownSince = &now
		}
		o.Reason = ReasonOutcomeUnknown
	default:
		o.OutcomeUnknownSince = nil
	}
}

// ApplyEnding ends an operation of kind k as NextStepAction decided, once
// everything it must undo has been undone.
func (o *Operation) ApplyEnding(k *StepKind, e Ending, now time.Time) {
	o.OutcomeUnknownSince = nil
	if k.Finish != nil {
		k.Finish(o, e, now)
		return
	}
	msg := k.describe(e)
	switch e.Status {
	case StatusSucceeded:
		o.Error = nil
		var result any
		if k.Result != nil {
			result = k.Result(o)
		}
		o.complete(StatusSucceeded, result, now)
	case StatusDeclined:
		o.Error = &OperationError{Code: e.Code, Message: msg}
		o.complete(StatusDeclined, nil, now)
	case StatusCancelled:
		o.Cancel(msg, now)
	default:
		o.Fail(e.Code, msg, now)
	}
}
