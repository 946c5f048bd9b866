package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/rivertype"

	"github.com/spillway/spillway/app/sim"
	"github.com/spillway/spillway/db/dbtest"
)

// The shutdown tests run the real binary path (TestMain re-executes the
// test binary as `spillway serve`, with main's signal handling) and signal
// it as an orchestrator would. They never sleep to let something happen:
// the provider's answers are held until the test lets them go, so the test
// knows exactly which calls are in flight when it signals, and every wait
// is for an explicit condition. Durations appear only as failure guards,
// derived from the configured budget and grace with wide margins.

// Timing configuration of the shutdown tests. The call timeouts are far
// longer than the tests ever hold an answer, so only the shutdown (never a
// timeout) decides what happens to a call.
const (
	testPaymentDeadline = 10 * time.Second // a held sync call still completes sync
	testCaptureTimeout  = time.Second      // the default
	testAsyncTimeout    = 60 * time.Second
	testGrace           = 90 * time.Second // far above anything "at once" may take
	// guard is the margin a failure guard adds for a slow, shared machine
	// under -race.
	guard = 20 * time.Second
)

// heldProvider is the simulator behind a turnstile. A charge takes effect
// at once (the simulator records it, as a real provider would on receipt)
// and its answer is held until the test releases it, or until the caller
// gives up, which is exactly the "effect recorded, answer never heard" case.
type heldProvider struct {
	sim     *sim.Sim
	mu      sync.Mutex
	held    map[string]chan struct{} // provider key → closed on release
	open    bool                     // answers are no longer held
	changed chan struct{}            // closed and replaced whenever held changes
}

func newHeldProvider(t *testing.T) (*heldProvider, string) {
	h := &heldProvider{sim: sim.New(sim.Config{}), held: map[string]chan struct{}{}, changed: make(chan struct{})}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(h.releaseAll) // runs first: srv.Close waits for held handlers
	return h, srv.URL
}

func (h *heldProvider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/charges" {
		h.sim.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	h.sim.ServeHTTP(rec, r)
	key := r.Header.Get("Idempotency-Key")
	release := h.hold(key)
	defer h.unhold(key, release)
	select {
	case <-release:
	case <-r.Context().Done():
		return // the caller gave up: the effect stays, the answer is lost
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

func (h *heldProvider) hold(key string) chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch := make(chan struct{})
	if h.open {
		close(ch)
		return ch
	}
	h.held[key] = ch
	h.notifyLocked()
	return ch
}

func (h *heldProvider) unhold(key string, ch chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.held[key] == ch {
		delete(h.held, key)
		h.notifyLocked()
	}
}

func (h *heldProvider) notifyLocked() {
	close(h.changed)
	h.changed = make(chan struct{})
}

// heldKeys are the keys whose answers are held now.
func (h *heldProvider) heldKeys() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	keys := make([]string, 0, len(h.held))
	for k := range h.held {
		keys = append(keys, k)
	}
	return keys
}

// release lets the held answers for keys go.
func (h *heldProvider) release(keys ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, k := range keys {
		if ch, ok := h.held[k]; ok {
			close(ch)
			delete(h.held, k)
		}
	}
	h.notifyLocked()
}

// releaseAll lets every held answer go and holds no more.
func (h *heldProvider) releaseAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.open = true
	for k, ch := range h.held {
		close(ch)
		delete(h.held, k)
	}
	h.notifyLocked()
}

// waitHeld waits until cond holds for the held keys.
func (h *heldProvider) waitHeld(t *testing.T, what string, cond func(keys []string) bool) []string {
	t.Helper()
	timeout := time.After(guard)
	for {
		h.mu.Lock()
		changed := h.changed
		h.mu.Unlock()
		if keys := h.heldKeys(); cond(keys) {
			return keys
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("%s: never happened; held now: %v", what, h.heldKeys())
		}
	}
}

// child is a spillway serve process started from the test binary.
type child struct {
	cmd    *exec.Cmd
	done   chan struct{} // closed once the process has exited
	stderr syncBuffer
}

