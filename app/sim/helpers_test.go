package sim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/spillway/spillway/app/sim"
)

// start serves a fresh simulator on loopback for one test.
func start(t *testing.T, cfg sim.Config) (*sim.Sim, *httptest.Server) {
	t.Helper()
	s := sim.New(cfg)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request and returns the whole reply; ctx errors are returned
// so timeout tests can inspect them.
func do(ctx context.Context, t *testing.T, method, url string, header map[string]string, body string) (reply, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewBufferString(body))
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// charge posts a charge and fails the test on transport errors.
func charge(t *testing.T, srv *httptest.Server, key, body string) reply {
	t.Helper()
	h := map[string]string{"Content-Type": "application/json"}
	if key != "" {
		h["Idempotency-Key"] = key
	}
	r, err := do(context.Background(), t, http.MethodPost, srv.URL+"/charges", h, body)
	if err != nil {
		t.Fatalf("POST /charges: %v", err)
	}
	return r
}

// chargeBody is what a client sends for amount in usd.
func chargeBody(amount int64) string {
	b, _ := json.Marshal(map[string]any{"amount": amount, "currency": "usd", "reference": "ref-1"})
	return string(b)
}

type chargeAnswer struct {
	ID          string `json:"id"`
	Status      string `json:"status"`
	Amount      int64  `json:"amount"`
	Currency    string `json:"currency"`
	Reference   string `json:"reference"`
	DeclineCode string `json:"decline_code"`
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// fakeClock is a settable time source safe for concurrent use.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// keyStatsJSON is the wire shape of GET /control/effects/{key}.
type keyStatsJSON struct {
	Key      string `json:"key"`
	Effects  int    `json:"effects"`
	Calls    int    `json:"calls"`
	Lookups  int    `json:"lookups"`
	Closed   bool   `json:"closed"`
	Status   string `json:"status"`
	ChargeID string `json:"charge_id"`
	Seq      int    `json:"seq"`
	Refunds  int    `json:"refunds"`
}
