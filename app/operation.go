package app

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Status is where an operation is in its life. The last four are terminal.
type Status string

const (
	StatusQueued     Status = "queued"
	StatusProcessing Status = "processing"
	StatusSucceeded  Status = "succeeded"
	StatusDeclined   Status = "declined"
	StatusFailed     Status = "failed"
	StatusCancelled  Status = "cancelled"
)

// Terminal reports whether no further work will change the operation.
func (s Status) Terminal() bool {
	switch s {
	case StatusSucceeded, StatusDeclined, StatusFailed, StatusCancelled:
		return true
	}
	return false
}

// Mode says how an operation was completed or is being completed.
type Mode string

const (
	ModeSync  Mode = "sync"
	ModeAsync Mode = "async"
)

// Reason says why a request was captured for async processing.
type Reason string

const (
	ReasonTimeout       Reason = "timeout"
	ReasonProviderError Reason = "provider_error"
	ReasonBreakerOpen   Reason = "breaker_open"
	ReasonOverloaded    Reason = "overloaded"
	ReasonDeferred      Reason = "deferred"
	// ReasonOutcomeUnknown: an attempt timed out or lost its connection
	// after the request was sent, so it may have taken effect. The
	// operation stays processing until the provider says what happened.
	ReasonOutcomeUnknown Reason = "outcome_unknown"
)

// KindPayment is the kind of POST /api/v1/payments: one charge at the
// payment dependency (payment_kind.go).
const KindPayment = "payment"

// Operation is one business request a client made, tracked from capture to
// its terminal status. Its ID is also the idempotency key every provider
// call carries.
type Operation struct {
	ID       uuid.UUID
	Kind     string
	Status   Status
	Mode     Mode
	Reason   Reason // set when Mode is async
	Attempts int    // provider calls made, sync and async
	Priority int    // River priority the job was (or would be) inserted at
	Payment  PaymentRequest
	// Steps are the operation's calls (StepKind); a payment's one step is
	// its charge. Lines are an order's priced lines.
	Steps []Step
	Lines []PricedLine
	// CancelRequestedAt is when an operator asked to cancel an operation
	// of a step kind: its worker undoes what its steps did, then ends it
	// cancelled (or, if the last step already took effect, succeeded).
	CancelRequestedAt *time.Time
	JobID             int64 // River job id when captured async
	// KeyGen counts the provider keys this operation has used; see
	// ProviderKey.
	KeyGen int
	// OutcomeUnknownSince is when the first attempt whose outcome we do not
	// know was made; nil when every attempt's outcome is known. While it is
	// set, the operation may have been charged: it is never failed or
	// cancelled until a lookup says nothing happened.
	OutcomeUnknownSince *time.Time
	// AttemptedAt is when the latest provider call started.
	AttemptedAt *time.Time
	Result      json.RawMessage
	Error       *OperationError
	CreatedAt   time.Time
	UpdatedAt   time.Time
	CompletedAt *time.Time
}

// OperationError is the last failure an operation saw, as clients see it.
type OperationError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// PaymentResult is what a succeeded or declined payment reports.
type PaymentResult struct {
	ProviderRef string `json:"provider_ref,omitempty"`
	DeclineCode string `json:"decline_code,omitempty"`
}

// OperationDocument is the public JSON shape of an operation (DESIGN.md,
// GET /api/v1/operations/{id}). It is also what an idempotent replay sends
// back, frozen as it was when first answered.
type OperationDocument struct {
	ID          string          `json:"id"`
	Kind        string          `json:"kind"`
	Status      Status          `json:"status"`
	Mode        Mode            `json:"mode"`
	Reason      Reason          `json:"reason,omitempty"`
	Attempts    int             `json:"attempts"`
	Priority    int             `json:"priority"`
	Amount      int64           `json:"amount"`
	Currency    string          `json:"currency"`
	Description string          `json:"description,omitempty"`
	CreatedAt   time.Time       `json:"created_at"`
	CompletedAt *time.Time      `json:"completed_at"`
	Result      json.RawMessage `json:"result,omitempty"`
	Error       *OperationError `json:"error,omitempty"`
	// Lines and Steps are an order's, Steps any step kind's.
	Lines []PricedLine   `json:"lines,omitempty"`
	Steps []StepDocument `json:"steps,omitempty"`
}

