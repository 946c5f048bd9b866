package provider_test

import (
	"bufio"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spillway/spillway/app/apptest"
)

// stripeMockFixtures makes every PaymentIntent come back "succeeded".
// stripe-mock's bundled fixture is frozen in requires_payment_method, which
// would make a correct client look like it mis-maps success. Request
// validation still uses stripe-mock's full bundled OpenAPI spec.
const stripeMockFixtures = "testdata/stripe-mock-fixtures.json"

// startStripeMock runs stripe-mock on loopback ports of its own choosing
// (so parallel test binaries never collide) and returns its HTTP base URL.
// The process is killed at cleanup.
func startStripeMock(t *testing.T) string {
	t.Helper()
	fixtures, err := filepath.Abs(stripeMockFixtures)
	if err != nil {
		t.Fatalf("fixtures path: %v", err)
	}
	// HTTPS must be pinned to loopback too: given only -http-addr,
	// stripe-mock still opens HTTPS on all interfaces at :12112.
	cmd := exec.Command(apptest.Tool(t, "stripe-mock", "STRIPE_MOCK_BIN"),
		"-http-addr", "127.0.0.1:0",
		"-https-addr", "127.0.0.1:0",
		"-fixtures", fixtures)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start stripe-mock: %v", err)
	}
	// Closing the pipe when the process ends lets the reader below notice
	// an early exit instead of waiting out its timeout.
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		_ = pw.Close()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})

	// stripe-mock prints the address it bound; read until then and keep
	// draining afterwards so it never blocks on a full pipe.
	type result struct {
		addr string
		log  []string
	}
	done := make(chan result, 1)
	go func() {
		const prefix = "Listening for HTTP at address: "
		var log []string
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			log = append(log, sc.Text())
			if rest, ok := strings.CutPrefix(sc.Text(), prefix); ok {
				done <- result{addr: strings.TrimSpace(rest)}
				_, _ = io.Copy(io.Discard, pr)
				return
			}
		}
		done <- result{log: log} // exited without binding
	}()

	var addr string
	select {
	case r := <-done:
		if r.addr == "" {
			t.Fatalf("stripe-mock exited before listening:\n%s", strings.Join(r.log, "\n"))
		}
		addr = r.addr
	case <-time.After(30 * time.Second):
		t.Fatal("stripe-mock did not report its HTTP address within 30s")
	}
	waitAccepting(t, addr)
	return "http://" + addr
}

func waitAccepting(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stripe-mock at %s not accepting connections: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