// startServer starts a child and waits until it answers /healthz. Unlike
// startChild it owns the only Wait, so a test can watch the exit.
func startServer(t *testing.T, env []string, api string) *child {
	t.Helper()
	c := &child{cmd: exec.Command(os.Args[0], "-test.run=^$"), done: make(chan struct{})}
	c.cmd.Env = append(os.Environ(), append(env, "SPILLWAY_TEST_CHILD=1")...)
	c.cmd.Stderr = io.MultiWriter(os.Stderr, &c.stderr)
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = c.cmd.Wait(); close(c.done) }()
	t.Cleanup(func() { _ = c.cmd.Process.Kill(); <-c.done })
	deadline := time.Now().Add(60 * time.Second)
	for {
		if res, err := http.Get(api + "/healthz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return c
			}
		}
		select {
		case <-c.done:
			t.Fatalf("child exited before it was healthy: %v", c.cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("child never became healthy")
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
}

func (c *child) signal(t *testing.T) time.Time {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	return time.Now()
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// wait waits for the exit, failing after limit.
func (c *child) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	select {
	case <-c.done:
		return c.cmd.ProcessState.ExitCode()
	case <-time.After(limit):
		t.Fatalf("child still running %s after the signal", limit)
		return -1
	}
}

func shutdownEnv(dbURL, addr, providerURL string, workers int) []string {
	return []string{
		"DATABASE_URL=" + dbURL, "SPILLWAY_ADDR=" + addr, "PAYMENT_PROVIDER=http", "PAYMENT_PROVIDER_URL=" + providerURL,
		"PAYMENT_DEADLINE=" + testPaymentDeadline.String(), "CAPTURE_TIMEOUT=" + testCaptureTimeout.String(),
		"PAYMENT_ASYNC_TIMEOUT=" + testAsyncTimeout.String(), "SHUTDOWN_GRACE=" + testGrace.String(),
		"PAYMENT_RETRY_BASE=50ms", "PAYMENT_RETRY_MAX=200ms", fmt.Sprintf("WORKERS=%d", workers),
		"DB_MAX_CONNS=20", "SYNC_CONCURRENCY=8", "LOG_LEVEL=error",
	}
}

// waitFor polls cond until it holds, failing after limit.
func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s", what, limit)
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
}

// setBreaker sets the payment breaker as an operator does, and waits until
// the child's queue gate has applied it: the payments queue is paused
// exactly while the breaker is open, and the gate reads the same in-memory
// breaker the request path does.
func setBreaker(t *testing.T, pool *pgxpool.Pool, state string) {
	t.Helper()
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `UPDATE breakers SET state = $1, generation = generation + 1 WHERE name = 'payment'`, state); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `SELECT pg_notify('spillway_breakers', 'payment')`); err != nil {
		t.Fatal(err)
	}
	want := state == "forced_open"
	waitFor(t, "queue gate applies breaker "+state, guard, func() bool {
		var paused bool
		err := pool.QueryRow(ctx, `SELECT paused_at IS NOT NULL FROM river_queue WHERE name = 'payments'`).Scan(&paused)
		return err == nil && paused == want
	})
}

// jobRow is an operation's River job as the database has it.
type jobRow struct {
	State   rivertype.JobState
	Attempt int
	Errors  int
}

func jobOf(t *testing.T, pool *pgxpool.Pool, opID string) jobRow {
	t.Helper()
	var j jobRow
	err := pool.QueryRow(context.Background(), `
		SELECT j.state::text, j.attempt, coalesce(array_length(j.errors, 1), 0)
		FROM operations o JOIN river_job j ON j.id = o.job_id WHERE o.id = $1`, opID).Scan(&j.State, &j.Attempt, &j.Errors)
	if err != nil {
		t.Fatalf("job of %s: %v", opID, err)
	}
	return j
}

// opRow is an operation as the database has it.
type opRow struct {
	Status, Reason string
	Attempts       int
}

