package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/spillway/spillway/app/apptest"
	"github.com/spillway/spillway/db/dbtest"
)

// syncBuffer lets the test read what run prints while run still writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Servers in these tests listen on 127.0.0.1:0 and the tests read the
// port the kernel gave them from what serve prints. A port picked free
// beforehand could be handed to another process before the server binds
// it, and a test could then talk to someone else's server.
var (
	apiLine = regexp.MustCompile(`spillway serving on http://(\S+) `)
	simLine = regexp.MustCompile(`simulator on http://(\S+) `)
)

// printedAddr waits until out shows line and returns its address.
func printedAddr(t *testing.T, out interface{ String() string }, line *regexp.Regexp) string {
	t.Helper()
	var addr string
	apptest.WaitFor(t, "the server to print its address", func() bool {
		if m := line.FindStringSubmatch(out.String()); m != nil {
			addr = m[1]
		}
		return addr != ""
	})
	return addr
}

// waitHealthy polls /healthz until the server answers 200.
func waitHealthy(t *testing.T, api string) {
	t.Helper()
	apptest.WaitFor(t, api+" to become healthy", func() bool {
		res, err := http.Get(api + "/healthz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
}

func call(t *testing.T, method, url, key, body string) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return res.StatusCode, m, res.Header
}

// TestServeWalkthrough is the README's walk-through against the real
// binary's entry point: a sync payment, the simulator hard down, a 202,
// recovery, and exactly one effect at the provider.
func TestServeWalkthrough(t *testing.T) {
	t.Parallel()
	_, dbURL := dbtest.NewWithURL(t)
	env := map[string]string{
		"DATABASE_URL": dbURL, "SPILLWAY_ADDR": "127.0.0.1:0", "SIM_ADDR": "127.0.0.1:0",
		// The deadlines are failure guards: the simulator answers at once,
		// up or down, and the sync payment must not be turned into a 202
		// by a slow machine.
		"PAYMENT_DEADLINE": "30s", "CAPTURE_TIMEOUT": "30s",
		"PAYMENT_RETRY_BASE": "50ms", "PAYMENT_RETRY_MAX": "200ms",
		"DB_MAX_CONNS": "20", "SYNC_CONCURRENCY": "8", "LOG_LEVEL": "warn",
	}
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, func(k string) string { return env[k] }, &stdout, &stderr) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run returned %v; stderr:\n%s", err, stderr.String())
		}
	})

	// Start-up prints the URLs it serves on.
	api := "http://" + printedAddr(t, &stdout, apiLine)
	sim := "http://" + printedAddr(t, &stdout, simLine)
	waitHealthy(t, api)

	status, doc, _ := call(t, "POST", api+"/api/v1/payments", "walk-1", `{"amount": 1999, "currency": "usd"}`)
	if status != http.StatusCreated || doc["mode"] != "sync" {
		t.Fatalf("sync payment: %d %v", status, doc)
	}

	if status, _, _ := call(t, "PUT", sim+"/control", "", `{"down": true}`); status != http.StatusOK {
		t.Fatalf("set simulator down: %d", status)
	}
	status, doc, hdr := call(t, "POST", api+"/api/v1/payments", "walk-2", `{"amount": 2500, "currency": "eur"}`)
	if status != http.StatusAccepted || doc["reason"] != "provider_error" {
		t.Fatalf("payment while down: %d %v", status, doc)
	}
	id := doc["id"].(string)
	if hdr.Get("Location") != "/api/v1/operations/"+id {
		t.Fatalf("Location %q", hdr.Get("Location"))
	}

	if status, _, _ := call(t, "PUT", sim+"/control", "", `{"down": false}`); status != http.StatusOK {
		t.Fatalf("set simulator up: %d", status)
	}
	var op map[string]any
	apptest.WaitFor(t, "the captured operation to succeed", func() bool {
		_, op, _ = call(t, "GET", api+"/api/v1/operations/"+id, "", "")
		return op["status"] == "succeeded"
	})
	_, eff, _ := call(t, "GET", sim+"/control/effects/"+id, "", "")
	if eff["effects"] != 1.0 {
		t.Fatalf("simulator effects for %s: %v, want 1", id, eff)
	}

	// The embedded simulator serves the inventory beside the payments, and
	// the demo catalog's products are stocked there.
	if status, stock, _ := call(t, "GET", sim+"/inventory/stock/sku-tea", "", ""); status != http.StatusOK || stock["sku"] != "sku-tea" {
		t.Fatalf("inventory stock: %d %v", status, stock)
	}
	if b := printedLine(&stdout, "simulator on"); !strings.Contains(b, "inventory under /inventory") {
		t.Fatalf("start-up does not say where the inventory is: %q", b)
	}
}

// printedLine is the first line of out containing prefix.
func printedLine(out interface{ String() string }, prefix string) string {
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.Contains(l, prefix) {
			return l
		}
	}
	return ""
}

func TestBadConfigStopsStartupNamingTheVariable(t *testing.T) {
	t.Parallel()
	for name, value := range map[string]string{
		"PAYMENT_DEADLINE": "soon",
		"SPILLWAY_ADDR":    "nowhere",
		"PAYMENT_PROVIDER": "carrier-pigeon",
		"FEATURE_HOLD":     "a while",
	} {
		env := map[string]string{name: value}
		err := run(context.Background(), []string{"serve"}, func(k string) string { return env[k] }, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: got %v, want an error naming %s", name, value, err, name)
		}
	}
}

func TestUnknownCommand(t *testing.T) {
	t.Parallel()
	err := run(context.Background(), []string{"fly"}, func(string) string { return "" }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `"fly"`) {
		t.Fatalf("got %v", err)
	}
}

// freeAddr is a loopback address reserved for a server this test starts
// (again, when it restarts one), which nothing else is handed meanwhile.
func freeAddr(t *testing.T) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(apptest.ReservedPort(t)))
}
