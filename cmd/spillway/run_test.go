package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

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

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
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
	addr, simAddr := freeAddr(t), freeAddr(t)
	env := map[string]string{
		"DATABASE_URL": dbURL, "SPILLWAY_ADDR": addr, "SIM_ADDR": simAddr,
		"PAYMENT_DEADLINE": "500ms", "PAYMENT_RETRY_BASE": "50ms", "PAYMENT_RETRY_MAX": "200ms",
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

	api, sim := "http://"+addr, "http://"+simAddr
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(api + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server never became healthy; stderr:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(stdout.String(), "spillway serving on http://"+addr) {
		t.Fatalf("start-up did not print the URL: %q", stdout.String())
	}

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
	for {
		_, op, _ := call(t, "GET", api+"/api/v1/operations/"+id, "", "")
		if op["status"] == "succeeded" {
			break
		}
		if time.Now().After(deadline.Add(30 * time.Second)) {
			t.Fatalf("operation never succeeded: %v", op)
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, eff, _ := call(t, "GET", sim+"/control/effects/"+id, "", "")
	if eff["effects"] != 1.0 {
		t.Fatalf("simulator effects for %s: %v, want 1", id, eff)
	}
}

func TestBadConfigStopsStartupNamingTheVariable(t *testing.T) {
	t.Parallel()
	for name, value := range map[string]string{
		"PAYMENT_DEADLINE": "soon",
		"SPILLWAY_ADDR":    "nowhere",
		"PAYMENT_PROVIDER": "carrier-pigeon",
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
