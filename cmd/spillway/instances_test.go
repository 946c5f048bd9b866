package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/sim"
	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/db/localpg"
)

// stockRole is the ordinary login role the instances use on the stock
// cluster: a real deployment does not connect as a superuser, so it may
// not use the slots Postgres keeps for superusers.
const stockRole = "spillway_app"

// stockPostgres is a throw-away cluster with Postgres's own connection
// defaults (max_connections 100, superuser_reserved_connections 3), unlike
// the project cluster's 200, and a database owned by stockRole.
type stockPostgres struct {
	adminURL string // superuser, on the instances' database
	appURL   string // stockRole, on the same database
	port     int
	dir      string // a temp dir the postgres OS user may traverse
}

// newStockPostgres starts the cluster in a temp dir of its own on a free
// port and stops it when the test ends.
func newStockPostgres(t *testing.T) stockPostgres {
	t.Helper()
	if testing.Short() {
		t.Skip("creates a PostgreSQL cluster; skipped with -short")
	}
	// Made by hand rather than t.TempDir: that one is 0700, and as root
	// the cluster runs as the postgres OS user, who must traverse it.
	dir, err := os.MkdirTemp("", "spillway-stock-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(strings.TrimPrefix(freeAddr(t), "127.0.0.1:"))
	if err != nil {
		t.Fatal(err)
	}
	lc := localpg.Config{Dir: filepath.Join(dir, "postgres"), Port: port, Database: "postgres", MaxConnections: 100}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Registered before the start so a half-started cluster is stopped too.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := localpg.Stop(ctx, lc, io.Discard); err != nil {
			t.Errorf("stop stock cluster: %v", err)
		}
	})
	superURL, err := localpg.Ensure(ctx, lc, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, superURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var maxConns, reserved int
	if err := conn.QueryRow(ctx, `SELECT current_setting('max_connections')::int,
		current_setting('superuser_reserved_connections')::int`).Scan(&maxConns, &reserved); err != nil {
		t.Fatal(err)
	}
	if maxConns != 100 || reserved != 3 {
		t.Fatalf("stock cluster has max_connections %d, superuser_reserved_connections %d; want Postgres's defaults 100 and 3", maxConns, reserved)
	}
	for _, q := range []string{
		"CREATE ROLE " + stockRole + " LOGIN NOSUPERUSER",
		"CREATE DATABASE spillway OWNER " + stockRole,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	u, err := url.Parse(superURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path, u.RawPath = "/spillway", ""
	pg := stockPostgres{adminURL: u.String(), port: port, dir: dir}
	u.User = url.User(stockRole)
	pg.appURL = u.String()
	return pg
}

// TestServeRefusesDBMaxConnsAboveStockLimit: on a stock server an
// ordinary role gets 97 connections, and an instance configured for more
// refuses to start, naming DB_MAX_CONNS, before it listens or migrates.
func TestServeRefusesDBMaxConnsAboveStockLimit(t *testing.T) {
	t.Parallel()
	pg := newStockPostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	conn, err := pgx.Connect(ctx, pg.appURL)
	if err != nil {
		t.Fatal(err)
	}
	limit, err := db.ServerConnLimit(ctx, conn)
	conn.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if limit.Allowed != 97 {
		t.Fatalf("an ordinary role on a stock server is allowed %d connections (%s), want 97", limit.Allowed, limit)
	}

	// The API's port is taken: had run got as far as listening, it would
	// fail naming SPILLWAY_ADDR instead.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	env := map[string]string{
		"DATABASE_URL": pg.appURL, "SPILLWAY_ADDR": ln.Addr().String(),
		"PAYMENT_PROVIDER": "http", "PAYMENT_PROVIDER_URL": "http://127.0.0.1:1",
		"DB_MAX_CONNS": strconv.Itoa(limit.Allowed + 1), "LOG_LEVEL": "warn",
	}
	var stdout, stderr syncBuffer
	err = run(ctx, []string{"serve"}, func(k string) string { return env[k] }, &stdout, &stderr)
	if err == nil {
		t.Fatal("serve started with DB_MAX_CONNS above the server's limit")
	}
	if msg := err.Error(); !strings.Contains(msg, "DB_MAX_CONNS=98") || !strings.Contains(msg, "97") || strings.Contains(msg, "SPILLWAY_ADDR") {
		t.Fatalf("want an error naming DB_MAX_CONNS=98 and the 97 allowed, got: %v", err)
	}
	if strings.Contains(stdout.String(), "serving on") {
		t.Fatalf("serve announced itself before refusing:\n%s", stdout.String())
	}
	aconn, err := pgx.Connect(ctx, pg.adminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer aconn.Close(ctx)
	var migrated bool
	if err := aconn.QueryRow(ctx, `SELECT to_regclass('goose_db_version') IS NOT NULL`).Scan(&migrated); err != nil {
		t.Fatal(err)
	}
	if migrated {
		t.Fatal("serve migrated the database before refusing to start")
	}
}

// TestThreeInstancesFitAStockPostgresUnderLoad: three instances with the
// default pool settings start together against one stock Postgres as an
// ordinary role, and under load spread over all three, half of it while the
// provider is slow or failing, every answer is a documented one, every
// acknowledged payment succeeds with exactly one effect, no instance holds
// more than DB_MAX_CONNS connections, and none meets the server's limit.
func TestThreeInstancesFitAStockPostgresUnderLoad(t *testing.T) {
	t.Parallel()
	pg := newStockPostgres(t)
	ctx := context.Background()
	provider := sim.New(sim.Config{})
	simSrv := httptest.NewServer(provider)
	t.Cleanup(simSrv.Close)

	admin, err := pgx.Connect(ctx, pg.adminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	conns := watchConnections(t, pg.adminURL)

	// All three start at once, so they race for the first migration.
	const n = 3
	insts := make([]*instance, n)
	for i := range insts {
		name := fmt.Sprintf("instance-%d", i)
		// application_name lets pg_stat_activity count each instance's
		// connections, the breakers' and River's listener included.
		dbURL := pg.appURL + "&application_name=" + name
		addr := freeAddr(t)
		insts[i] = startInstance(t, name, "http://"+addr, []string{
			"DATABASE_URL=" + dbURL, "SPILLWAY_ADDR=" + addr, "SPILLWAY_INSTANCE=" + name,
			"PAYMENT_PROVIDER=http", "PAYMENT_PROVIDER_URL=" + simSrv.URL,
			// Faster retries only shorten the drain; the pool settings
			// (DB_MAX_CONNS, DB_MIN_CONNS, SYNC_CONCURRENCY, WORKERS) and
			// the deadlines stay at their defaults.
			"PAYMENT_RETRY_BASE=100ms", "PAYMENT_RETRY_MAX=1s", "LOG_LEVEL=warn",
		})
	}
	waitAllHealthy(t, insts)
	checkMigratedOnce(t, admin)

	loadAcrossInstances(t, insts, provider, admin)

	for _, in := range insts {
		in.checkAlive(t)
		in.checkLog(t)
	}
	perInstance, role, all := conns.stop()
	t.Logf("most connections seen: per instance %v, role %s %d, whole server %d", perInstance, stockRole, role, all)
	cfg, err := app.LoadConfig(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range perInstance {
		if c > cfg.DBMaxConns {
			t.Errorf("%s held %d connections, more than DB_MAX_CONNS (default %d)", name, c, cfg.DBMaxConns)
		}
	}
	if role > n*cfg.DBMaxConns || role >= 97 {
		t.Errorf("the instances held %d connections together; want at most %d×%d and below the 97 the role may open", role, n, cfg.DBMaxConns)
	}
	if len(perInstance) != n {
		t.Errorf("connections seen from %v, want all %d instances", perInstance, n)
	}
}

// loadAcrossInstances sends payments from 24 clients, each to insts in
// turn, while the provider is healthy, then slower than PAYMENT_DEADLINE,
// then failing half its calls; retries what was answered 503 or 409; and
// checks that every answer is a documented one and that every acknowledged
// payment succeeds with exactly one effect at the provider.
func loadAcrossInstances(t *testing.T, insts []*instance, provider *sim.Sim, admin *pgx.Conn) {
	t.Helper()
	// Each client sends its requests to the instances in turn. The first
	// half the provider is healthy; then it is slower than
	// PAYMENT_DEADLINE, so sync calls hold their connections for the
	// whole deadline and time out; then it fails half its calls, which
	// opens the breaker. Phases are wall-clock only to shape the load:
	// nothing below asserts on timing.
	const clients = 24
	lt := newLoadTally()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				lt.post(insts[(c+k)%len(insts)].api, fmt.Sprintf("load-%d-%d", c, k))
			}
		})
	}
	time.Sleep(6 * time.Second)
	provider.SetChaos(sim.Chaos{Latency: 4 * time.Second})
	time.Sleep(3 * time.Second)
	provider.SetChaos(sim.Chaos{ErrorRate: 0.5})
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()
	provider.SetChaos(sim.Chaos{})

	acked, byStatus, reasons, bad, retry := lt.result()
	t.Logf("answers by status %v (503s: %d), 202 reasons %v", byStatus, byStatus[http.StatusServiceUnavailable], reasons)
	if len(bad) > 0 {
		t.Fatalf("%d answers outside 201/202/402/409/503, e.g. %v", len(bad), bad[:min(len(bad), 5)])
	}
	if byStatus[http.StatusCreated] == 0 || byStatus[http.StatusAccepted] == 0 {
		t.Fatalf("want both sync (201) and async (202) answers, got %v", byStatus)
	}
	// A 503 acknowledged nothing and a 409 meant the key was in flight;
	// either way the documented remedy is to retry with the same key,
	// which the idle instances must now acknowledge. (Whether a 503
	// happens at all under load depends on how starved of CPU this
	// machine is, since CAPTURE_TIMEOUT is wall-clock: it is counted,
	// and the connection limit is checked directly below instead.)
	acked = append(acked, retryUntilAcknowledged(t, lt, insts, retry)...)
	t.Logf("acknowledged %d payments", len(acked))

	// Every acknowledged payment is finished by some instance's workers.
	waitAllSucceeded(t, admin, acked, insts)
	for _, id := range acked {
		if e := provider.Effects(id); e != 1 {
			t.Errorf("payment %s: %d effects at the provider, want 1", id, e)
		}
	}
	// Every key ended acknowledged but a declined one's (none are
	// expected), so there is no effect beyond theirs.
	if extra := provider.TotalEffects() - len(acked); extra < 0 || extra > byStatus[http.StatusPaymentRequired] {
		t.Errorf("provider has %d effects for %d acknowledged payments (answers %v)", provider.TotalEffects(), len(acked), byStatus)
	}
}

