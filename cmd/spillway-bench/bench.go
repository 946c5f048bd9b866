package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/apptest"
	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/db/localpg"
)

// Bench sizes. Every phase is bounded by these and by benchTimeout, so a
// broken setup fails instead of hanging.
const (
	benchConns        = 64               // closed-loop connections, pgbench clients
	benchCeilingTime  = 10 * time.Second // each HTTP and pgbench ceiling
	benchCaptureTime  = 20 * time.Second
	benchSyncTime     = 10 * time.Second
	benchBudgetTime   = 10 * time.Second
	benchFailoverTime = 20 * time.Second
	benchFailoverRate = 200 // requests/s of steady load during failover
	benchDrainJobs    = 20000
	benchLimitedJobs  = 8000 // queued for the DRAIN_RATE run (500/s: ~16 s)
	benchDrainRate    = 500  // DRAIN_RATE of the limited run
	benchRiverJobs    = benchDrainJobs
	benchRSSGoalMiB   = 100
	benchTimeout      = 15 * time.Minute // the whole run, set-up failures included
)

// bench is the state one run shares across its phases.
type bench struct {
	getenv  func(string) string
	log     io.Writer // progress
	root    string    // module root: where bin/, testdata/ and .data/ are
	dir     string    // .data/bench: report, server logs, profiles
	baseURL string    // the local cluster's own database, for creating others
	bin     string    // the built bin/spillway
	// dbSuffix ends the bench's database names (on BENCH_POSTGRES_URL).
	dbSuffix string
	keep     bool
	profile  bool
	workers  int
	// deadline is PAYMENT_DEADLINE and captureTimeout CAPTURE_TIMEOUT as
	// the server will read them.
	deadline, captureTimeout time.Duration
}

func newBench(ctx context.Context, getenv func(string) string, log io.Writer) (*bench, error) {
	root, err := checkoutRoot()
	if err != nil {
		return nil, err
	}
	b := &bench{
		getenv:  getenv,
		log:     log,
		root:    root,
		keep:    getenv("BENCH_KEEP") == "1",
		profile: getenv("BENCH_PROFILE") == "1",
		workers: app.DefaultWorkers,
	}
	if n, err := strconv.Atoi(getenv("WORKERS")); err == nil && n > 0 {
		b.workers = n
	}
	b.deadline, b.captureTimeout = 3*time.Second, time.Second
	for name, d := range map[string]*time.Duration{"PAYMENT_DEADLINE": &b.deadline, "CAPTURE_TIMEOUT": &b.captureTimeout} {
		if s := getenv(name); s != "" {
			v, err := time.ParseDuration(s)
			if err != nil {
				return nil, fmt.Errorf("%s %q: %w", name, s, err)
			}
			*d = v
		}
	}
	b.dir = filepath.Join(root, ".data", "bench")
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return nil, err
	}
	// The project-local cluster, never DATABASE_URL: the bench creates and
	// drops databases, which has no place on a server shared by chance.
	// BENCH_POSTGRES_URL names a server on purpose (one a session already
	// runs); the bench's databases on it carry the checkout's name, so two
	// checkouts' runs do not replace each other's.
	if u := getenv("BENCH_POSTGRES_URL"); u != "" {
		b.baseURL, b.dbSuffix = u, "_"+dbName(filepath.Base(root))
		b.logf("Postgres at BENCH_POSTGRES_URL; databases bench_*%s", b.dbSuffix)
		return b, nil
	}
	lc := localCluster(root, getenv)
	b.logf("local Postgres in %s", lc.Dir)
	b.baseURL, err = localpg.Ensure(ctx, lc, log)
	if err != nil {
		return nil, fmt.Errorf("local Postgres: %w (scripts/setup.sh installs it)", err)
	}
	return b, nil
}