func opOf(t *testing.T, pool *pgxpool.Pool, id string) opRow {
	t.Helper()
	var o opRow
	err := pool.QueryRow(context.Background(), `SELECT status, coalesce(reason, ''), attempts FROM operations WHERE id = $1`, id).
		Scan(&o.Status, &o.Reason, &o.Attempts)
	if err != nil {
		t.Fatalf("operation %s: %v", id, err)
	}
	return o
}

// freshClient opens a new connection per request, so a probe never rides
// an idle keep-alive connection the shutdown is closing; its timeout is the
// "not a hang" guard.
func freshClient() *http.Client {
	return &http.Client{Timeout: guard, Transport: &http.Transport{DisableKeepAlives: true}}
}

type payAnswer struct {
	status int
	doc    map[string]any
	err    error
}

func pay(client *http.Client, api, key string, amount int) payAnswer {
	req, _ := http.NewRequest(http.MethodPost, api+"/api/v1/payments",
		strings.NewReader(fmt.Sprintf(`{"amount": %d, "currency": "usd"}`, amount)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	res, err := client.Do(req)
	if err != nil {
		return payAnswer{err: err}
	}
	defer res.Body.Close()
	var doc map[string]any
	err = json.NewDecoder(res.Body).Decode(&doc)
	return payAnswer{status: res.StatusCode, doc: doc, err: err}
}

// captureWhileOpen captures n payments with the breaker held open, so
// their jobs wait in the paused queue, then closes it so workers take them.
func captureWhileOpen(t *testing.T, pool *pgxpool.Pool, api, prefix string, n int) []string {
	t.Helper()
	setBreaker(t, pool, "forced_open")
	var ids []string
	for i := range n {
		a := pay(freshClient(), api, fmt.Sprintf("%s-%d", prefix, i), 1000+i*100)
		if a.err != nil || a.status != http.StatusAccepted || a.doc["reason"] != "breaker_open" {
			t.Fatalf("capture %d: %d %v %v", i, a.status, a.doc, a.err)
		}
		ids = append(ids, a.doc["id"].(string))
	}
	setBreaker(t, pool, "closed")
	return ids
}

// refused reports whether a new request was turned away without being
// served: refused at the transport, or answered 503.
func refused(a payAnswer) bool {
	return errors.Is(a.err, syscall.ECONNREFUSED) || (a.err == nil && a.status == http.StatusServiceUnavailable)
}

// healthRefused probes with GET /healthz, which touches no provider, so a
// probe that lands before the signal is handled is answered at once
// rather than joining the requests in flight.
func healthRefused(api string) bool {
	res, err := freshClient().Get(api + "/healthz")
	if err != nil {
		return errors.Is(err, syscall.ECONNREFUSED)
	}
	res.Body.Close()
	return res.StatusCode == http.StatusServiceUnavailable
}

// openStream opens an operation's event stream and returns once its first
// event arrived, with a channel that receives the read error when the
// stream ends (nil for a clean EOF) and when that was.
func openStream(t *testing.T, api, id string) <-chan streamEnd {
	t.Helper()
	// No client timeout: only the server may end this stream.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	res, err := client.Get(api + "/api/v1/operations/" + id + "/events")
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("events: %d", res.StatusCode)
	}
	sc := bufio.NewScanner(res.Body)
	for !strings.HasPrefix(sc.Text(), "data: ") {
		if !sc.Scan() {
			t.Fatalf("stream ended before its first event: %v", sc.Err())
		}
	}
	ended := make(chan streamEnd, 1)
	go func() {
		defer res.Body.Close()
		for sc.Scan() {
		}
		ended <- streamEnd{err: sc.Err(), at: time.Now()}
	}()
	return ended
}

type streamEnd struct {
	err error
	at  time.Time
}

// TestSIGTERMFinishesInFlightWorkThenExitsZero is the scenario: at
// SIGTERM, synchronous requests are in flight, River jobs are in the middle
// of provider calls and a status stream is open. The stream ends at once;
// the in-flight requests get their real answers; the running jobs finish
// within the grace and spend no attempt; the workers take nothing new; the
// process exits 0; and after a restart every acknowledged payment has
// succeeded exactly once.
func TestSIGTERMFinishesInFlightWorkThenExitsZero(t *testing.T) {
	t.Parallel()
	pool, dbURL := dbtest.NewWithURL(t)
	provider, providerURL := newHeldProvider(t)
	addr := freeAddr(t)
	api := "http://" + addr
	const workers = 2
	env := shutdownEnv(dbURL, addr, providerURL, workers)
	first := startServer(t, env, api)

	// One more captured payment than there are workers: two are being
	// worked at SIGTERM, the third waits and must not be started by a
	// process that is shutting down.
	captured := captureWhileOpen(t, pool, api, "before", workers+1)
	keys := provider.waitHeld(t, "both workers in a provider call", func(k []string) bool { return len(k) == workers })
	var running, waiting []string
	for _, id := range captured {
		if slices.Contains(keys, id) {
			running = append(running, id)
		} else {
			waiting = append(waiting, id)
		}
	}
	for _, id := range running {
		if j := jobOf(t, pool, id); j.State != rivertype.JobStateRunning {
			t.Fatalf("job of %s is %s while its call is held, want running", id, j.State)
		}
	}
	// The stream watches the waiting payment, which stays queued through
	// the shutdown: only the shutdown can end it.
	stream := openStream(t, api, waiting[0])

	// Two synchronous requests, in flight at the provider.
	syncAnswers := make(chan payAnswer, 2)
	for i := range 2 {
		go func() { syncAnswers <- pay(freshClient(), api, fmt.Sprintf("during-%d", i), 2000+i*100) }()
	}
	held := provider.waitHeld(t, "sync calls in flight", func(k []string) bool { return len(k) == workers+2 })
	var syncKeys []string
	for _, k := range held {
		if !slices.Contains(running, k) {
			syncKeys = append(syncKeys, k)
		}
	}
	for _, k := range held {
		if provider.sim.Calls(k) != 1 {
			t.Fatalf("calls for %s: %d, want 1", k, provider.sim.Calls(k))
		}
	}

	sigAt := first.signal(t)

	// The stream ends with a clean EOF while every call is still held, so
	// it waited for nothing: not for the requests, not for the grace.
	select {
	case end := <-stream:
		if end.err != nil {
			t.Fatalf("stream ended with %v, want EOF", end.err)
		}
		t.Logf("SIGTERM → stream EOF: %s", end.at.Sub(sigAt))
	case <-time.After(guard):
		t.Fatalf("stream still open %s after SIGTERM", guard)
	}
	if first.exited() {
		t.Fatal("child exited with requests and jobs in flight")
	}

	// Shutdown has begun (streams end after the listener is closed): a new
	// request is turned away, not served and not left hanging.
	if a := pay(freshClient(), api, "late", 3000); !refused(a) {
		t.Fatalf("new request during shutdown: %d %v %v, want refused or 503", a.status, a.doc, a.err)
	}

	// The running jobs' calls answer: both jobs finish during the grace,
	// while the held sync requests still keep the process up.
	provider.release(running...)
	waitFor(t, "running jobs succeed during the grace", guard, func() bool {
		for _, id := range running {
			if opOf(t, pool, id).Status != "succeeded" {
				return false
			}
		}
		return true
	})
	if first.exited() {
		t.Fatal("child exited with synchronous requests in flight")
	}

	provider.release(syncKeys...)
	var during []string
	for range 2 {
		a := <-syncAnswers
		if a.err != nil || a.status != http.StatusCreated || a.doc["status"] != "succeeded" || a.doc["mode"] != "sync" {
			t.Fatalf("in-flight sync request: %d %v %v, want 201 succeeded sync", a.status, a.doc, a.err)
		}
		during = append(during, a.doc["id"].(string))
	}

	limit := testPaymentDeadline + testCaptureTimeout + testGrace + guard
	if code := first.wait(t, limit); code != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0; stderr:\n%s", code, first.stderr.String())
	}
	t.Logf("SIGTERM → exit: %s", time.Since(sigAt))

	// No attempt was spent on the shutdown: each running job completed on
	// its first attempt without an error, and the operation was attempted
	// once. The waiting job was never started.
	for _, id := range running {
		if j := jobOf(t, pool, id); j.State != rivertype.JobStateCompleted || j.Attempt != 1 || j.Errors != 0 {
			t.Errorf("job of %s after shutdown: %+v, want completed on attempt 1 with no errors", id, j)
		}
		if o := opOf(t, pool, id); o.Status != "succeeded" || o.Attempts != 1 {
			t.Errorf("operation %s after shutdown: %+v, want succeeded after 1 attempt", id, o)
		}
	}
	for _, id := range waiting {
		if j := jobOf(t, pool, id); j.State != rivertype.JobStateAvailable || j.Attempt != 0 {
			t.Errorf("waiting job of %s after shutdown: %+v, want available and never attempted", id, j)
		}
		if n := provider.sim.Calls(id); n != 0 {
			t.Errorf("waiting payment %s was called %d times during shutdown", id, n)
		}
	}

	// A new process on the same database finishes the rest, and every
	// payment acknowledged before, during and after took effect once.
	provider.releaseAll()
	startServer(t, env, api)
	after := pay(freshClient(), api, "after", 4000)
	if after.err != nil || after.status != http.StatusCreated {
		t.Fatalf("payment after restart: %d %v %v", after.status, after.doc, after.err)
	}
	all := append(append(slices.Clone(captured), during...), after.doc["id"].(string))
	waitFor(t, "every acknowledged payment succeeds", guard, func() bool {
		for _, id := range all {
			if opOf(t, pool, id).Status != "succeeded" {
				return false
			}
		}
		return true
	})
	for _, id := range all {
		if n := provider.sim.Effects(id); n != 1 {
			t.Errorf("payment %s: %d effects, want 1", id, n)
		}
	}
	for _, id := range waiting {
		if j := jobOf(t, pool, id); j.Attempt != 1 || j.Errors != 0 {
			t.Errorf("job of %s after restart: %+v, want done on attempt 1", id, j)
		}
	}
}

