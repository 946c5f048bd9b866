package app

import (
	"context"
	"fmt"
	"time"
)

// ChargeCaller makes the provider calls that charge an operation: the
// runner's synchronous attempt and the payment worker's. Both paths must
// agree on what a call's answer means, what the breaker hears of it and
// what the latency metric records, so the sequence is written once, here.
type ChargeCaller struct {
	Provider PaymentProvider
	// Dependency names the provider's breaker and labels the metric.
	Dependency string
	// Path labels the latency metric: "sync" or "async".
	Path    string
	Metrics *Metrics
}

// ChargeCall is what came of one call.
type ChargeCall struct {
	// Result is the provider's business answer when Err is nil.
	Result ChargeResult
	// Err is the call's fault, classified: nil for a charge or a decline
	// of this operation's request, FaultConflict when the answer is for
	// another request made under the same key.
	Err *ProviderError
	// Elapsed is the call's own duration, on the monotonic clock: a step
	// of the wall clock during the call changes neither it nor the
	// deadline.
	Elapsed time.Duration
}

// Call charges op's request within timeout and finishes permit with the
// outcome: a fault counts against the breaker (declines and refusals do
// not), and a slow call as slow. A call we cut ourselves, by cancelling
// ctx before any answer (a hard stop, a cancelled job), says nothing about
// the provider's health, so its permit is released unjudged; counted as a
// fault, a hard stop of a busy instance could open the breaker every
// instance shares. Whether a cut request may have taken effect is the
// provider's to say (OutcomeUnknown): it knows whether the request was
// sent.
func (c *ChargeCaller) Call(ctx context.Context, op *Operation, permit *Permit, timeout time.Duration) ChargeCall {
	var res ChargeResult
	pe, elapsed := guardedCall(ctx, permit, timeout, c.Metrics, c.Dependency, c.Path, func(ctx context.Context) error {
		var err error
		res, err = c.Provider.Charge(ctx, op.ChargeRequest())
		return err
	})
	if pe == nil && !res.Matches(op.Payment.Amount, op.Payment.Currency) {
		pe = &ProviderError{Kind: FaultConflict,
			Err: fmt.Errorf("the provider holds a charge of %d %s under this key", res.Amount, res.Currency)}
	}
	return ChargeCall{Result: res, Err: pe, Elapsed: elapsed}
}
