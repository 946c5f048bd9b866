package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spillway/spillway/app/apptest"
	"github.com/spillway/spillway/app/sim"
	"github.com/spillway/spillway/cmd/internal/child"
	"github.com/spillway/spillway/db/localpg"
)

// chaosSKU is what every order buys; the simulator stocks plenty of it so
// no order is declined for stock and every order exercises both calls.
const chaosSKU = "sku-tea"

// instances is how many `spillway serve` processes share the database:
// two, so a SIGKILL leaves one serving and River has a second client.
const instances = 2

// suite is the state shared by every scenario of a run.
type suite struct {
	getenv func(string) string
	log    io.Writer
	root   string // the checkout: bin/, .data/
	dir    string // .data/chaos: logs, the cluster, the report
	bin    string // bin/spillway
	timing timing
	runID  string
	keep   bool

	pg       localpg.Config // the suite's own cluster
	baseURL  string         // its maintenance database, direct
	tox      *toxiproxy
	pgProxy  string // host:port of the Postgres proxy
	payURL   string // PAYMENT_PROVIDER_URL, through the payment proxy
	invURL   string // INVENTORY_URL, through the inventory proxy
	sim      *sim.Sim
	simURL   string // the simulator, direct: for its books
	simSrv   *http.Server
	clock    *steppedClock
	pgMu     sync.Mutex // Stop and Ensure of the cluster, one at a time
	baseEnv  []string
	closers  []func()
	progress func(format string, args ...any)
}

// steppedClock is the simulator's wall clock: the real one plus an offset
// that a scenario steps. It carries no monotonic reading (Round(0)), so
// durations the simulator measures with it (its flapping schedule) see the
// step as a real wall-clock step would show.
type steppedClock struct{ offset atomic.Int64 }

func (c *steppedClock) now() time.Time {
	return time.Now().Round(0).Add(time.Duration(c.offset.Load()))
}

func (c *steppedClock) step(d time.Duration) { c.offset.Add(int64(d)) }

func newSuite(ctx context.Context, getenv func(string) string, log io.Writer, t timing) (*suite, error) {
	root, err := apptest.RepoRoot()
	if err == nil {
		_, err = os.Stat(filepath.Join(root, "cmd", "spillway"))
	}
	if err != nil {
		return nil, fmt.Errorf("run the suite inside the Spillway checkout (no go.mod with cmd/spillway above the working directory): %w", err)
	}
	id := make([]byte, 4)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	s := &suite{getenv: getenv, log: log, root: root, dir: filepath.Join(root, ".data", "chaos"), timing: t,
		runID: hex.EncodeToString(id), keep: getenv("CHAOS_KEEP") == "1", clock: &steppedClock{}}
	s.progress = func(format string, args ...any) { fmt.Fprintf(log, "chaos: "+format+"\n", args...) }
	if err := os.MkdirAll(filepath.Join(s.dir, "logs"), 0o755); err != nil {
		return nil, err
	}
	return s, nil
}

// start builds the binary and brings up the cluster, the simulator and
// the proxies. close undoes it.
func (s *suite) start(ctx context.Context) error {
	if err := s.build(ctx); err != nil {
		return err
	}

	// A cluster of the suite's own, on a free port: restarting it must
	// never stop the shared one (.data/postgres, 127.0.0.1:54329) that
	// tests and `make run` use. The port is chosen per run, written into
	// the cluster's config by Ensure.
	addr, err := child.FreeLoopbackAddr()
	if err != nil {
		return err
	}
	_, port := splitHostPort(addr)
	p, _ := strconv.Atoi(port)
	s.pg = localpg.Config{Dir: filepath.Join(s.dir, "postgres"), Port: p}
	s.progress("Postgres of its own in %s on 127.0.0.1:%d", s.pg.Dir, p)
	if s.baseURL, err = localpg.Ensure(ctx, s.pg, s.log); err != nil {
		return fmt.Errorf("chaos Postgres: %w (scripts/setup.sh installs it)", err)
	}
	s.closers = append(s.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = localpg.Stop(ctx, s.pg, io.Discard)
	})

	// The simulator runs in this process, not as `spillway sim`, for one
	// reason: the clock-step scenario steps its wall clock through
	// sim.Config.Now, which the command does not expose. It serves the same
	// handler on its own loopback port, reached only through the proxies.
	s.sim = sim.New(sim.Config{Now: s.clock.now, Stock: map[string]int{chaosSKU: 10_000_000}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	s.simURL = "http://" + ln.Addr().String()
	s.simSrv = &http.Server{Handler: s.sim, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.simSrv.Serve(ln) }()
	s.closers = append(s.closers, func() { _ = s.simSrv.Close() })

	if s.tox, err = startToxiproxy(ctx, filepath.Join(s.root, ".data", "bin", "toxiproxy-server"),
		filepath.Join(s.dir, "logs", "toxiproxy.log")); err != nil {
		return err
	}
	s.closers = append(s.closers, s.tox.stop)
	pgAddr := net.JoinHostPort("127.0.0.1", port)
	if s.pgProxy, err = s.tox.proxy(ctx, proxyPostgres, pgAddr); err != nil {
		return err
	}
	payAddr, err := s.tox.proxy(ctx, proxyPayment, ln.Addr().String())
	if err != nil {
		return err
	}
	invAddr, err := s.tox.proxy(ctx, proxyInventory, ln.Addr().String())
	if err != nil {
		return err
	}
	s.payURL, s.invURL = "http://"+payAddr, "http://"+invAddr+sim.InventoryPath
	s.baseEnv = s.serverEnv()
	return nil
}

func (s *suite) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}

