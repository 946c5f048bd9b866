package provider

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/spillway/spillway/app"
)

// transportFault classifies an error that happened before a complete
// answer arrived. A deadline (the caller's ctx, or any network timeout) is
// a timeout, because the request may have reached the provider and taken
// effect; anything else is unavailability.
func transportFault(ctx context.Context, status int, err error) *app.ProviderError {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout()) {
		return &app.ProviderError{Kind: app.FaultTimeout, StatusCode: status, Err: err}
	}
	return &app.ProviderError{Kind: app.FaultUnavailable, StatusCode: status, Err: err}
}

// statusKind maps an HTTP status that is neither success nor decline to a
// fault kind. Statuses that can clear up on their own (5xx, 408 timeout,
// 409 idempotent request still in flight, 429 rate limit) are retried; the
// remaining 4xx mean the request itself is wrong. Anything else (1xx, 3xx,
// unexpected 2xx) is not understood and counts as unavailable so it is
// retried rather than lost.
func statusKind(status int) app.FaultKind {
	switch {
	case status >= 500,
		status == http.StatusRequestTimeout,
		status == http.StatusConflict,
		status == http.StatusTooManyRequests:
		return app.FaultUnavailable
	case status >= 400:
		return app.FaultRejected
	default:
		return app.FaultUnavailable
	}
}

// checkCharge refuses, before any network call, a charge no provider could
// accept. Above all it refuses one without an idempotency key: without it,
// a retry after a timeout could charge twice.
func checkCharge(c app.Charge) *app.ProviderError {
	var err error
	switch {
	case c.IdempotencyKey == "":
		err = errors.New("charge has no idempotency key")
	case c.Amount <= 0:
		err = fmt.Errorf("charge amount must be positive, got %d", c.Amount)
	case c.Currency == "":
		err = errors.New("charge has no currency")
	}
	if err != nil {
		return &app.ProviderError{Kind: app.FaultRejected, Err: err}
	}
	return nil
}
