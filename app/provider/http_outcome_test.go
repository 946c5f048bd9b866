package provider_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/provider"
)

// rawServer accepts connections on loopback and hands each to handle; it
// lets a test misbehave below HTTP (close mid-request, cut an answer
// short). It returns the base URL.
func rawServer(t *testing.T, handle func(ln net.Listener, c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(ln, c)
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// readRequest reads one whole request, body included, so the test knows
// it was sent.
func readRequest(br *bufio.Reader) error {
	req, err := http.ReadRequest(br)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, req.Body)
	return err
}

func charge1(key string) app.Charge {
	return app.Charge{IdempotencyKey: key, Amount: 1000, Currency: "usd", Reference: "r"}
}

// TestHTTPOutcomeUnknownOnlyWhenTheRequestMayHaveLeft: a failure is
// outcome-unknown unless the request provably never left; a complete
// answer is never unknown.
func TestHTTPOutcomeUnknownOnlyWhenTheRequestMayHaveLeft(t *testing.T) {
	t.Parallel()
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close() // nothing listens on its address any more

	closesAfterReading := rawServer(t, func(_ net.Listener, c net.Conn) {
		_ = readRequest(bufio.NewReader(c)) // then hang up without answering
	})
	cutShort := rawServer(t, func(_ net.Listener, c net.Conn) {
		if readRequest(bufio.NewReader(c)) == nil {
			fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"id\":")
		}
	})
	answers503 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
	}))
	t.Cleanup(answers503.Close)

	tests := []struct {
		name        string
		base        string
		wantKind    app.FaultKind
		wantUnknown bool
		wantStatus  int
	}{
		{name: "connection refused is known", base: gone.URL, wantKind: app.FaultUnavailable},
		{name: "closed after reading the request is unknown", base: closesAfterReading, wantKind: app.FaultUnavailable, wantUnknown: true},
		{name: "answer cut short is unknown", base: cutShort, wantKind: app.FaultUnavailable, wantUnknown: true, wantStatus: 200},
		{name: "a complete 503 is known", base: answers503.URL, wantKind: app.FaultUnavailable, wantStatus: 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := newHTTP(t, tt.base).Charge(context.Background(), charge1("op-1"))
			assertOutcome(t, err, tt.wantKind, tt.wantUnknown)
			if pe := providerError(t, err); pe.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", pe.StatusCode, tt.wantStatus)
			}
		})
	}
}

// TestHTTPHungServerPastDeadlineIsUnknownTimeout: the server has the whole
// request and never answers; the deadline passes.
func TestHTTPHungServerPastDeadlineIsUnknownTimeout(t *testing.T) {
	t.Parallel()
	got := make(chan struct{}, 1)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	base := rawServer(t, func(_ net.Listener, c net.Conn) {
		if readRequest(bufio.NewReader(c)) == nil {
			got <- struct{}{}
		}
		<-release
	})
	ctx := newExpiringCtx()
	go func() { <-got; ctx.expire() }()
	_, err := newHTTP(t, base).Charge(ctx, charge1("op-1"))
	assertOutcome(t, err, app.FaultTimeout, true)
}

// TestHTTPDeadlineWhileDiallingIsKnown: the deadline passes before any
// connection exists. The error is a bare context error, which alone could
// not say whether the request left; the trace can.
func TestHTTPDeadlineWhileDiallingIsKnown(t *testing.T) {
	t.Parallel()
	ctx := newExpiringCtx()
	dialing := make(chan struct{}, 1)
	tr := &http.Transport{DialContext: func(dctx context.Context, _, _ string) (net.Conn, error) {
		dialing <- struct{}{}
		<-dctx.Done()
		return nil, dctx.Err()
	}}
	t.Cleanup(tr.CloseIdleConnections)
	p, err := provider.NewHTTP(provider.HTTPConfig{BaseURL: "http://127.0.0.1:9", Client: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	go func() { <-dialing; ctx.expire() }()
	_, err = p.Charge(ctx, charge1("op-1"))
	assertOutcome(t, err, app.FaultTimeout, false)
}

func TestHTTPDNSFailureIsKnown(t *testing.T) {
	t.Parallel()
	tr := &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "payments.invalid", IsNotFound: true}}
	}}
	p, err := provider.NewHTTP(provider.HTTPConfig{BaseURL: "http://payments.invalid", Client: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Charge(context.Background(), charge1("op-1"))
	assertOutcome(t, err, app.FaultUnavailable, false)
}

// TestHTTPReplayAfterBrokenReusedConnectionIsUnknown is the case error
// types alone get wrong: the provider read the charge on a kept-alive
// connection and went away; net/http replays the request (it has an
// Idempotency-Key) on a new connection, whose dial is refused. The error
// returned is that dial error, yet the first attempt may have charged.
func TestHTTPReplayAfterBrokenReusedConnectionIsUnknown(t *testing.T) {
	t.Parallel()
	base := rawServer(t, func(ln net.Listener, c net.Conn) {
		br := bufio.NewReader(c)
		if readRequest(br) != nil {
			return
		}
		body := `{"id":"ch_1","status":"succeeded"}`
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		if readRequest(br) != nil {
			return
		}
		_ = ln.Close() // the replay's dial is refused
	})
	p := newHTTP(t, base)
	if _, err := p.Lookup(context.Background(), "op-0"); err != nil {
		t.Fatalf("first request: %v", err)
	}
	_, err := p.Charge(context.Background(), charge1("op-1"))
	assertOutcome(t, err, app.FaultUnavailable, true)
	// The scenario really is the replay: what came back is a dial error.
	if op := (*net.OpError)(nil); !errors.As(err, &op) || op.Op != "dial" {
		t.Errorf("err = %v, want the replay's refused dial", err)
	}
}