// checkMigratedOnce fails the test if instances that started together
// applied a migration twice.
func checkMigratedOnce(t *testing.T, admin *pgx.Conn) {
	t.Helper()
	var dupVersions int
	if err := admin.QueryRow(context.Background(), `SELECT count(*) - count(DISTINCT version_id) FROM goose_db_version`).Scan(&dupVersions); err != nil {
		t.Fatal(err)
	}
	if dupVersions != 0 {
		t.Fatalf("%d migrations were applied more than once: the session lock did not serialize the instances", dupVersions)
	}
}

// instance is one `serve` child process.
type instance struct {
	name, api string
	cmd       *exec.Cmd
	stderr    *syncBuffer
	exited    chan struct{}
}

// startInstance re-executes the test binary as `serve` (see TestMain)
// without waiting for it, so several can start at once. The parent's
// Spillway settings are dropped, so the child sees only env and defaults.
func startInstance(t *testing.T, name, api string, env []string) *instance {
	t.Helper()
	in := &instance{name: name, api: api, stderr: &syncBuffer{}, exited: make(chan struct{})}
	in.cmd = exec.Command(os.Args[0], "-test.run=^$")
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.ContainsFunc(spillwayEnvPrefixes, func(p string) bool { return strings.HasPrefix(k, p) }) {
			in.cmd.Env = append(in.cmd.Env, kv)
		}
	}
	in.cmd.Env = append(in.cmd.Env, append(env, "SPILLWAY_TEST_CHILD=1")...)
	in.cmd.Stdout = io.Discard
	in.cmd.Stderr = in.stderr
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = in.cmd.Wait(); close(in.exited) }()
	t.Cleanup(func() {
		_ = in.cmd.Process.Kill()
		<-in.exited
		if t.Failed() {
			t.Logf("%s stderr:\n%s", in.name, tail(in.stderr.String(), 40))
		}
	})
	return in
}