// Document returns the operation's public representation.
func (o *Operation) Document() OperationDocument {
	d := OperationDocument{
		ID:          o.ID.String(),
		Kind:        o.Kind,
		Status:      o.Status,
		Mode:        o.Mode,
		Reason:      o.Reason,
		Attempts:    o.Attempts,
		Priority:    o.Priority,
		Amount:      o.Payment.Amount,
		Currency:    o.Payment.Currency,
		Description: o.Payment.Description,
		CreatedAt:   o.CreatedAt.UTC(),
		Result:      o.Result,
		Error:       o.Error,
	}
	if o.CompletedAt != nil {
		t := o.CompletedAt.UTC()
		d.CompletedAt = &t
	}
	d.Lines = o.Lines
	if !o.Composite() {
		// A payment's document is its contract from before steps: its one
		// step is the operation itself, reported by its own fields.
		return d
	}
	for _, s := range o.Steps {
		d.Steps = append(d.Steps, StepDocument{Name: s.Name, Dependency: s.Dependency, Status: s.Status, Mode: s.Mode, Attempts: s.Attempts})
	}
	return d
}

// ProviderKey is the idempotency key of the operation's provider calls:
// its id, and after a lookup closed that key (nothing was charged under
// it), the id with the key's generation, so a new attempt can charge
// while a request still on the wire under the old key cannot.
func (o *Operation) ProviderKey() string {
	if o.KeyGen == 0 {
		return o.ID.String()
	}
	return fmt.Sprintf("%s~%d", o.ID, o.KeyGen)
}

// ProviderRef is the provider's id for the charge a succeeded or declined
// operation recorded; "" otherwise.
func (o *Operation) ProviderRef() string {
	var r PaymentResult
	if len(o.Result) == 0 || json.Unmarshal(o.Result, &r) != nil {
		return ""
	}
	return r.ProviderRef
}

// Composite reports whether the operation is made of steps that are
// undone as a whole: an operator's cancel compensates what they did, and
// once ended it cannot be reopened, its steps' keys spent. A payment is
// not: its one step is the charge, cancelled directly when nothing can
// have been charged, and reopened under a fresh key (KeyGen).
func (o *Operation) Composite() bool { return o.Kind != KindPayment && o.Steps != nil }

// CancelRequested reports whether an operator asked to cancel the
// operation.
func (o *Operation) CancelRequested() bool { return o.CancelRequestedAt != nil }

// MayHaveCharged reports whether an attempt may have taken effect that no
// provider answer has accounted for yet.
func (o *Operation) MayHaveCharged() bool { return o.OutcomeUnknownSince != nil }

// ChargeRequest is the provider call an attempt makes.
func (o *Operation) ChargeRequest() Charge {
	return Charge{
		IdempotencyKey: o.ProviderKey(),
		Amount:         o.Payment.Amount,
		Currency:       o.Payment.Currency,
		Reference:      o.ID.String(),
		Description:    o.Payment.Description,
	}
}

// complete moves the operation to a terminal status.
func (o *Operation) complete(s Status, result any, now time.Time) {
	o.Status = s
	o.UpdatedAt = now
	o.CompletedAt = &now
	if result != nil {
		b, _ := json.Marshal(result)
		o.Result = b
	}
}

// ApplyCharge records a provider's business answer.
func (o *Operation) ApplyCharge(r ChargeResult, now time.Time) {
	o.Error = nil
	o.OutcomeUnknownSince = nil
	if !o.Composite() && len(o.Steps) == 1 {
		// A payment's one step is its charge: it says what the provider
		// said, whoever asked (the worker, the reconciler, an operator).
		s := &o.Steps[0]
		s.Status, s.Ref, s.Code, s.OutcomeUnknown = StepSucceeded, r.ProviderRef, "", false
		if r.Declined {
			s.Status, s.Code = StepDeclined, r.DeclineCode
		}
	}
	if r.Declined {
		o.complete(StatusDeclined, PaymentResult{ProviderRef: r.ProviderRef, DeclineCode: r.DeclineCode}, now)
		return
	}
	o.complete(StatusSucceeded, PaymentResult{ProviderRef: r.ProviderRef}, now)
}