// run does every phase in order and returns the report. With only set, it
// runs just those Spillway scenarios, without the ceilings.
func (b *bench) run(ctx context.Context, only map[string]bool) (*report, error) {
	begin := time.Now()
	rep := newReport()
	rep.Machine = b.machine(ctx)
	if err := b.build(ctx); err != nil {
		return nil, err
	}

	if len(only) == 0 {
		b.logf("ceilings (start)")
		start, err := b.ceilings(ctx)
		if err != nil {
			return nil, err
		}
		rep.CeilingsStart = start
	}

	sp := &spillwayResults{}
	rep.Spillway = sp
	steps := []struct {
		name string
		fn   func(context.Context, *spillwayResults) error
	}{
		{"capture", b.capture},
		{"sync", b.sync},
		{"budget", b.budget},
		{"failover", b.failover},
		{"drain", b.drain},
		{"orders", b.orders},
		{"scale", b.scale},
	}
	for _, s := range steps {
		if len(only) > 0 && !only[s.name] {
			continue
		}
		b.logf("spillway: %s", s.name)
		if err := s.fn(ctx, sp); err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
	}

	if len(only) == 0 { // its rows stand beside the full run's figures
		b.logf("dbos peer")
		var err error
		if rep.DBOS, err = b.dbosPeerRun(ctx); err != nil {
			return nil, fmt.Errorf("dbos peer: %w", err)
		}
	}

	if len(only) == 0 {
		b.logf("ceilings (end)")
		end, err := b.ceilings(ctx)
		if err != nil {
			return nil, err
		}
		rep.CeilingsEnd = end
	}
	rep.Seconds = time.Since(begin).Seconds()
	rep.build(b, only)
	return rep, nil
}

// ceilings measures one round of the four ceilings.
func (b *bench) ceilings(ctx context.Context) (*ceilingResults, error) {
	c := &ceilingResults{}
	var err error
	if c.PGBench, err = b.pgbench(ctx); err != nil {
		return nil, fmt.Errorf("pgbench: %w", err)
	}
	if c.CaptureFloor, err = b.floor(ctx, floorCapture); err != nil {
		return nil, fmt.Errorf("capture floor: %w", err)
	}
	if c.SyncFloor, err = b.floor(ctx, floorSync); err != nil {
		return nil, fmt.Errorf("sync floor: %w", err)
	}
	if c.River, err = b.riverNoop(ctx, b.workers); err != nil {
		return nil, fmt.Errorf("river no-op: %w", err)
	}
	if c.RiverBest, err = b.riverBest(ctx, c.River); err != nil {
		return nil, fmt.Errorf("river no-op at its best: %w", err)
	}
	return c, nil
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "bench: "+format+"\n", args...)
}

// checkoutRoot is the Spillway checkout the bench runs in, found as the
// tests find it: `make bench` runs there, and the bench needs its testdata
// and builds its binary there.
func checkoutRoot() (string, error) {
	root, err := apptest.RepoRoot()
	if err == nil {
		_, err = os.Stat(filepath.Join(root, "cmd", "spillway"))
	}
	if err != nil {
		return "", fmt.Errorf("run the bench inside the Spillway checkout (no go.mod with cmd/spillway above the working directory): %w", err)
	}
	return root, nil
}

// localCluster is the cluster `spillway db start` uses when run at root:
// under $SPILLWAY_DATA_DIR when set, else under the checkout's .data.
func localCluster(root string, getenv func(string) string) localpg.Config {
	dir := filepath.Join(root, ".data")
	if d := getenv("SPILLWAY_DATA_DIR"); d != "" {
		dir = d
		if abs, err := filepath.Abs(d); err == nil {
			dir = abs
		}
	}
	return localpg.Config{Dir: filepath.Join(dir, "postgres")}
}

// machine describes where the numbers were taken.
func (b *bench) machine(ctx context.Context) machineInfo {
	m := machineInfo{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), Go: runtime.Version(),
		OS: runtime.GOOS + "/" + runtime.GOARCH}
	if conn, err := benchConnect(ctx, b.baseURL); err == nil {
		if s, err := db.ReadServerSettings(ctx, conn); err == nil {
			m.Postgres = s.Version
			m.PostgresDurability = "fsync=" + s.Fsync + " synchronous_commit=" + s.SynchronousCommit
		}
		conn.Close(ctx)
	}
	return m
}

// dbName is s as a lower-case Postgres identifier fragment.
func dbName(s string) string {
	out := []byte(strings.ToLower(s))
	for i, c := range out {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			out[i] = '_'
		}
	}
	return string(out)
}
