// Package apptest holds what tests use instead of waiting and hoping:
// loopback ports that no other process on the machine can be handed in the
// meantime, and a deadline that passes when the test says so rather than
// when a clock does. It is for tests only.
package apptest

import (
	"context"
	"net"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spillway/spillway/app"
)

// Patience is how long WaitFor keeps polling before it fails the test. It
// is a failure guard only, far beyond what any awaited condition needs
// even on a loaded machine: raising it can slow a failing run down but
// never hide a bug, and a passing run waits only as long as the condition
// takes.
const Patience = time.Minute

// WaitFor polls cond until it holds and fails the test, naming what it
// waited for, if it still does not after Patience.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %s waiting for %s", Patience, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// RefusingAddr returns a 127.0.0.1 address that refuses connections until
// the test ends. A port that was listened on and closed refuses only until
// the kernel hands it to someone else, which parallel tests and other
// processes on the machine make a matter of luck. Here a socket stays
// bound to the port without listening and without SO_REUSEADDR, so a
// connection finds no listener and nobody else can bind the port or be
// given it.
func RefusingAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(hold(t, false)))
}

// ReservedPort returns a 127.0.0.1 port for a server that the test starts
// later, in this process or another, and that nothing else is given in
// between. The placeholder socket is bound with SO_REUSEADDR and never
// listens: a server that sets SO_REUSEADDR too (Go's net.Listen and
// PostgreSQL do) can still listen on the port, while the kernel's choice
// of a free port (":0" listeners, outgoing connections) passes it by. The
// reservation lasts until the test ends.
func ReservedPort(t testing.TB) int {
	t.Helper()
	return hold(t, true)
}

func hold(t testing.TB, reuse bool) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("apptest: socket: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Close(fd) })
	if reuse {
		if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
			t.Fatalf("apptest: SO_REUSEADDR: %v", err)
		}
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("apptest: bind: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatalf("apptest: getsockname: %v", err)
	}
	return sa.(*syscall.SockaddrInet4).Port
}

// ExpiringContext returns a context whose deadline passes when expire is
// called: from then on Done is closed and Err is
// context.DeadlineExceeded, exactly as if a deadline had been reached. A
// test uses it to time out a call at a chosen point (say, once the server
// has recorded the request) instead of picking a duration and hoping the
// machine is fast enough. It reports no Deadline, since no clock decides
// it; calling expire more than once is harmless.
func ExpiringContext() (ctx context.Context, expire func()) {
	c := &expiring{done: make(chan struct{})}
	return c, c.expire
}

type expiring struct {
	once sync.Once
	done chan struct{}
	mu   sync.Mutex
	err  error
}

func (c *expiring) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c *expiring) Done() <-chan struct{}       { return c.done }
func (c *expiring) Value(any) any               { return nil }

func (c *expiring) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *expiring) expire() {
	c.once.Do(func() {
		c.mu.Lock()
		c.err = context.DeadlineExceeded
		c.mu.Unlock()
		close(c.done)
	})
}

func (c *expiring) String() string { return "apptest.ExpiringContext" }

// PaymentKinds is the registry of a runner or workers that take payments
// charged at provider, as the product wires them.
func PaymentKinds(t testing.TB, provider app.PaymentProvider) *app.Kinds {
	t.Helper()
	k, err := app.NewPaymentKind(app.PaymentKindConfig{Provider: provider})
	if err != nil {
		t.Fatal(err)
	}
	kinds, err := app.NewKinds(k)
	if err != nil {
		t.Fatal(err)
	}
	return kinds
}