// spillwayEnvPrefixes are the variables a child must not inherit from
// whoever runs the tests: the point is the defaults.
var spillwayEnvPrefixes = []string{"DATABASE_", "DB_", "SYNC_", "WORKERS", "PAYMENT_", "SPILLWAY_", "SIM_",
	"BREAKER_", "CAPTURE_", "SHUTDOWN_", "LOG_", "SMTP_", "SMS_", "WEBHOOK_", "ADMIN_", "DRAIN_", "OFFPEAK_"}

func (in *instance) checkAlive(t *testing.T) {
	t.Helper()
	select {
	case <-in.exited:
		t.Fatalf("%s exited (%v):\n%s", in.name, in.cmd.ProcessState, tail(in.stderr.String(), 40))
	default:
	}
}

// connLimitSigns are what running out of connections looks like in an
// instance's log: the server's refusals, and River's fetch, completer,
// listener and election errors, which were the symptom on the second
// instance. A data race report fails the test too.
var connLimitSigns = []string{
	"remaining connection slots are reserved", "too many clients", "SQLSTATE 53300",
	"Error fetching jobs", "Error completing batch", "Completer error", "Too many errors",
	"Error connecting listener", "Error running listener",
	"Error attempting to elect", "Error attempting reelection", "Error keeping leadership",
	"WARNING: DATA RACE",
}

