package provider

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"

	"github.com/spillway/spillway/app"
)

// transportFault classifies an error that happened before a complete
// answer arrived. A deadline (the caller's ctx, or any network timeout) is
// a timeout; anything else is unavailability. unknown says whether the
// request may have reached the provider and taken effect (see sendTrace).
func transportFault(ctx context.Context, status int, err error, unknown bool) *app.ProviderError {
	kind := app.FaultUnavailable
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout()) {
		kind = app.FaultTimeout
	}
	return &app.ProviderError{Kind: kind, StatusCode: status, OutcomeUnknown: unknown, Err: err}
}

// sendTrace records, through net/http/httptrace, how far one request got,
// so that a failure can say whether the request may have been sent.
//
// The rule is "unknown unless we know it was never sent", and two signals
// must agree before we say "never sent":
//
//   - The transport reported that it went looking for a connection
//     (GetConn) but was never handed one (GotConn). Nothing is written
//     before a connection is handed over, so nothing left this process.
//     This covers refused connections, DNS failures, TLS handshake
//     failures and a ctx deadline that passes while dialling — for which
//     the error is a bare context error that the error chain alone cannot
//     tell apart from a deadline passing while the provider was working.
//   - When the transport reports nothing (a custom RoundTripper that
//     ignores httptrace), only a dial error (*net.OpError with Op "dial",
//     which wraps *net.DNSError and refused connections) proves it.
//
// Error types alone are not enough: net/http replays a request that
// carries an Idempotency-Key on a fresh connection when a reused one
// broke, possibly after the provider read and acted on the first attempt,
// and if the fresh dial is then refused, the error returned is that dial
// error. GotConn having fired on the first attempt is what keeps such a
// request "unknown".
type sendTrace struct {
	askedConn atomic.Bool
	gotConn   atomic.Bool
}

// traceSend returns ctx carrying hooks for a new sendTrace. Hooks already
// in ctx (tracing middleware) still run: httptrace composes them.
func traceSend(ctx context.Context) (context.Context, *sendTrace) {
	tr := &sendTrace{}
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GetConn: func(string) { tr.askedConn.Store(true) },
		GotConn: func(httptrace.GotConnInfo) { tr.gotConn.Store(true) },
	}), tr
}

// mayHaveSent reports whether a request that failed with err may have
// reached the provider. A nil trace knows nothing and falls back on err.
func (tr *sendTrace) mayHaveSent(err error) bool {
	if tr != nil {
		if tr.gotConn.Load() {
			return true
		}
		if tr.askedConn.Load() {
			return false
		}
	}
	return !isDialError(err)
}

// isDialError reports whether err shows the connection was never made.
// "proxyconnect" is the dial of a configured proxy: the request had not
// left either.
func isDialError(err error) bool {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && (op.Op == "dial" || op.Op == "proxyconnect")
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

// rejected is a fault found before any network call: nothing was sent.
func rejected(format string, args ...any) *app.ProviderError {
	return &app.ProviderError{Kind: app.FaultRejected, Err: fmt.Errorf(format, args...)}
}
