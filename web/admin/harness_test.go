package admin_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/apptest"
	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/db/dbtest"
	"github.com/spillway/spillway/jobs"
	"github.com/spillway/spillway/web/admin"
)

const (
	testPassword = "correct horse battery"
	testQueue    = "admin_test"
)

// harness is the admin UI on real parts: its own Postgres database, an
// insert-only River client, the shared breakers, and the handler mounted
// at /admin on loopback as the service mounts it.
type harness struct {
	t        *testing.T
	pool     *pgxpool.Pool
	river    *river.Client[pgx.Tx]
	breakers *app.Breakers
	operator *app.Operator
	features *app.FeatureSwitch
	url      string
	// testRiver works the test_record kind on queue admin_test with one
	// worker, once a test starts it; ran hears each job it works.
	testRiver *river.Client[pgx.Tx]
	ran       chan int64
	// backlog is set by harnessOpts.backlogBounds.
	backlog *app.BacklogBounds
}

type harnessOpts struct {
	limits         app.SignInLimits
	now            func() time.Time // nil: the real clock
	publicURL      string
	trustedProxies []netip.Prefix
	sessionIdle    time.Duration
	backlog        admin.Backlogs
	// backlogBounds, when set, gives the UI real backlog bounds that read
	// this harness's database on the harness clock (h.backlog); a test
	// calls h.backlog.Refresh to take a reading.
	backlogBounds []app.BacklogBound
	bulkheads     map[string]admin.Bulkhead
	highValue     int64
	// drills offers drills of payment; their jobs are only inserted.
	drills bool
}

// clock is a test's time for the admin UI: it moves only when the test
// moves it.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

