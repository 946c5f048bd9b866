package web_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/db/dbtest"
	"github.com/spillway/spillway/web"
)

// streamServer is the API on a fresh database holding one queued
// operation, with only what event streams need: no runner, no workers.
type streamServer struct {
	t    *testing.T
	pool *pgxpool.Pool
	hub  *web.EventHub
	srv  *httptest.Server
	op   uuid.UUID
	// ended receives once each time an events request's handler returns.
	ended chan struct{}
}

// newStreamServer starts the server; setup, if set, adjusts the
// http.Server and its listener before it starts.
func newStreamServer(t *testing.T, cfg web.Config, setup func(*httptest.Server)) *streamServer {
	t.Helper()
	pool := dbtest.New(t)
	s := &streamServer{t: t, pool: pool, hub: web.NewEventHub(db.NewStore(pool), nil), ended: make(chan struct{}, 64)}
	s.op = insertQueuedOperation(t, pool)
	cfg.Operations, cfg.Events = db.NewStore(pool), s.hub
	api := web.NewServer(cfg)
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api.ServeHTTP(w, r)
		if strings.HasSuffix(r.URL.Path, "/events") {
			s.ended <- struct{}{}
		}
	}))
	if setup != nil {
		setup(s.srv)
	}
	s.srv.Start()
	t.Cleanup(s.srv.Close)
	return s
}

func (s *streamServer) eventsURL() string {
	return s.srv.URL + "/api/v1/operations/" + s.op.String() + "/events"
}

// waitEnded waits for n more events handlers to return.
func (s *streamServer) waitEnded(n int) {
	s.t.Helper()
	for range n {
		select {
		case <-s.ended:
		case <-time.After(guard):
			s.t.Fatal("an event stream's handler did not return")
		}
	}
}

// stream is an open event stream, read line by line.
type stream struct {
	res    *http.Response
	lines  *bufio.Scanner
	cancel context.CancelFunc
}

// open starts a stream and reads until its first event has arrived, so
// the stream is certainly counted and subscribed when open returns.
func (s *streamServer) open() *stream {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.eventsURL(), nil)
	res, err := s.srv.Client().Do(req)
	if err != nil {
		cancel()
		s.t.Fatal(err)
	}
	st := &stream{res: res, lines: bufio.NewScanner(res.Body), cancel: cancel}
	s.t.Cleanup(st.close)
	if res.StatusCode != http.StatusOK {
		s.t.Fatalf("stream: %d", res.StatusCode)
	}
	st.until(s.t, "event: status")
	return st
}

func (st *stream) close() {
	st.cancel()
	st.res.Body.Close()
}

// until reads lines until one equals want.
func (st *stream) until(t *testing.T, want string) {
	t.Helper()
	for st.lines.Scan() {
		if st.lines.Text() == want {
			return
		}
	}
	t.Fatalf("stream ended before %q: %v", want, st.lines.Err())
}

// untilEOF reads the rest of the stream and fails unless it ends cleanly.
func (st *stream) untilEOF(t *testing.T) {
	t.Helper()
	for st.lines.Scan() {
	}
	if err := st.lines.Err(); err != nil {
		t.Fatalf("stream ended with %v, want a clean end", err)
	}
}