// TestSecondSignalStopsAtOnce: a second SIGTERM during the grace cancels
// the running jobs instead of waiting for them, and the process exits at
// once with status 1 (the shutdown was cut short; an orchestrator should
// know). The cancelled calls had taken effect, so their operations are
// recorded processing with an unknown outcome, never failed, and the jobs
// are left to be worked again; after a restart they complete under the
// same provider key, with one effect each.
func TestSecondSignalStopsAtOnce(t *testing.T) {
	t.Parallel()
	pool, dbURL := dbtest.NewWithURL(t)
	provider, providerURL := newHeldProvider(t)
	addr := freeAddr(t)
	api := "http://" + addr
	const workers = 2
	env := shutdownEnv(dbURL, addr, providerURL, workers)
	first := startServer(t, env, api)

	ids := captureWhileOpen(t, pool, api, "hard", workers)
	provider.waitHeld(t, "both jobs in a provider call", func(k []string) bool { return len(k) == workers })
	for _, id := range ids {
		if j := jobOf(t, pool, id); j.State != rivertype.JobStateRunning {
			t.Fatalf("job of %s is %s while its call is held, want running", id, j.State)
		}
	}
	first.signal(t)
	// Once a new request is refused the shutdown is under way; with no
	// request in flight it is now waiting on the jobs, for up to the grace.
	waitFor(t, "shutdown refuses new requests", guard, func() bool { return healthRefused(api) })
	if first.exited() {
		t.Fatal("child exited with jobs in flight, before the grace")
	}

	secondAt := first.signal(t)
	// "At once" is bounded by the guard alone, far below the grace and the
	// call timeout, either of which would also end the wait.
	code := first.wait(t, guard)
	t.Logf("second SIGTERM → exit: %s", time.Since(secondAt))
	if code != 1 || !strings.Contains(first.stderr.String(), "second signal") {
		t.Fatalf("exit status %d, want 1 with the reason on stderr:\n%s", code, first.stderr.String())
	}

	// What the cancelled attempts recorded: the provider may have acted, so
	// nothing is failed. River (since 0.44) treats a job whose context its
	// stop cancelled as interrupted, not errored: available again at once,
	// its attempt given back, no error added; so even a hard stop spends no
	// attempt and leaves nothing running for a rescue minutes away.
	for _, id := range ids {
		o := opOf(t, pool, id)
		if o.Status != "processing" || o.Reason != "outcome_unknown" {
			t.Errorf("operation %s after a hard stop: %+v, want processing/outcome_unknown", id, o)
		}
		j := jobOf(t, pool, id)
		if j.State != rivertype.JobStateAvailable || j.Attempt != 0 || j.Errors != 0 {
			t.Errorf("job of %s after a hard stop: %+v, want available, attempt 0, no errors", id, j)
		}
		t.Logf("job of %s after the hard stop: %+v; operation %+v", id, j, o)
	}

	// The calls we cut off say nothing about the provider's health: had
	// they counted as faults, a hard stop of a busy instance could open
	// the breaker all instances share.
	var failures int
	if err := pool.QueryRow(context.Background(),
		`SELECT coalesce(sum(failures), 0) FROM breaker_counts WHERE name = 'payment'`).Scan(&failures); err != nil {
		t.Fatal(err)
	}
	if failures != 0 {
		t.Errorf("the hard stop counted %d provider faults against the breaker, want 0", failures)
	}

	provider.releaseAll()
	startServer(t, env, api)
	waitFor(t, "cancelled payments complete after restart", guard, func() bool {
		for _, id := range ids {
			if opOf(t, pool, id).Status != "succeeded" {
				return false
			}
		}
		return true
	})
	for _, id := range ids {
		// Two calls under the operation's own key: the cancelled one and
		// the retry the provider answered from its record.
		if e, c := provider.sim.Effects(id), provider.sim.Calls(id); e != 1 || c != 2 {
			t.Errorf("payment %s: %d effects over %d calls, want 1 over 2 (same key)", id, e, c)
		}
	}
}

