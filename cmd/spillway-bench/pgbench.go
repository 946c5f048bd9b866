package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spillway/spillway/cmd/internal/loadgen"
)

// pgbenchResult is the database ceiling: the capture's two inserts per
// transaction, straight from pgbench.
type pgbenchResult struct {
	Clients      int     `json:"clients"`
	Seconds      float64 `json:"seconds"`
	Transactions int64   `json:"transactions"`
	TPS          float64 `json:"tps"`
	P50ms        float64 `json:"p50_ms"`
	P99ms        float64 `json:"p99_ms"`
	Binary       string  `json:"binary"`
}

var pgbenchTPS = regexp.MustCompile(`(?m)^tps = ([0-9.]+) \(without initial connection time\)`)

func (b *bench) pgbench(ctx context.Context) (pgbenchResult, error) {
	bin, err := findPgbench()
	if err != nil {
		return pgbenchResult{}, err
	}
	script := filepath.Join(b.root, "testdata", "bench", "capture.sql")
	if _, err := os.Stat(script); err != nil {
		return pgbenchResult{}, fmt.Errorf("pgbench script: %w", err)
	}
	d, err := b.freshDB(ctx, "pgbench")
	if err != nil {
		return pgbenchResult{}, err
	}
	defer b.dropDB(d)
	logDir, err := os.MkdirTemp("", "spillway-pgbench-")
	if err != nil {
		return pgbenchResult{}, err
	}
	defer os.RemoveAll(logDir)

	threads := min(runtime.NumCPU(), benchConns)
	secs := int(benchCeilingTime / time.Second)
	b.logf("  pgbench: %d clients, %d s", benchConns, secs)
	runCtx, cancel := context.WithTimeout(ctx, benchCeilingTime+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(runCtx, bin, "-n", "-M", "prepared", "-c", strconv.Itoa(benchConns),
		"-j", strconv.Itoa(threads), "-T", strconv.Itoa(secs), "-f", script,
		"--log", "--log-prefix", filepath.Join(logDir, "tx"), d.url)
	cmd.Dir = logDir
	cmd.Env = append(os.Environ(), "PGAPPNAME=spillway-bench")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return pgbenchResult{}, fmt.Errorf("%s: %w\n%s", bin, err, out)
	}
	m := pgbenchTPS.FindSubmatch(out)
	if m == nil {
		return pgbenchResult{}, fmt.Errorf("no tps in pgbench's output:\n%s", out)
	}
	res := pgbenchResult{Clients: benchConns, Seconds: float64(secs), Binary: bin}
	res.TPS, _ = strconv.ParseFloat(string(m[1]), 64)
	if fails := failedTx(string(out)); fails > 0 {
		return res, fmt.Errorf("pgbench: %d transactions failed:\n%s", fails, out)
	}
	h, err := pgbenchLatencies(logDir)
	if err != nil {
		return res, err
	}
	res.Transactions = h.Count()
	res.P50ms, res.P99ms = ms(h.Quantile(0.5)), ms(h.Quantile(0.99))
	b.logf("  pgbench: %.0f tps, p50 %.2f ms, p99 %.2f ms", res.TPS, res.P50ms, res.P99ms)
	return res, nil
}

var pgbenchFailed = regexp.MustCompile(`(?m)^number of failed transactions: ([0-9]+)`)

func failedTx(out string) int {
	m := pgbenchFailed.FindStringSubmatch(out)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// pgbenchLatencies reads pgbench's per-transaction logs ("client tx
// latency_us script epoch us" per line) into a histogram.
func pgbenchLatencies(dir string) (*loadgen.Histogram, error) {
	files, err := filepath.Glob(filepath.Join(dir, "tx.*"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("pgbench wrote no transaction log in %s", dir)
	}
	h := &loadgen.Histogram{}
	for _, f := range files {
		if err := readLatencies(f, h); err != nil {
			return nil, err
		}
	}
	return h, nil
}

func readLatencies(path string, h *loadgen.Histogram) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			continue
		}
		us, err := strconv.ParseInt(fields[2], 10, 64)
		if err != nil {
			continue // "failed" or "skipped" instead of a latency
		}
		h.Record(time.Duration(us) * time.Microsecond)
	}
	return sc.Err()
}

// findPgbench prefers Debian's versioned directories, highest major first
// (the one that matches the server localpg.Ensure starts), then PATH.
func findPgbench() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) > pgMajor(dirs[j]) })
	for _, d := range dirs {
		p := filepath.Join(d, "pgbench")
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	if p, err := exec.LookPath("pgbench"); err == nil {
		return p, nil
	}
	return "", errors.New("pgbench not found in /usr/lib/postgresql/*/bin or on PATH; it ships with the PostgreSQL server packages that scripts/setup.sh installs (Debian: postgresql, or postgresql-contrib on older releases)")
}

func pgMajor(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}
