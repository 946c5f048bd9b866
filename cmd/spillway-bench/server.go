package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/cmd/internal/child"
	"github.com/spillway/spillway/cmd/internal/loadgen"
)

// build compiles bin/spillway as a user would.
func (b *bench) build(ctx context.Context) error {
	b.bin = filepath.Join(b.root, "bin", "spillway")
	b.logf("go build -o bin/spillway ./cmd/spillway")
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	goBin := "go"
	if p := b.getenv("GO"); p != "" {
		goBin = p
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", b.bin, "./cmd/spillway")
	cmd.Dir = b.root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	return nil
}

// The bench's throwaway operator, in a database dropped after the run.
const (
	benchAdminEmail    = "bench@spillway.localhost"
	benchAdminPassword = "bench-only-password"
)

// benchPassEnv are settings a user may tune for a bench run; they reach the
// server as set. Everything else the server sees is set here.
var benchPassEnv = []string{"PATH", "HOME", "TMPDIR", "PAYMENT_DEADLINE", "CAPTURE_TIMEOUT", "DB_MAX_CONNS",
	"SYNC_CONCURRENCY", "WORKERS", "GOMAXPROCS", "GOGC", "GOMEMLIMIT",
	// The payment breaker's thresholds, e.g. BREAKER_PAYMENT_CONSECUTIVE_FAILURES=0
	// to measure the failure-rate window alone.
	"BREAKER_PAYMENT_WINDOW", "BREAKER_PAYMENT_MIN_CALLS", "BREAKER_PAYMENT_FAILURE_RATE",
	"BREAKER_PAYMENT_CONSECUTIVE_FAILURES"}

// server is a `spillway serve` child process with the simulator inside
// it as the provider.
type server struct {
	*child.Server
	api string // http://127.0.0.1:port
	sim string // the simulator's base URL
}

// startServer execs bin/spillway serve on db with the simulator as
// provider, on free loopback ports, and waits until /healthz answers.
// extra adds to or overrides the environment ("" removes a variable).
func (b *bench) startServer(ctx context.Context, name string, d *benchDB, extra map[string]string) (*server, error) {
	apiAddr, err := child.FreeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	simAddr, err := child.FreeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	for _, k := range benchPassEnv {
		if v := b.getenv(k); v != "" {
			env[k] = v
		}
	}
	for k, v := range map[string]string{
		"DATABASE_URL": d.url, "SPILLWAY_ADDR": apiAddr, "SIM_ADDR": simAddr, "PAYMENT_PROVIDER": "sim",
		"LOG_LEVEL": "warn", "PAYMENT_DEADLINE": b.deadline.String(),
		// An operator, so BENCH_PROFILE can sign in for /admin/debug/pprof.
		"ADMIN_EMAIL": benchAdminEmail, "ADMIN_PASSWORD": benchAdminPassword,
	} {
		env[k] = v
	}
	for k, v := range extra {
		env[k] = v
	}
	var envList []string
	for k, v := range env {
		if v != "" {
			envList = append(envList, k+"="+v)
		}
	}

	cs, err := child.Start(child.Config{Name: name, Bin: b.bin, Dir: b.root, Env: envList, API: "http://" + apiAddr,
		LogPath: filepath.Join(b.dir, name+".log"), DeathSignal: syscall.SIGTERM})
	if err != nil {
		return nil, err
	}
	s := &server{Server: cs, api: cs.API, sim: "http://" + simAddr}
	if err := s.WaitHealthy(ctx, time.Minute); err != nil {
		s.Stop(2 * time.Second)
		return nil, fmt.Errorf("%s: %w\n%s", name, err, s.LogTail())
	}
	return s, nil
}

// chaos merges patch (JSON) into the simulator's chaos.
func (s *server) chaos(ctx context.Context, patch string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, s.sim+"/control", strings.NewReader(patch))
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("sim control %s: %w", patch, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("sim control %s: %d %s", patch, res.StatusCode, body)
	}
	return nil
}

// waitBreaker waits until the server reports the payment breaker in state
// on /metrics, so a scenario starts only once the server acts on it.
func (s *server) waitBreaker(ctx context.Context, state app.BreakerState) error {
	want := fmt.Sprintf(`spillway_breaker_state{dependency="payment",state=%q} 1`, state)
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		res, err := c.Get(s.api + "/metrics")
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(res.Body, 4<<20))
			res.Body.Close()
			if bytes.Contains(body, []byte(want)) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("the server did not report the payment breaker %s within 10s", state)
}

// memory reads the child's resident set and its high-water mark, in KiB.
func (s *server) memory() (rss, hwm int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", s.Cmd.Process.Pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			rss = n
		case "VmHWM":
			hwm = n
		}
	}
	if rss == 0 && hwm == 0 {
		return 0, 0, errors.New("no VmRSS in /proc status")
	}
	return rss, hwm, sc.Err()
}

// paymentLoad is the load every HTTP figure is measured with: the same
// small payment, a fresh Idempotency-Key per request.
func paymentLoad(url string, conns int, d time.Duration, prefix string) loadgen.Config {
	body := []byte(`{"amount":1999,"currency":"usd"}`)
	id, _ := newRunID()
	return loadgen.Config{
		URL: url, Method: http.MethodPost, Connections: conns, Duration: d,
		Body: func(i int64) ([]byte, http.Header) {
			h := make(http.Header, 2)
			h.Set("Content-Type", "application/json")
			h.Set("Idempotency-Key", fmt.Sprintf("bench-%s-%s-%d", prefix, id, i))
			return body, h
		},
	}
}

// newRunID makes idempotency keys unique across runs, so that a kept
// database (BENCH_KEEP) or a rerun never replays an earlier run's answers.
func newRunID() (string, error) {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("run id: %w", err)
	}
	return hex.EncodeToString(b), nil
}