// build compiles bin/spillway as a user would.
func (s *suite) build(ctx context.Context) error {
	s.bin = filepath.Join(s.root, "bin", "spillway")
	s.progress("go build -o bin/spillway ./cmd/spillway")
	goBin := "go"
	if p := s.getenv("GO"); p != "" {
		goBin = p
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", s.bin, "./cmd/spillway")
	cmd.Dir = s.root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	return nil
}

// serverEnv is what every instance is started with, apart from its
// database and address. Budgets and backoffs are shortened so a fault of
// seconds is felt and its backlog drains in seconds; what is promised
// (never lost, exactly once, within budget) does not depend on them.
func (s *suite) serverEnv() []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"PAYMENT_PROVIDER=http", "PAYMENT_PROVIDER_URL=" + s.payURL, "INVENTORY_URL=" + s.invURL,
		"LOG_LEVEL=warn",
		"PAYMENT_DEADLINE=" + paymentDeadline.String(), "CAPTURE_TIMEOUT=" + captureTimeout.String(),
		"ORDER_DEADLINE=" + orderDeadline.String(), "INVENTORY_DEADLINE=500ms",
		"PAYMENT_ASYNC_TIMEOUT=3s", "INVENTORY_ASYNC_TIMEOUT=3s",
		"PAYMENT_RETRY_BASE=100ms", "PAYMENT_RETRY_MAX=1s",
		"INVENTORY_RETRY_BASE=100ms", "INVENTORY_RETRY_MAX=1s",
		"BREAKER_PAYMENT_OPEN_WAIT=500ms", "BREAKER_INVENTORY_OPEN_WAIT=500ms",
		"BREAKER_PAYMENT_MAX_OPEN_WAIT=2s", "BREAKER_INVENTORY_MAX_OPEN_WAIT=2s",
		"RECONCILE_EVERY=1s",
		// The orphan sweep runs every second and refunds what it judges
		// orphaned, so a charge it misjudges (a clock step makes fresh
		// charges look old) shows as a succeeded operation whose money was
		// given back. The grace covers the slowest sync commit (an order:
		// ORDER_DEADLINE + CAPTURE_TIMEOUT).
		"ORPHAN_SWEEP_EVERY=1s", "ORPHAN_GRACE=" + (orderDeadline + captureTimeout + time.Second).String(), "ORPHAN_REFUND=true",
		"DB_MAX_CONNS=30", "DB_MIN_CONNS=4", "WORKERS=32",
	}
	return env
}

// The budgets the instances run with; a request answered later than its
// kind's budget is counted as over budget.
const (
	paymentDeadline = time.Second
	captureTimeout  = time.Second
	orderDeadline   = 2 * time.Second
)

func budget(kind string) time.Duration {
	if kind == "order" {
		return orderDeadline + captureTimeout
	}
	return paymentDeadline + captureTimeout
}

func (s *suite) stopPostgres(ctx context.Context) error {
	s.pgMu.Lock()
	defer s.pgMu.Unlock()
	return localpg.Stop(ctx, s.pg, io.Discard)
}