// ApplyLookup records what a lookup found: a succeeded or declined charge
// ends the operation as that; it reports false for any other answer,
// which settles nothing.
func (o *Operation) ApplyLookup(l ChargeLookup, now time.Time) bool {
	switch l.Status {
	case LookupSucceeded:
		o.ApplyCharge(ChargeResult{ProviderRef: l.ProviderRef}, now)
	case LookupDeclined:
		o.ApplyCharge(ChargeResult{ProviderRef: l.ProviderRef, Declined: true, DeclineCode: l.DeclineCode}, now)
	default:
		return false
	}
	return true
}

// CloseKey records that a lookup proved nothing was charged under the
// current provider key and that nothing can be: the unknown outcome is
// settled, and any further attempt uses the next key.
func (o *Operation) CloseKey(now time.Time) {
	o.KeyGen++
	o.OutcomeUnknownSince = nil
	o.UpdatedAt = now
}

// RecordUnknown keeps an attempt whose outcome we do not know visible: the
// operation is processing, with reason outcome_unknown, from the first
// such attempt until the provider says what happened.
func (o *Operation) RecordUnknown(pe *ProviderError, now time.Time) {
	o.Status = StatusProcessing
	o.Reason = ReasonOutcomeUnknown
	if o.OutcomeUnknownSince == nil {
		o.OutcomeUnknownSince = &now
	}
	o.RecordFault(pe, now)
}

// Reopen puts a failed or cancelled operation back in the queue, as an
// operator's retry does.
func (o *Operation) Reopen(now time.Time) {
	o.Status = StatusQueued
	o.CompletedAt = nil
	o.Error = nil
	o.Result = nil
	o.UpdatedAt = now
	for i := range o.Steps {
		// Only a payment is reopened (Composite): its charge is tried
		// again, under the fresh key the reopening took.
		if s := &o.Steps[i]; s.Status != StepSucceeded && s.Status != StepDeclined {
			s.Status, s.Code, s.OutcomeUnknown = StepPending, "", false
		}
	}
}

// Fail ends the operation for good with the given error. Callers must
// not fail an operation that MayHaveCharged: an outcome we do not know is
// never reported as a failure.
func (o *Operation) Fail(code, msg string, now time.Time) {
	o.Error = &OperationError{Code: code, Message: msg}
	o.complete(StatusFailed, nil, now)
}

// Cancel ends the operation as cancelled, with why. Like Fail, never for
// an operation that MayHaveCharged.
func (o *Operation) Cancel(msg string, now time.Time) {
	o.Error = &OperationError{Code: "cancelled", Message: msg}
	o.complete(StatusCancelled, nil, now)
}

// Capture marks the operation as handed to the async path.
func (o *Operation) Capture(reason Reason, now time.Time) {
	o.Status = StatusQueued
	o.Mode = ModeAsync
	o.Reason = reason
	o.UpdatedAt = now
}

// RecordFault keeps the last provider fault visible to clients while the
// operation waits for its next attempt.
func (o *Operation) RecordFault(pe *ProviderError, now time.Time) {
	o.Error = &OperationError{Code: string(pe.Kind), Message: faultMessage(pe)}
	o.UpdatedAt = now
}

// faultMessage keeps provider internals (URLs, addresses) out of what
// clients see.
func faultMessage(pe *ProviderError) string {
	switch pe.Kind {
	case FaultTimeout:
		return "the provider did not answer in time"
	case FaultRejected, FaultConflict:
		return "the provider rejected the request"
	case FaultKeyClosed:
		return "the provider's key was closed; retrying under a new one"
	}
	if pe.OutcomeUnknown {
		return "the provider's answer was lost; asking it what happened"
	}
	if pe.StatusCode != 0 {
		return "the provider answered with an error"
	}
	return "the provider could not be reached"
}
