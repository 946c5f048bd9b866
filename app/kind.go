package app

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
)

// StepKind declares an operation kind made of steps: what a request of it
// becomes (its steps, amount and customer), how each step's call is made,
// how an unknown outcome is looked up and how a step is compensated. The
// runner (Runner.Submit), the engine (StepCalls), the state machine
// (NextStepAction) and the worker (jobs.StepWorker) are the same for every
// step kind: a new kind is its declaration and its worker registration,
// and nothing else changes. Payments (payment_kind.go), one charge, and
// orders (order.go), reservations then a charge, are two.
type StepKind struct {
	// Name is the operation kind, as stored and shown ("order").
	Name string
	// Scope namespaces the idempotency keys of its requests.
	Scope string
	// Queue is the River queue its captured operations wait in. Its
	// backlog is bounded by the dependency that declares the queue
	// (Dependencies), so a capture past that bound is refused.
	Queue string
	// NewArgs is the River job that carries a captured operation on; the
	// kind's worker is registered for its Kind(). A job whose args say
	// OffpeakOnly() runs only inside the off-peak window.
	NewArgs func(op *Operation) river.JobArgs
	// Plan turns a request into the operation's steps and what it
	// charges, in the transaction that records it (so it reads, say, the
	// catalog as it stood when the request was accepted).
	Plan func(ctx context.Context, tx pgx.Tx, req StepRequest) (Plan, error)
	// Handlers carry out each step type's calls (Step.Type).
	Handlers map[string]StepHandler
	// Describe words an ending for the customer; nil: a generic wording.
	Describe func(Ending) string
	// Result is what a succeeded operation reports (its Result); nil:
	// nothing.
	Result func(op *Operation) any
	// Finish, when set, ends the operation instead of the generic ending
	// (ApplyEnding), for a kind whose document reports its ending in its
	// own terms (a payment's result and error codes).
	Finish func(op *Operation, e Ending, now time.Time)
	// Key is the idempotency key of step s's call; nil: StepKey.
	Key func(op *Operation, s *Step) string
	// KeyGenerations says Key carries the operation's key generation
	// (Operation.KeyGen): a key its dependency says was never used for this
	// operation (a conflict, a closed key) is closed, and the next call is
	// made under the next one.
	KeyGenerations bool
	// Deferrable requests may ask to run in the off-peak window, and the
	// deployment's default (DefaultDefer) applies to them.
	Deferrable bool
}

// key is the idempotency key of step s's call.
func (k *StepKind) key(op *Operation, s *Step) string {
	if k.Key != nil {
		return k.Key(op, s)
	}
	return StepKey(op.ID, s.Name)
}

// OffpeakOnly is what the job of a deferred operation says (PaymentArgs).
type OffpeakOnly interface {
	OffpeakOnly() bool
}

// StepJobArgs is the River job of a step kind. It carries only the
// operation's id: the operation row, steps included, is the single source
// of truth, so the job can never disagree with what the client was told.
type StepJobArgs interface {
	river.JobArgs
	Operation() uuid.UUID
}

// StepRequest is a validated request of a step kind.
type StepRequest interface {
	// Fingerprint identifies the request's content, so a key reused with
	// another body is refused.
	Fingerprint() []byte
	// Callback is the webhook URL to vet before anything is recorded; ""
	// for none.
	Callback() string
}

// Plan is what a request of a step kind becomes.
type Plan struct {
	Steps []Step
	// Lines are an order's priced lines; nil for kinds without.
	Lines []PricedLine
	// The payment fields the operation carries: its amount (what high
	// value and the bulkhead judge), currency and customer (whom
	// notifications reach).
	Payment PaymentRequest
}

// StepHandler carries out one type of step against its dependency. Calls
// carry the step's key (StepKey); the engine holds the breaker permit,
// bounds the call's time and records what came of it in the step.
type StepHandler interface {
	// Call makes the step's call under key: it succeeded (with the
	// dependency's Ref) or was declined (with a Code), or a fault.
	Call(ctx context.Context, op *Operation, s *Step, key string) (StepResult, error)
	// LookUp asks what happened under key. It answers the step's settled
	// status (succeeded, declined, released; failed when nothing happened
	// and nothing can under the key; pending when nothing happened and the
	// step may simply be called again) or, when the dependency has not
	// settled it yet, a zero Status. lastAttempt is when the step's latest call
	// started, now the time of the answer.
	LookUp(ctx context.Context, op *Operation, s *Step, key string, lastAttempt, now time.Time) (StepResult, error)
	// Compensate undoes what a succeeded, compensable step did (s.Ref).
	// It must be idempotent: a lost answer is settled by undoing again.
	Compensate(ctx context.Context, op *Operation, s *Step) error
}

// StepResult is what a dependency said of one step.
type StepResult struct {
	Status StepStatus
	Ref    string
	Code   string
}

// Handler is the handler of step s, or an error naming the gap: a kind
// declared without one for a step it plans is a programming error that
// must not charge anything.
func (k *StepKind) Handler(s *Step) (StepHandler, error) {
	h, ok := k.Handlers[s.Type()]
	if !ok {
		return nil, fmt.Errorf("kind %s has no handler for step %s", k.Name, s.Name)
	}
	return h, nil
}

func (k *StepKind) describe(e Ending) string {
	if k.Describe != nil {
		if m := k.Describe(e); m != "" {
			return m
		}
	}
	switch e.Status {
	case StatusSucceeded:
		return ""
	case StatusDeclined:
		return "a step was declined; everything done before it was undone"
	case StatusCancelled:
		return "cancelled by an operator; everything done was undone"
	}
	return "a step failed for good; everything done before it was undone"
}

// Kinds is the set of step kinds a deployment runs, by name.
type Kinds struct {
	byName map[string]*StepKind
}

// NewKinds returns the registry of kinds; it fails on a kind declared
// twice or without what every kind needs.
func NewKinds(kinds ...*StepKind) (*Kinds, error) {
	r := &Kinds{byName: make(map[string]*StepKind, len(kinds))}
	for _, k := range kinds {
		switch {
		case k == nil:
			continue
		case k.Name == "" || k.Scope == "" || k.Queue == "" || k.NewArgs == nil || k.Plan == nil || len(k.Handlers) == 0:
			return nil, fmt.Errorf("kind %q: Name, Scope, Queue, NewArgs, Plan and Handlers are required", k.Name)
		case r.byName[k.Name] != nil:
			return nil, fmt.Errorf("kind %q is declared twice", k.Name)
		}
		r.byName[k.Name] = k
	}
	return r, nil
}

// Get is the kind named name.
func (r *Kinds) Get(name string) (*StepKind, bool) {
	if r == nil {
		return nil, false
	}
	k, ok := r.byName[name]
	return k, ok
}

// Names lists the kinds, sorted.
func (r *Kinds) Names() []string {
	if r == nil {
		return nil
	}
	names := make([]string, 0, len(r.byName))
	for n := range r.byName {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