func (in *instance) checkLog(t *testing.T) {
	t.Helper()
	log := in.stderr.String()
	for _, s := range connLimitSigns {
		if strings.Contains(log, s) {
			t.Errorf("%s logged %q:\n%s", in.name, s, tail(log, 40))
		}
	}
}

// waitAllHealthy polls every instance's /healthz until all answer 200. The
// guard is generous: the later ones wait for goose's session lock, which
// is retried every 5 s.
func waitAllHealthy(t *testing.T, insts []*instance) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	healthy := make([]bool, len(insts))
	deadline := time.Now().Add(3 * time.Minute)
	for !slices.Equal(healthy, slices.Repeat([]bool{true}, len(insts))) {
		for i, in := range insts {
			if healthy[i] {
				continue
			}
			in.checkAlive(t)
			if res, err := client.Get(in.api + "/healthz"); err == nil {
				res.Body.Close()
				healthy[i] = res.StatusCode == http.StatusOK
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("instances healthy: %v", healthy)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// loadTally counts the answers the load clients got.
type loadTally struct {
	client *http.Client

	mu       sync.Mutex
	byStatus map[int]int
	reasons  map[string]int
	acked    []string // operation ids of 2xx answers
	retry    []string // keys answered 503 or 409
	bad      []string
}

func newLoadTally() *loadTally {
	return &loadTally{
		// Far above PAYMENT_DEADLINE + CAPTURE_TIMEOUT, the longest a
		// request may take; reaching it is an undocumented answer.
		client:   &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
		byStatus: map[int]int{}, reasons: map[string]int{},
	}
}

// loadAnswer is one answer to POST /api/v1/payments.
type loadAnswer struct {
	status     int
	id, reason string
	body       []byte
	err        error
}

// send posts one payment. Its amount does not end in 02, which the
// simulator always declines, so every acknowledged payment can succeed.
func (lt *loadTally) send(api, key string) loadAnswer {
	req, _ := http.NewRequest(http.MethodPost, api+"/api/v1/payments",
		strings.NewReader(`{"amount": 1999, "currency": "usd", "customer": {"email": "a@b.example"}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	res, err := lt.client.Do(req)
	if err != nil {
		return loadAnswer{err: err}
	}
	defer res.Body.Close()
	a := loadAnswer{status: res.StatusCode}
	a.body, a.err = io.ReadAll(res.Body)
	var doc struct{ ID, Reason string }
	_ = json.Unmarshal(a.body, &doc)
	a.id, a.reason = doc.ID, doc.Reason
	return a
}

// post sends one payment and counts its answer.
func (lt *loadTally) post(api, key string) {
	a := lt.send(api, key)
	lt.mu.Lock()
	defer lt.mu.Unlock()
	if a.err != nil {
		lt.bad = append(lt.bad, fmt.Sprintf("%s: %d %v", key, a.status, a.err))
		return
	}
	lt.byStatus[a.status]++
	switch a.status {
	case http.StatusCreated, http.StatusAccepted:
		if a.id == "" {
			lt.bad = append(lt.bad, fmt.Sprintf("%s: %d without an id: %s", key, a.status, a.body))
			return
		}
		lt.acked = append(lt.acked, a.id)
		if a.status == http.StatusAccepted {
			lt.reasons[a.reason]++
		}
	case http.StatusServiceUnavailable, http.StatusConflict:
		lt.retry = append(lt.retry, key)
	case http.StatusPaymentRequired:
	default:
		lt.bad = append(lt.bad, fmt.Sprintf("%s: %d %s", key, a.status, bytes.TrimSpace(a.body)))
	}
}

// result is read once the clients have stopped.
func (lt *loadTally) result() (acked []string, byStatus map[int]int, reasons map[string]int, bad, retry []string) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	return slices.Clone(lt.acked), lt.byStatus, lt.reasons, slices.Clone(lt.bad), slices.Clone(lt.retry)
}

// connWatch samples pg_stat_activity and keeps the highest counts seen.
type connWatch struct {
	done        chan struct{}
	stopped     chan struct{}
	perInstance map[string]int
	role, all   int
}

func watchConnections(t *testing.T, adminURL string) *connWatch {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), adminURL)
	if err != nil {
		t.Fatal(err)
	}
	w := &connWatch{done: make(chan struct{}), stopped: make(chan struct{}), perInstance: map[string]int{}}
	go func() {
		defer close(w.stopped)
		defer conn.Close(context.Background())
		for {
			w.sample(conn)
			select {
			case <-w.done:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() {
		select {
		case <-w.done:
		default:
			close(w.done)
		}
		<-w.stopped
	})
	return w
}

func (w *connWatch) sample(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := conn.Query(ctx, `SELECT coalesce(usename, ''), application_name, count(*)
		FROM pg_stat_activity WHERE backend_type = 'client backend' GROUP BY 1, 2`)
	if err != nil {
		return // the next sample will do
	}
	role, all := 0, 0
	for rows.Next() {
		var user, app string
		var c int
		if rows.Scan(&user, &app, &c) != nil {
			continue
		}
		all += c
		if user == stockRole {
			role += c
			// A backend still starting up shows the role before the
			// application_name its client sent: it counts for the role,
			// and for no instance yet.
			if app != "" {
				w.perInstance[app] = max(w.perInstance[app], c)
			}
		}
	}
	rows.Close()
	w.role, w.all = max(w.role, role), max(w.all, all)
}

// stop ends sampling and returns the highest counts: per instance (by
// application_name), for the instances' role, and on the whole server.
func (w *connWatch) stop() (map[string]int, int, int) {
	close(w.done)
	<-w.stopped
	return w.perInstance, w.role, w.all
}

func tail(s string, lines int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(l[max(0, len(l)-lines):], "\n")
}