// newClock starts at the real time, for the cookie jar judges a cookie's
// expiry by the real clock: a session cookie from a clock far in the past
// would be dropped as expired.
func newClock() *clock { return &clock{t: time.Now().UTC().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newHarness(t *testing.T, o harnessOpts) *harness {
	t.Helper()
	pool := dbtest.New(t)
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	breakers, err := app.NewBreakers(app.BreakersConfig{Store: db.NewStore(pool), Instance: "test", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := breakers.Register(context.Background(), "payment", app.DefaultBreakerPolicy(), app.PolicyOverride{}); err != nil {
		t.Fatal(err)
	}
	rc, err := jobs.NewClient(jobs.Config{Pool: pool, Logger: log, StepWorkers: []jobs.StepRegistration{jobs.StepWorkerFor[app.OrderArgs]()},
		Drills: idleDrills{}})
	if err != nil {
		t.Fatal(err)
	}
	var drills *app.Drills
	if o.drills {
		if drills, err = app.NewDrills(app.DrillsConfig{Store: db.NewStore(pool), Jobs: rc, Breakers: breakers,
			Canaries: idleDrills{}, Dependencies: []string{app.DepPayment},
			Settings: app.DrillSettings{Duration: time.Minute, Canaries: 3, Mode: app.DrillShadow}, Now: o.now}); err != nil {
			t.Fatal(err)
		}
	}
	// The switch is refreshed only when a test says so (or an operator's
	// change does): what it shows is what the test set up.
	bulkheads := map[string]app.Bulkhead{}
	for name, b := range o.bulkheads {
		bulkheads[name] = b
	}
	features, err := app.NewFeatureSwitch(app.FeaturesConfig{Store: db.NewStore(pool), Breakers: breakers,
		Bulkheads: bulkheads, Now: o.now, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	op, err := app.NewOperator(app.OperatorConfig{Store: db.NewStore(pool), Jobs: rc, Breakers: breakers,
		Features: features, Drills: drills, Limits: o.limits, SessionIdle: o.sessionIdle, Logger: log, Now: o.now})
	if err != nil {
		t.Fatal(err)
	}
	var backlog *app.BacklogBounds
	if o.backlogBounds != nil {
		backlog = app.NewBacklogBounds(app.BacklogConfig{Reader: db.NewStore(pool), Bounds: o.backlogBounds, Now: o.now, Logger: log})
		o.backlog = backlog
	}
	h, err := admin.New(admin.Config{Pool: pool, Operator: op, Logger: log,
		Now: o.now, PublicURL: o.publicURL, TrustedProxies: o.trustedProxies,
		Backlog: o.backlog, Bulkheads: o.bulkheads, HighValueAmount: o.highValue, Features: features, Drills: drills})
	if err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	r.Use(func(next http.Handler) http.Handler { // what the service's requestID middleware does
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Request-Id", "req-"+uuid.NewString()[:8])
			next.ServeHTTP(w, r)
		})
	})
	r.Mount("/admin", h)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	ran := make(chan int64, 1000)
	workers := river.NewWorkers()
	river.AddWorker(workers, &recordWorker{ran: ran})
	tr, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Logger: log, Workers: workers,
		Queues: map[string]river.QueueConfig{testQueue: {MaxWorkers: 1}}, FetchCooldown: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, pool: pool, river: rc, breakers: breakers, operator: op, features: features, url: srv.URL,
		testRiver: tr, ran: ran, backlog: backlog}
}

// user creates a user with testPassword.
func (h *harness) user(email string, role app.Role) {
	h.t.Helper()
	if _, err := h.operator.CreateUser(context.Background(), app.Actor{Email: "test"}, email, testPassword, role); err != nil {
		h.t.Fatal(err)
	}
}

// client is one browser: a cookie jar, and redirects shown, not followed.
type client struct {
	h    *harness
	http *http.Client
	// header is added to every request.
	header http.Header
}

func (h *harness) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{h: h, header: http.Header{}, http: &http.Client{Jar: jar, Timeout: apptest.Patience,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// signedIn returns a client signed in as a new user with role.
func (h *harness) signedIn(email string, role app.Role) *client {
	h.t.Helper()
	h.user(email, role)
	c := h.client()
	res := c.post("/admin/signin", url.Values{"email": {email}, "password": {testPassword}})
	if res.status != http.StatusSeeOther {
		h.t.Fatalf("sign in as %s: %d %s", email, res.status, res.body)
	}
	return c
}

type result struct {
	status   int
	location string
	header   http.Header
	body     string
}

func (c *client) do(req *http.Request) result {
	c.h.t.Helper()
	for k, vs := range c.header {
		req.Header[k] = vs
	}
	res, err := c.http.Do(req)
	if err != nil {
		c.h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return result{status: res.StatusCode, location: res.Header.Get("Location"), header: res.Header, body: string(b)}
}

func (c *client) get(path string) result {
	c.h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.h.url+path, nil)
	return c.do(req)
}

func (c *client) post(path string, form url.Values) result {
	c.h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.h.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

// mustGet fetches a page that must answer 200 and returns its body.
func (c *client) mustGet(path string) string {
	c.h.t.Helper()
	r := c.get(path)
	if r.status != http.StatusOK {
		c.h.t.Fatalf("GET %s: %d\n%s", path, r.status, r.body)
	}
	return r.body
}

// mustPost posts a form that must answer 303 and returns where to.
func (c *client) mustPost(path string, form url.Values) string {
	c.h.t.Helper()
	r := c.post(path, form)
	if r.status != http.StatusSeeOther {
		c.h.t.Fatalf("POST %s: %d\n%s", path, r.status, r.body)
	}
	return r.location
}

type seed struct {
	amount      int64
	email       string
	description string
	state       string // River state; "" is available
	priority    int    // 0 is 3
	kind        string // "" is a payment with an operation; "order" an order with one; else a test_record job
	// lines and steps are an order's; an order's amount is its lines'
	// total.
	lines       []app.PricedLine
	steps       []app.Step
	queue       string
	scheduledAt time.Time
	errorText   string // recorded as an attempt's error
}

type seeded struct {
	jobID int64
	opID  uuid.UUID
}

// seedJob inserts a job (and for payments its operation) as the runner
// would, then moves it to the wanted state as River would have.
func (h *harness) seedJob(s seed) seeded {
	h.t.Helper()
	ctx := context.Background()
	if s.priority == 0 {
		s.priority = 3
	}
	if s.amount == 0 {
		s.amount = 1999
	}
	tx, err := h.pool.Begin(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	var out seeded
	opts := &river.InsertOpts{Priority: s.priority, Queue: s.queue}
	if !s.scheduledAt.IsZero() {
		opts.ScheduledAt = s.scheduledAt
	}
	if s.kind == "" || s.kind == app.KindOrder {
		now := time.Now().UTC().Truncate(time.Microsecond)
		op := &app.Operation{ID: uuid.New(), Kind: app.KindPayment, Status: app.StatusQueued, Mode: app.ModeAsync,
			Reason: app.ReasonProviderError, Priority: s.priority, CreatedAt: now, UpdatedAt: now,
			Payment: app.PaymentRequest{Amount: s.amount, Currency: "usd", Description: s.description}}
		if s.email != "" {
			op.Payment.Customer = &app.Customer{Email: s.email}
		}
		var args river.JobArgs = app.PaymentArgs{OperationID: op.ID}
		if s.kind == app.KindOrder {
			op.Kind, op.Lines, op.Steps = app.KindOrder, s.lines, s.steps
			op.Payment.Amount = 0
			for _, l := range s.lines {
				op.Payment.Amount += l.UnitPrice * int64(l.Quantity)
			}
			args = app.OrderArgs{OperationID: op.ID}
		}
		res, err := h.river.InsertTx(ctx, tx, args, opts)
		if err != nil {
			h.t.Fatal(err)
		}
		op.JobID = res.Job.ID
		if _, err := db.InsertOperationTx(ctx, tx, op); err != nil {
			h.t.Fatal(err)
		}
		out = seeded{jobID: res.Job.ID, opID: op.ID}
	} else {
		if opts.Queue == "" {
			opts.Queue = testQueue
		}
		res, err := h.testRiver.InsertTx(ctx, tx, recordArgs{Name: s.description}, opts)
		if err != nil {
			h.t.Fatal(err)
		}
		out.jobID = res.Job.ID
	}
	if s.errorText != "" {
		if _, err := tx.Exec(ctx, `UPDATE river_job SET attempt = 1, attempted_at = now(),
			errors = ARRAY[jsonb_build_object('at', now(), 'attempt', 1, 'error', $2::text, 'trace', '')]
			WHERE id = $1`, out.jobID, s.errorText); err != nil {
			h.t.Fatal(err)
		}
	}
	switch s.state {
	case "", "available", "scheduled":
	case "discarded", "cancelled", "completed":
		if _, err := tx.Exec(ctx, `UPDATE river_job SET state = $2, finalized_at = now() WHERE id = $1`, out.jobID, s.state); err != nil {
			h.t.Fatal(err)
		}
		status := map[string]string{"discarded": "failed", "cancelled": "cancelled", "completed": "succeeded"}[s.state]
		if _, err := tx.Exec(ctx, `UPDATE operations SET status = $2, completed_at = now() WHERE job_id = $1`, out.jobID, status); err != nil {
			h.t.Fatal(err)
		}
	default: // running, retryable
		if _, err := tx.Exec(ctx, `UPDATE river_job SET state = $2, attempt = greatest(attempt, 1), attempted_at = now() WHERE id = $1`,
			out.jobID, s.state); err != nil {
			h.t.Fatal(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		h.t.Fatal(err)
	}
	return out
}

func (h *harness) job(id int64) (state string, priority int, scheduledAt time.Time) {
	h.t.Helper()
	if err := h.pool.QueryRow(context.Background(), `SELECT state::text, priority, scheduled_at FROM river_job WHERE id = $1`, id).
		Scan(&state, &priority, &scheduledAt); err != nil {
		h.t.Fatal(err)
	}
	return state, priority, scheduledAt
}

// dueNow reports whether the job is due by the database's clock, the one
// River fetches by: its scheduled_at is not after now().
func (h *harness) dueNow(id int64) bool {
	h.t.Helper()
	var due bool
	if err := h.pool.QueryRow(context.Background(), `SELECT scheduled_at <= now() FROM river_job WHERE id = $1`, id).Scan(&due); err != nil {
		h.t.Fatal(err)
	}
	return due
}

func (h *harness) opStatus(id uuid.UUID) (status string, priority int) {
	h.t.Helper()
	if err := h.pool.QueryRow(context.Background(), `SELECT status, priority FROM operations WHERE id = $1`, id).
		Scan(&status, &priority); err != nil {
		h.t.Fatal(err)
	}
	return status, priority
}

func (h *harness) count(sql string, args ...any) int {
	h.t.Helper()
	var n int
	if err := h.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		h.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// audits returns the audit log's actions, oldest first.
func (h *harness) audits(action string) []db.AuditEntry {
	h.t.Helper()
	all, err := db.ListAudit(context.Background(), h.pool, 0, 1000)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []db.AuditEntry
	for i := len(all) - 1; i >= 0; i-- {
		if action == "" || all[i].Action == action {
			out = append(out, all[i])
		}
	}
	return out
}

// recordArgs is a test job kind; recordWorker notes the order jobs run in.
type recordArgs struct {
	Name string `json:"name"`
}

func (recordArgs) Kind() string { return "test_record" }

type recordWorker struct {
	river.WorkerDefaults[recordArgs]
	ran chan int64
}

func (w *recordWorker) Work(ctx context.Context, job *river.Job[recordArgs]) error {
	w.ran <- job.ID
	return nil
}

func newFormRequest(path string, form url.Values) *http.Request {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

// serve runs one request through h mounted at /admin.
func serve(h http.Handler, req *http.Request) *httptest.ResponseRecorder {
	r := chi.NewRouter()
	r.Mount("/admin", h)
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, req)
	return rec
}

func (h *harness) breakerStore() *db.Store { return db.NewStore(h.pool) }
