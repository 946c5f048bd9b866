package web_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/sim"
	"github.com/spillway/spillway/cmd/spillway/service/servicetest"
	"github.com/spillway/spillway/jobs"
)

// harness is the whole product as serve wires it (servicetest runs
// service.New): a fresh Postgres database, River working jobs, the
// simulator on loopback as the provider, and the HTTP API on loopback.
type harness struct {
	*servicetest.Product
	t        *testing.T
	pool     *pgxpool.Pool
	sim      *sim.Sim
	provider app.PaymentProvider
	river    *river.Client[pgx.Tx]
	breakers *app.Breakers
	url      string
}

// guard is what the harness gives every deadline a test does not mean to
// reach (see servicetest.Guard).
const guard = servicetest.Guard

// harnessOpts are servicetest.Options, by the names these tests use.
type harnessOpts struct {
	deadline          time.Duration
	workers           int
	maxAttempts       int
	syncLimit         int
	highValueReserve  int
	maxBacklog        int
	orderMaxBacklog   int
	breaker           *app.BreakerPolicy
	drainRate         float64
	offpeak           app.OffpeakWindow
	senders           *jobs.Senders
	publicURL         string
	checkCallback     func(url string) error
	poolSize          int
	captureTimeout    time.Duration
	asyncTimeout      time.Duration
	reconcileEvery    time.Duration
	syncTimeoutOnHold bool
	jobTimeoutOnHold  bool
	clock             func() time.Time
	runnerNow         func() time.Time
}

func newHarness(t *testing.T, o harnessOpts) *harness {
	t.Helper()
	p := servicetest.New(t, servicetest.Options{Deadline: o.deadline, Workers: o.workers, MaxAttempts: o.maxAttempts,
		SyncLimit: o.syncLimit, HighValueReserve: o.highValueReserve, MaxBacklog: o.maxBacklog, OrderMaxBacklog: o.orderMaxBacklog, Breaker: o.breaker, DrainRate: o.drainRate, Offpeak: o.offpeak, Senders: o.senders,
		PublicURL: o.publicURL, CheckCallback: o.checkCallback, PoolSize: o.poolSize, CaptureTimeout: o.captureTimeout,
		AsyncTimeout: o.asyncTimeout, ReconcileEvery: o.reconcileEvery, SyncTimeoutOnHold: o.syncTimeoutOnHold,
		JobTimeoutOnHold: o.jobTimeoutOnHold, Clock: o.clock, RunnerNow: o.runnerNow})
	return &harness{Product: p, t: t, pool: p.Pool, sim: p.Sim, provider: p.Provider, river: p.River,
		breakers: p.Breakers, url: p.URL}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func fromProduct(r servicetest.Response) response {
	return response{status: r.Status, header: r.Header, body: r.Body}
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	return servicetest.Response{Status: r.status, Header: r.header, Body: r.body}.JSON(t)
}

func (h *harness) do(method, path, contentType, key string, body []byte) response {
	h.t.Helper()
	return fromProduct(h.Do(method, path, contentType, key, body))
}

// post sends a payment and reports a transport failure instead of failing
// the test, so that unlike pay it may run on any goroutine.
func (h *harness) post(key, body string) (response, error) {
	r, err := h.Post(key, body)
	return fromProduct(r), err
}

func (h *harness) pay(key, body string) response {
	h.t.Helper()
	return fromProduct(h.Pay(key, body))
}

func (h *harness) operation(id string) map[string]any {
	h.t.Helper()
	return h.Operation(id)
}

func (h *harness) waitStatus(id string, want app.Status) map[string]any {
	h.t.Helper()
	return h.WaitStatus(id, want)
}

func (h *harness) count(sql string, args ...any) int {
	h.t.Helper()
	return h.Count(sql, args...)
}

func keyf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// providerKey is the key the simulator sees for the first attempt of a
// payment made with idempotencyKey.
func providerKey(idempotencyKey string) string { return servicetest.ProviderKey(idempotencyKey) }
