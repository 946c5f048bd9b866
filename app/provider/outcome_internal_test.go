package provider

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
)

func TestMayHaveSent(t *testing.T) {
	t.Parallel()
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	dns := fmt.Errorf("wrapped: %w", &net.DNSError{Err: "no such host", Name: "x.invalid"})
	reset := &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}
	tests := []struct {
		name  string
		trace *sendTrace
		err   error
		want  bool
	}{
		{name: "got a connection: maybe, whatever the error", trace: traced(true, true), err: refused, want: true},
		{name: "asked, never got one: no", trace: traced(true, false), err: context.DeadlineExceeded, want: false},
		{name: "asked, never got one, reset: no", trace: traced(true, false), err: reset, want: false},
		{name: "no trace, dial error: no", trace: traced(false, false), err: refused, want: false},
		{name: "no trace, DNS error: no", trace: traced(false, false), err: dns, want: false},
		{name: "no trace, proxy dial: no", trace: traced(false, false), err: &net.OpError{Op: "proxyconnect", Err: errors.New("refused")}, want: false},
		{name: "no trace, deadline: maybe", trace: traced(false, false), err: context.DeadlineExceeded, want: true},
		{name: "no trace, read error: maybe", trace: traced(false, false), err: reset, want: true},
		{name: "nil trace, dial error: no", err: refused, want: false},
		{name: "nil trace, anything else: maybe", err: errors.New("boom"), want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.trace.mayHaveSent(tt.err); got != tt.want {
				t.Errorf("mayHaveSent(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func traced(asked, got bool) *sendTrace {
	tr := &sendTrace{}
	tr.askedConn.Store(asked)
	tr.gotConn.Store(got)
	return tr
}