// TestShutdownRefusesNewRequests: from SIGTERM until exit a new request is
// refused at the transport (the listener is closed) or answered 503, never
// left hanging, while the request already in flight gets its answer.
func TestShutdownRefusesNewRequests(t *testing.T) {
	t.Parallel()
	_, dbURL := dbtest.NewWithURL(t)
	provider, providerURL := newHeldProvider(t)
	addr := freeAddr(t)
	api := "http://" + addr
	c := startServer(t, shutdownEnv(dbURL, addr, providerURL, 2), api)

	inflight := make(chan payAnswer, 1)
	go func() { inflight <- pay(freshClient(), api, "inflight", 1500) }()
	keys := provider.waitHeld(t, "request in flight", func(k []string) bool { return len(k) == 1 })

	sigAt := c.signal(t)
	waitFor(t, "health refused", guard, func() bool { return healthRefused(api) })
	if a := pay(freshClient(), api, "new", 1600); !refused(a) {
		t.Fatalf("new payment during shutdown: %d %v %v", a.status, a.doc, a.err)
	}
	if c.exited() {
		t.Fatal("child exited with a request in flight")
	}
	provider.release(keys...)
	if a := <-inflight; a.err != nil || a.status != http.StatusCreated {
		t.Fatalf("in-flight request: %d %v %v, want 201", a.status, a.doc, a.err)
	}
	if code := c.wait(t, testPaymentDeadline+testCaptureTimeout+testGrace+guard); code != 0 {
		t.Fatalf("exit status %d, want 0; stderr:\n%s", code, c.stderr.String())
	}
	t.Logf("SIGTERM → exit: %s", time.Since(sigAt))
}