func (s *suite) startPostgres(ctx context.Context) error {
	s.pgMu.Lock()
	defer s.pgMu.Unlock()
	_, err := localpg.Ensure(ctx, s.pg, io.Discard)
	return err
}

// scenarioRun is one scenario's database, instances and answers.
type scenarioRun struct {
	s       *suite
	sc      scenario
	dbName  string
	direct  string        // its database, bypassing the proxy: for checks
	pool    *pgxpool.Pool // on direct
	env     []string
	mu      sync.Mutex
	servers []*server // by instance; nil while one is down
	addrs   []string  // by instance: where it listens, kept across a restart
}

// targets is the API base URLs of the instances that are up.
func (r *scenarioRun) targets() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, sv := range r.servers {
		if sv != nil {
			out = append(out, sv.api)
		}
	}
	return out
}

func (r *scenarioRun) killInstance(i int) {
	r.mu.Lock()
	sv := r.servers[i]
	r.servers[i] = nil
	r.mu.Unlock()
	if sv != nil {
		sv.Kill()
	}
}

// restartInstance starts instance i again on the address it had, as a
// supervisor would.
func (r *scenarioRun) restartInstance(ctx context.Context, i int) error {
	addr := r.addrs[i]
	sv, err := startServer(ctx, r.s.bin, r.s.root, instanceName(i), addr, r.env, r.logDir())
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.servers[i] = sv
	r.mu.Unlock()
	return nil
}

func instanceName(i int) string { return string(rune('a' + i)) }

func (r *scenarioRun) logDir() string { return filepath.Join(r.s.dir, "logs", r.sc.Name) }

// prepare creates the scenario's database, migrates and seeds it with
// `spillway seed`, and starts the instances on it through the proxy.
func (s *suite) prepare(ctx context.Context, sc scenario) (*scenarioRun, error) {
	if err := s.tox.reset(ctx); err != nil {
		return nil, err
	}
	s.sim.Reset()
	s.clock.offset.Store(0)
	r := &scenarioRun{s: s, sc: sc, dbName: "chaos_" + dbIdent(sc.Name)}
	if err := os.RemoveAll(r.logDir()); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(r.logDir(), 0o755); err != nil {
		return nil, err
	}
	var err error
	if r.direct, err = localpg.CreateTestDatabase(ctx, s.baseURL, r.dbName); err != nil {
		return nil, err
	}
	seed := exec.CommandContext(ctx, s.bin, "seed")
	seed.Dir = s.root
	seed.Env = append(s.baseEnv, "DATABASE_URL="+r.direct)
	if out, err := seed.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("spillway seed: %w\n%s", err, out)
	}
	if r.pool, err = pgxpool.New(ctx, r.direct); err != nil {
		return nil, err
	}
	proxied, err := viaProxy(r.direct, s.pgProxy)
	if err != nil {
		return nil, err
	}
	r.env = append(s.baseEnv, "DATABASE_URL="+proxied)
	r.servers = make([]*server, instances)
	r.addrs = make([]string, instances)
	for i := range instances {
		sv, err := startServer(ctx, s.bin, s.root, instanceName(i), "", r.env, r.logDir())
		if err != nil {
			r.close()
			return nil, err
		}
		r.servers[i], r.addrs[i] = sv, sv.addr()
	}
	return r, nil
}

// close stops the instances and drops the database (unless CHAOS_KEEP=1).
func (r *scenarioRun) close() {
	var wg sync.WaitGroup
	for _, sv := range r.servers {
		if sv != nil {
			wg.Go(func() { sv.Stop(5 * time.Second) })
		}
	}
	wg.Wait()
	if r.pool != nil {
		r.pool.Close()
	}
	if r.s.keep {
		r.s.progress("kept database %s", r.dbName)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := localpg.DropDatabase(ctx, r.s.baseURL, r.dbName); err != nil {
		r.s.progress("drop %s: %v", r.dbName, err)
	}
}

// viaProxy is dbURL with its host and port replaced by the proxy's.
func viaProxy(dbURL, proxy string) (string, error) {
	u, err := url.Parse(dbURL)
	if err != nil {
		return "", err
	}
	if u.Host == "" {
		return "", errors.New("database URL without a host")
	}
	u.Host = proxy
	return u.String(), nil
}

// dbIdent is s as a lower-case Postgres identifier fragment.
func dbIdent(s string) string {
	out := []byte(s)
	for i, c := range out {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			out[i] = '_'
		}
	}
	return string(out)
}
