package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// tickWriter is the load run's stdout: safe to read while the run writes,
// and it closes ticked once a per-interval line has been written.
type tickWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	ticked chan struct{}
	once   sync.Once
}

func (w *tickWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if bytes.Contains(p, []byte("req/s")) {
		w.once.Do(func() { close(w.ticked) })
	}
	return w.buf.Write(p)
}

func (w *tickWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func TestLoadAgainstServer(t *testing.T) {
	t.Parallel()
	out := &tickWriter{ticked: make(chan struct{})}
	var mu sync.Mutex
	keys := map[string]bool{}
	var bad []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p struct {
			Amount   int64  `json:"amount"`
			Currency string `json:"currency"`
		}
		b, _ := io.ReadAll(r.Body)
		err := json.Unmarshal(b, &p)
		key := r.Header.Get("Idempotency-Key")
		mu.Lock()
		if err != nil || p.Amount != 4200 || p.Currency != "usd" || r.Method != http.MethodPost ||
			r.Header.Get("Content-Type") != "application/json" || !strings.HasPrefix(key, "load-") || keys[key] {
			bad = append(bad, r.Method+" "+key+" "+string(b))
		}
		keys[key] = true
		mu.Unlock()
		// Answers wait until a tick has been printed, so the run shows both
		// its per-interval lines and its final table however slow the
		// machine: it ends after a number of requests, not of seconds.
		select {
		case <-out.ticked:
		case <-r.Context().Done():
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()

	var errOut bytes.Buffer
	err := runLoad(t.Context(), []string{"-url", srv.URL + "/api/v1/payments", "-c", "4", "-n", "40", "-d", "10m", "-amount", "4200", "-ticks", "100ms"},
		func(string) string { return "" }, out, &errOut)
	if err != nil {
		t.Fatalf("runLoad: %v\n%s", err, errOut.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 || len(keys) != 40 {
		t.Fatalf("%d requests seen, bad ones: %q", len(keys), bad)
	}
	for _, want := range []string{"201", "req/s", "p99", "all"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestLoadRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, want string
		args       []string
		env        map[string]string
	}{
		{"remote url", "not loopback", []string{"-url", "http://192.0.2.1:8080/api/v1/payments"}, nil},
		{"remote SPILLWAY_ADDR", "not loopback", nil, map[string]string{"SPILLWAY_ADDR": "example.com:8080"}},
		{"stray argument", "unexpected", []string{"now"}, nil},
		{"unknown flag", "flag provided but not defined", []string{"-bogus"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out, errOut bytes.Buffer
			err := runLoad(t.Context(), tt.args, func(k string) string { return tt.env[k] }, &out, &errOut)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestLoadAddr(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"":               "127.0.0.1:8080",
		":9000":          "127.0.0.1:9000",
		"0.0.0.0:9000":   "127.0.0.1:9000",
		"[::]:9000":      "127.0.0.1:9000",
		"127.0.0.2:9000": "127.0.0.2:9000",
		"[::1]:9000":     "[::1]:9000",
	}
	for in, want := range tests {
		if got := loadAddr(func(string) string { return in }); got != want {
			t.Errorf("loadAddr(%q) = %q, want %q", in, got, want)
		}
	}
}
