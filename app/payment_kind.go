package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
)

// scopePayments namespaces idempotency keys of POST /api/v1/payments.
const scopePayments = "payments"

// StepTypeCharge is the step type of a charge at the payment dependency:
// a payment's one step, and an order's last (StepCharge).
const StepTypeCharge = StepCharge

// PaymentKindConfig is what payments need: the provider that charges.
type PaymentKindConfig struct {
	Provider PaymentProvider
}

// NewPaymentKind declares payments: one step, the charge. Its call
// carries the operation's provider key (ProviderKey), whose generation
// moves on when the provider proves nothing was charged under the old
// one; the provider replays a charge's first answer under its key, so an
// outcome we do not know is settled by charging again under the same key
// (Step.Replays), and only once the provider may have forgotten the key
// by a lookup first. Its document and its ending are the payment
// contract's (Finish): a result with the charge's reference and decline
// code, and no steps.
func NewPaymentKind(cfg PaymentKindConfig) (*StepKind, error) {
	if cfg.Provider == nil {
		return nil, errors.New("payments: Provider is required")
	}
	return &StepKind{
		Name:  KindPayment,
		Scope: scopePayments,
		Queue: QueuePayments,
		NewArgs: func(op *Operation) river.JobArgs {
			return PaymentArgs{OperationID: op.ID, Offpeak: op.Reason == ReasonDeferred}
		},
		Plan: func(_ context.Context, _ pgx.Tx, r StepRequest) (Plan, error) {
			req, ok := r.(PaymentRequest)
			if !ok {
				return Plan{}, fmt.Errorf("payments: a %T is not a payment request", r)
			}
			return Plan{Steps: NewPaymentSteps(), Payment: req}, nil
		},
		Handlers:       map[string]StepHandler{StepTypeCharge: paymentCharge{provider: cfg.Provider}},
		Finish:         finishPayment,
		Key:            func(op *Operation, _ *Step) string { return op.ProviderKey() },
		KeyGenerations: true,
		Deferrable:     true,
	}, nil
}

// NewPaymentSteps is a payment's one step.
func NewPaymentSteps() []Step {
	return []Step{{Name: StepCharge, Dependency: DepPayment, Status: StepPending, Replays: true}}
}

// Callback is the payment's webhook URL (StepRequest).
func (r PaymentRequest) Callback() string { return r.CallbackURL }

// Step codes of a failed charge, which a failed payment reports.
const (
	codeRejected          = "rejected"
	codeAttemptsExhausted = "attempts_exhausted"
)

// finishPayment ends a payment as its charge step ended, in the payment
// contract's terms.
func finishPayment(op *Operation, e Ending, now time.Time) {
	var s Step
	if len(op.Steps) > 0 {
		s = op.Steps[0]
	}
	switch e.Status {
	case StatusSucceeded:
		op.ApplyCharge(ChargeResult{ProviderRef: s.Ref}, now)
	case StatusDeclined:
		op.ApplyCharge(ChargeResult{ProviderRef: s.Ref, Declined: true, DeclineCode: s.Code}, now)
	case StatusCancelled:
		op.Cancel("cancelled by an operator", now)
	default:
		switch s.Code {
		case codeRejected:
			op.Fail(codeRejected, "the provider rejected the request", now)
		default:
			last := "provider_error"
			if op.Error != nil {
				last = op.Error.Code
			}
			op.Fail(codeAttemptsExhausted, fmt.Sprintf("gave up after %d attempts: %s", s.Attempts, last), now)
		}
	}
}

// paymentCharge charges a payment's amount under its provider key.
type paymentCharge struct{ provider PaymentProvider }

func (h paymentCharge) Call(ctx context.Context, op *Operation, _ *Step, key string) (StepResult, error) {
	c := op.ChargeRequest()
	c.IdempotencyKey = key
	return charge(ctx, h.provider, c)
}

// charge makes one charge and reads its answer as a step's: succeeded or
// declined (Code the provider's decline code), with the charge's
// reference; an answer for another amount or currency under the key is a
// conflict, since the key was first used for another request. Payments
// and an order's charge step both call it.
func charge(ctx context.Context, provider PaymentProvider, c Charge) (StepResult, error) {
	res, err := provider.Charge(ctx, c)
	if err != nil {
		return StepResult{}, err
	}
	if !res.Matches(c.Amount, c.Currency) {
		return StepResult{}, &ProviderError{Kind: FaultConflict,
			Err: fmt.Errorf("the provider holds a charge of %d %s under this key", res.Amount, res.Currency)}
	}
	if res.Declined {
		return StepResult{Status: StepDeclined, Ref: res.ProviderRef, Code: res.DeclineCode}, nil
	}
	return StepResult{Status: StepSucceeded, Ref: res.ProviderRef}, nil
}

// LookUp asks what happened under the key. When nothing was, and nothing
// can be (the provider closed the key, or the last attempt is old enough
// to be sure), the key is closed here and the charge may be made again
// under the next one.
func (h paymentCharge) LookUp(ctx context.Context, op *Operation, _ *Step, key string, last, now time.Time) (StepResult, error) {
	l, err := h.provider.Lookup(ctx, key)
	if err != nil {
		return StepResult{}, err
	}
	switch {
	case l.Status == LookupSucceeded:
		return StepResult{Status: StepSucceeded, Ref: l.ProviderRef}, nil
	case l.Status == LookupDeclined:
		return StepResult{Status: StepDeclined, Ref: l.ProviderRef, Code: l.DeclineCode}, nil
	case l.NothingCharged(last, now):
		op.CloseKey(now)
		return StepResult{Status: StepPending}, nil
	}
	return StepResult{}, nil
}

func (paymentCharge) Compensate(context.Context, *Operation, *Step) error {
	return errors.New("a payment's charge is not compensated; it is refunded by the orphan sweep only when it is no operation's")
}