func insertQueuedOperation(t *testing.T, pool *pgxpool.Pool) uuid.UUID {
	t.Helper()
	now := time.Now().UTC()
	op := &app.Operation{
		ID: uuid.New(), Kind: "payment", Status: app.StatusQueued, Mode: app.ModeAsync, Reason: app.ReasonTimeout,
		Priority: app.PriorityNormal, CreatedAt: now, UpdatedAt: now,
		Payment: app.PaymentRequest{Amount: 1999, Currency: "usd"},
	}
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit
	if ok, err := db.InsertOperationTx(ctx, tx, op); err != nil || !ok {
		t.Fatalf("insert operation: %v (inserted %v)", err, ok)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	return op.ID
}

// wantUnavailable checks a refused stream: 503 problem+json with
// Retry-After, and no stream.
func wantUnavailable(t *testing.T, client *http.Client, url string) {
	t.Helper()
	res, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" ||
		res.Header.Get("Content-Type") != "application/problem+json" ||
		!strings.Contains(string(body), `"type":"urn:spillway:problem:unavailable"`) {
		t.Fatalf("got %d %v %s, want 503 problem with Retry-After", res.StatusCode, res.Header, body)
	}
}

func TestStreamsOverTheCapAreRefused(t *testing.T) {
	t.Parallel()
	s := newStreamServer(t, web.Config{MaxStreams: 2}, nil)
	first := s.open()
	s.open()
	wantUnavailable(t, s.srv.Client(), s.eventsURL())
	s.waitEnded(1) // the refused request
	// A stream that ends makes room for the next.
	first.close()
	s.waitEnded(1)
	s.open()
	wantUnavailable(t, s.srv.Client(), s.eventsURL())
}

func TestHubCloseEndsStreamsAndRefusesNewOnes(t *testing.T) {
	t.Parallel()
	s := newStreamServer(t, web.Config{}, nil)
	a, b := s.open(), s.open()
	s.hub.Close()
	a.untilEOF(t)
	b.untilEOF(t)
	s.waitEnded(2)
	wantUnavailable(t, s.srv.Client(), s.eventsURL())
	s.hub.Close() // twice is harmless
}

// The wiring serve.go is told to use: with Close registered on the server,
// Shutdown ends the streams and completes instead of waiting them out.
func TestShutdownWithOpenStreamsCompletes(t *testing.T) {
	t.Parallel()
	s := newStreamServer(t, web.Config{}, nil)
	s.srv.Config.RegisterOnShutdown(s.hub.Close)
	a, b := s.open(), s.open()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- s.srv.Config.Shutdown(ctx) }()
	a.untilEOF(t)
	b.untilEOF(t)
	if err := <-shut; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

// The server's ReadTimeout and WriteTimeout are for one request and its
// answer, not for a stream: each write gets its own deadline, so a stream
// outlives both and still delivers a change made after they passed.
func TestStreamOutlivesServerTimeouts(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	s := newStreamServer(t, web.Config{StreamHeartbeat: 10 * time.Millisecond}, func(srv *httptest.Server) {
		srv.Config.ReadTimeout = timeout
		srv.Config.WriteTimeout = timeout
	})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go s.hub.Run(ctx)
	st := s.open()
	// Heartbeats as the clock: read them until well past the timeout.
	start := time.Now()
	for time.Since(start) < 3*timeout {
		st.until(t, ": ping")
	}
	if _, err := s.pool.Exec(context.Background(), `UPDATE operations SET status = 'processing' WHERE id = $1`, s.op); err != nil {
		t.Fatal(err)
	}
	for st.lines.Scan() {
		if strings.HasPrefix(st.lines.Text(), "data: ") && strings.Contains(st.lines.Text(), `"status":"processing"`) {
			return
		}
	}
	t.Fatalf("stream ended before the change: %v", st.lines.Err())
}

// A client that stops reading cannot hold its stream: once the socket
// buffers are full a heartbeat's write hits its deadline and the handler
// returns. Small buffers and a fast heartbeat fill them quickly; without
// the deadline the handler would block for good and the guard would fail.
func TestStreamToClientThatStopsReadingEnds(t *testing.T) {
	t.Parallel()
	s := newStreamServer(t, web.Config{StreamHeartbeat: 100 * time.Microsecond, StreamWriteTimeout: 50 * time.Millisecond},
		func(srv *httptest.Server) { srv.Listener = smallSendBuffers{srv.Listener} })
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048)
		})
		return errors.Join(err, serr)
	}}
	conn, err := d.Dial("tcp", s.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := fmt.Fprintf(conn, "GET /api/v1/operations/%s/events HTTP/1.1\r\nHost: spillway\r\n\r\n", s.op); err != nil {
		t.Fatal(err)
	}
	// Nothing is ever read from conn.
	s.waitEnded(1)
}

// smallSendBuffers gives accepted connections a small send buffer.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(2048)
	}
	return c, err
}
