package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spillway/spillway/app/apptest"
)

// server is an httptest server on loopback that answers with the status in
// the X-Status request header (200 without one) and counts what it sees.
type server struct {
	*httptest.Server
	requests atomic.Int64
	conns    atomic.Int64 // connections opened
	mu       sync.Mutex
	keys     map[string]bool
}

func newServer(t *testing.T, delay time.Duration) *server {
	t.Helper()
	s := &server{keys: map[string]bool{}}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if k := r.Header.Get("Idempotency-Key"); k != "" {
			s.mu.Lock()
			s.keys[k] = true
			s.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, r.Body)
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		code := http.StatusOK
		if c, err := strconv.Atoi(r.Header.Get("X-Status")); err == nil {
			code = c
		}
		w.WriteHeader(code)
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// guard is the Duration of runs that end by their request cap: a failure
// guard only, long past what the cap takes on any machine.
const guard = 2 * time.Minute

// statusBody asks for 202 on every fourth request and 201 otherwise.
func statusBody(i int64) ([]byte, http.Header) {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Idempotency-Key", fmt.Sprintf("k-%d", i))
	if i%4 == 0 {
		h.Set("X-Status", "202")
	} else {
		h.Set("X-Status", "201")
	}
	return []byte(`{"amount":1999,"currency":"usd"}`), h
}

func TestRunCountsAndStatusSplit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		connections int
		requests    int
	}{
		{"one connection", 1, 40},
		{"few connections", 4, 200},
		{"more connections than requests", 16, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, 0)
			res, err := Run(t.Context(), Config{
				URL: srv.URL, Connections: tt.connections, Duration: guard,
				Requests: tt.requests, Body: statusBody,
			})
			if err != nil {
				t.Fatal(err)
			}
			n := int64(tt.requests)
			want202 := (n + 3) / 4
			if res.Requests != n || res.Errors != 0 || srv.requests.Load() != n {
				t.Fatalf("requests %d, errors %d, server saw %d; want %d, 0, %d", res.Requests, res.Errors, srv.requests.Load(), n, n)
			}
			if res.ByStatus[202] != want202 || res.ByStatus[201] != n-want202 || len(res.ByStatus) != 2 {
				t.Fatalf("by status %v, want 202:%d 201:%d", res.ByStatus, want202, n-want202)
			}
			if res.Latency.Count != n || res.LatencyByStatus[202].Count != want202 || res.LatencyByStatus[201].Count != n-want202 {
				t.Fatalf("latency counts %d / %+v", res.Latency.Count, res.LatencyByStatus)
			}
			if len(srv.keys) != tt.requests {
				t.Fatalf("server saw %d distinct keys, want %d", len(srv.keys), tt.requests)
			}
			// Keep-alive reuse: never more sockets than workers.
			if c := srv.conns.Load(); c > int64(tt.connections) {
				t.Fatalf("%d connections opened for %d workers", c, tt.connections)
			}
			if res.Throughput <= 0 || res.Latency.Max < res.Latency.P50 || res.Latency.P50 < res.Latency.Min {
				t.Fatalf("implausible result %+v", res)
			}
		})
	}
}

func TestRunRateLimits(t *testing.T) {
	t.Parallel()
	t.Run("duration", func(t *testing.T) {
		t.Parallel()
		srv := newServer(t, 0)
		res, err := Run(t.Context(), Config{URL: srv.URL, Connections: 8, Duration: 500 * time.Millisecond, Rate: 100})
		if err != nil {
			t.Fatal(err)
		}
		// Request i is not sent before i/100 s, and none is sent once the
		// 500ms are over: at most 50, however fast the machine. How many
		// a slow machine gets through is not this test's business.
		if res.Requests > 80 || res.ByStatus[200] != res.Requests {
			t.Fatalf("rate 100/s for 500ms: %d requests (%v)", res.Requests, res.ByStatus)
		}
	})
	t.Run("cap", func(t *testing.T) {
		t.Parallel()
		srv := newServer(t, 0)
		const n, rate = 20, 100
		res, err := Run(t.Context(), Config{URL: srv.URL, Connections: 8, Duration: guard, Rate: rate, Requests: n})
		if err != nil {
			t.Fatal(err)
		}
		if res.Requests != n || res.ByStatus[200] != n {
			t.Fatalf("%d requests (%v), want %d answered 200", res.Requests, res.ByStatus, n)
		}
		// The last request is due (n-1)/rate after the start, so the run
		// cannot be over sooner: the rate held.
		if min := time.Duration(n-1) * time.Second / rate; res.Elapsed < min {
			t.Fatalf("%d requests at %d/s took %s, under %s", n, rate, res.Elapsed, min)
		}
	})
}

