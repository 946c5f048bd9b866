package provider_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// stripeMockFixtures makes every PaymentIntent come back "succeeded".
// stripe-mock's bundled fixture is frozen in requires_payment_method, which
// would make a correct client look like it mis-maps success. Request
// validation still uses stripe-mock's full bundled OpenAPI spec.
const stripeMockFixtures = "testdata/stripe-mock-fixtures.json"

// stripeMockBin finds the stripe-mock binary: $STRIPE_MOCK_BIN, then
// <repo root>/.data/bin/stripe-mock, then PATH. Missing is a failure, not a
// skip: a skipped contract test is a contract nobody checks.
func stripeMockBin(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("STRIPE_MOCK_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("STRIPE_MOCK_BIN=%s: %v; run scripts/setup.sh or fix the variable", p, err)
		}
		return p
	}
	if root, err := repoRoot(); err == nil {
		p := filepath.Join(root, ".data", "bin", "stripe-mock")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("stripe-mock"); err == nil {
		return p
	}
	t.Fatal("stripe-mock not found (looked at $STRIPE_MOCK_BIN, <repo>/.data/bin/stripe-mock and PATH): run scripts/setup.sh")
	return ""
}

// repoRoot walks up from the working directory to the directory holding go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

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
	cmd := exec.Command(stripeMockBin(t),
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
