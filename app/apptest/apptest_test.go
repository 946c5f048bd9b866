package apptest_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"

	"github.com/spillway/spillway/app/apptest"
)

func TestRefusingAddrRefusesAndCannotBeTaken(t *testing.T) {
	t.Parallel()
	addr := apptest.RefusingAddr(t)
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatalf("dial %s succeeded, want refused", addr)
	}
	if ln, err := net.Listen("tcp", addr); err == nil {
		ln.Close()
		t.Fatalf("another listener could bind %s", addr)
	}
}

func TestReservedPortTakesItsServerAndNoOneElse(t *testing.T) {
	t.Parallel()
	port := apptest.ReservedPort(t)
	for range 200 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		got := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if got == port {
			t.Fatalf("the kernel handed out reserved port %d", port)
		}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("the server cannot listen on its reserved port: %v", err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial the server: %v", err)
	}
	c.Close()
}

func TestExpiringContext(t *testing.T) {
	t.Parallel()
	ctx, expire := apptest.ExpiringContext()
	if ctx.Err() != nil {
		t.Fatalf("Err before expiry = %v", ctx.Err())
	}
	select {
	case <-ctx.Done():
		t.Fatal("Done before expiry")
	default:
	}
	child, cancel := context.WithCancel(ctx)
	defer cancel()
	expire()
	expire()
	<-ctx.Done()
	<-child.Done()
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) || !errors.Is(child.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err = %v, child %v; want context.DeadlineExceeded", ctx.Err(), child.Err())
	}
}