func TestRunWithTicks(t *testing.T) {
	t.Parallel()
	// The server answers nothing until three ticks have come, so the run
	// lasts at least that long however the machine schedules the ticker;
	// the request cap then ends it.
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		code, _ := strconv.Atoi(r.Header.Get("X-Status"))
		w.WriteHeader(code)
	}))
	t.Cleanup(srv.Close)
	const every = 50 * time.Millisecond
	var ticks []Tick // appended from the single tick goroutine only
	res, err := RunWithTicks(t.Context(), Config{URL: srv.URL, Connections: 4, Duration: guard, Requests: 40, Body: statusBody},
		every, func(tk Tick) {
			ticks = append(ticks, tk)
			if len(ticks) == 3 {
				close(release)
			}
		})
	if err != nil {
		t.Fatal(err)
	}
	if len(ticks) < 3 || res.Requests != 40 {
		t.Fatalf("%d ticks and %d requests, want at least 3 ticks and 40 requests", len(ticks), res.Requests)
	}
	var sum int64
	var prev time.Duration
	for i, tk := range ticks {
		if tk.At <= prev || tk.Interval <= 0 {
			t.Fatalf("ticks out of order: %+v", ticks)
		}
		// A ticker never fires early, so the k-th tick delivered ends at
		// least k intervals in (the last one may be the partial rest).
		if i < len(ticks)-1 && tk.At < time.Duration(i+1)*every {
			t.Fatalf("tick %d at %s, before %s", i+1, tk.At, time.Duration(i+1)*every)
		}
		prev = tk.At
		sum += tk.Requests
		var byStatus int64
		for _, c := range tk.ByStatus {
			byStatus += c
		}
		if byStatus+tk.Errors != tk.Requests || (tk.Requests > tk.Errors && tk.P99 < tk.P50) {
			t.Fatalf("inconsistent tick %+v", tk)
		}
	}
	if sum != res.Requests {
		t.Fatalf("ticks add up to %d requests, result says %d", sum, res.Requests)
	}
}

// cancelOnAnswer cancels the run's context as soon as the first answer
// has been read in full, so the cut-off comes after at least one answer
// however slow the machine is.
type cancelOnAnswer struct {
	rt     http.RoundTripper
	once   sync.Once
	cancel func()
	at     time.Time
}

func (c *cancelOnAnswer) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := c.rt.RoundTrip(req)
	if err == nil {
		res.Body = &hookedBody{ReadCloser: res.Body, onEOF: func() {
			c.once.Do(func() { c.at = time.Now(); c.cancel() })
		}}
	}
	return res, err
}

// hookedBody calls onEOF once the whole body has been read.
type hookedBody struct {
	io.ReadCloser
	onEOF func()
}

func (b *hookedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		b.onEOF()
	}
	return n, err
}

func TestRunCancelStopsEarly(t *testing.T) {
	t.Parallel()
	srv := newServer(t, time.Millisecond)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hook := &cancelOnAnswer{rt: tr, cancel: cancel}
	res, err := Run(ctx, Config{URL: srv.URL, Connections: 4, Duration: time.Minute, Client: &http.Client{Transport: hook}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want the context's", err)
	}
	// A speed bound, kept on purpose: stopping takes microseconds, so
	// twenty seconds means Run did not notice its context.
	if took := time.Since(hook.at); took > 20*time.Second {
		t.Fatalf("run took %s after its context ended", took)
	}
	if res.Requests == 0 || res.Errors != 0 {
		t.Fatalf("partial result %+v: want some requests and no errors for the cut-off ones", res)
	}
}

func TestRunTransportErrors(t *testing.T) {
	t.Parallel()
	// Held for the test, so no other listener can be given the port.
	refused := "http://" + apptest.RefusingAddr(t)
	slow := newServer(t, time.Minute)
	tests := []struct {
		name    string
		url     string
		timeout time.Duration
	}{
		{"refused", refused, 0},
		{"timeout", slow.URL, 20 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// The cap ends the run, so every request gets its full timeout
			// whatever the machine's speed.
			const n = 4
			res, err := Run(t.Context(), Config{URL: tt.url, Connections: 2, Duration: guard, Requests: n, Timeout: tt.timeout})
			if err != nil {
				t.Fatal(err)
			}
			if res.Errors != n || res.Errors != res.Requests || len(res.ByStatus) != 0 || res.Latency.Count != 0 {
				t.Fatalf("result %+v: want %d transport errors and nothing else", res, n)
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	ok := Config{URL: "http://127.0.0.1:1/", Duration: time.Second}
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"no url", func(c *Config) { c.URL = "" }},
		{"no scheme", func(c *Config) { c.URL = "127.0.0.1:8080/x" }},
		{"ftp", func(c *Config) { c.URL = "ftp://127.0.0.1/" }},
		{"no duration", func(c *Config) { c.Duration = 0 }},
		{"too long", func(c *Config) { c.Duration = MaxDuration + time.Second }},
		{"negative connections", func(c *Config) { c.Connections = -1 }},
		{"too many connections", func(c *Config) { c.Connections = MaxConnections + 1 }},
		{"negative cap", func(c *Config) { c.Requests = -1 }},
		{"negative rate", func(c *Config) { c.Rate = -1 }},
		{"bad method", func(c *Config) { c.Method = "BAD METHOD" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := ok
			tt.edit(&cfg)
			if _, err := Run(t.Context(), cfg); err == nil {
				t.Fatal("want an error")
			}
		})
	}
	if _, err := RunWithTicks(t.Context(), ok, 0, func(Tick) {}); err == nil {
		t.Fatal("RunWithTicks with no interval: want an error")
	}
}

func TestCheckLoopback(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:8080/api/v1/payments", true},
		{"http://127.8.9.10/", true},
		{"http://[::1]:8080/", true},
		{"https://localhost/", true},
		{"http://LOCALHOST:1/", true},
		{"http://10.0.0.1:8080/", false},
		{"http://example.com/", false},
		{"http://localhost.example.com/", false},
		{"http://[::]:8080/", false},
		{"http://0.0.0.0:8080/", false},
		{"ftp://127.0.0.1/", false},
		{"://bad", false},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			t.Parallel()
			if err := CheckLoopback(tt.url); (err == nil) != tt.ok {
				t.Fatalf("CheckLoopback(%q) = %v, want ok=%v", tt.url, err, tt.ok)
			}
		})
	}
}

func TestFormat(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	Result{
		Requests: 3, Elapsed: time.Second, Throughput: 3,
		ByStatus:        map[int]int64{201: 2, 202: 1},
		Latency:         Summary{Count: 3, P50: 2 * time.Millisecond},
		LatencyByStatus: map[int]Summary{201: {Count: 2}, 202: {Count: 1}},
	}.Format(&buf)
	out := buf.String()
	for _, want := range []string{"3 requests", "201", "202", "66.7%", "all", "2.00ms"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestNoGoroutineLeak is deliberately not parallel: Go runs it while every
// parallel test is paused, so the goroutine count is this test's alone.
func TestNoGoroutineLeak(t *testing.T) {
	srv := newServer(t, time.Millisecond)
	before := runtime.NumGoroutine()
	for _, cfg := range []Config{
		{URL: srv.URL, Connections: 8, Duration: 100 * time.Millisecond},
		{URL: srv.URL, Connections: 8, Duration: 100 * time.Millisecond, Rate: 200},
	} {
		if _, err := RunWithTicks(t.Context(), cfg, 20*time.Millisecond, func(Tick) {}); err != nil {
			t.Fatal(err)
		}
	}
	// Connection goroutines (ours and the server's) end asynchronously after
	// the sockets close, so poll for a bounded while.
	deadline := time.Now().Add(apptest.Patience)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines after the runs, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}
