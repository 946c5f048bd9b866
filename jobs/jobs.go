// Package jobs holds Spillway's River workers and the River client that runs
// them. A worker finishes what the sync path captured: it calls each step's
// dependency with the step's own idempotency key and records what came of
// it before anything else happens, so a crash or a retry resumes exactly
// where the operation stands.
package jobs

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/tracing"
)

// Config wires the River client and its workers.
type Config struct {
	Pool *pgxpool.Pool
	// ListenPool, when set, is where River's notifier holds its LISTEN
	// connection: Postgres itself when Pool is a transaction-mode pooler.
	ListenPool *pgxpool.Pool
	Provider   app.PaymentProvider
	// Kinds are the operation kinds (payments, orders, …) the workers
	// carry on, and StepWorkers register each one's worker
	// (StepWorkerFor); each kind's queue is worked.
	Kinds       *app.Kinds
	StepWorkers []StepRegistration
	// AsyncTimeouts bound one async call to each dependency, by name.
	AsyncTimeouts map[string]time.Duration
	// Breakers guards the dependencies; a worker consults a dependency's
	// before calling it.
	Breakers *app.Breakers
	Metrics  *app.Metrics
	// Drains pace async calls to each dependency, by name; a missing one
	// means no limit.
	Drains map[string]*app.DrainLimiter
	// Offpeak is the window deferred operations run in.
	Offpeak app.OffpeakWindow
	// Channels are the configured notification channels; Senders send on
	// them (a nil Senders works no deliveries).
	Channels map[app.Channel]bool
	Senders  *Senders
	// PublicURL is the base of links in notifications.
	PublicURL string
	// Workers is how many payment jobs run at once in this process; zero
	// makes an insert-only client that works nothing.
	Workers int
	// FetchCooldown is the least time between two fetches of a queue.
	// River's default of 100 ms caps a queue at Workers×10 jobs/s, far
	// too slow to drain a backlog; zero means 10 ms.
	FetchCooldown time.Duration
	// CallTimeout bounds one async provider call (and one lookup) of the
	// reconciler and the orphan sweep, and a worker's call to a dependency
	// AsyncTimeouts does not name.
	CallTimeout time.Duration
	// KeyRetention is how long a dependency that replays (the payment
	// provider) remembers an idempotency key; a call whose outcome has
	// been unknown longer looks up before calling again. Zero: never.
	KeyRetention time.Duration
	// Stopping is closed when the process begins to shut down: a worker
	// waiting on a half-open breaker gives its job back instead of holding
	// the shutdown.
	Stopping  <-chan struct{}
	RetryBase time.Duration
	RetryMax  time.Duration
	// Orphans sets up the orphan charge sweep; a zero Every means none.
	Orphans OrphanConfig
	// ReconcileEvery is how often operations whose job River gave up on
	// are settled; zero means every minute. ReconcileAfter flags one the
	// provider cannot settle for operators; zero means 30 minutes.
	ReconcileEvery time.Duration
	ReconcileAfter time.Duration
	// Drills drives the failover drills' jobs; DrillSchedule, when
	// positive, starts them on River's leader every slot (DRILL_SCHEDULE).
	// Nil Drills: no drills.
	Drills        Drills
	DrillSchedule time.Duration
	Logger        *slog.Logger
	// RiverLogger is River's own; nil means River's warnings and errors
	// go to Logger and its routine chatter nowhere.
	RiverLogger *slog.Logger
	Now         func() time.Time
	// Tracing, when on, makes job inserts and attempts spans (see
	// trace.go), and deliveries; nil or off traces nothing.
	Tracing *tracing.Tracing
}

// NewClient builds the River client. The same client inserts jobs (the
// runner's InsertTx) and, when Workers > 0, works them.
func NewClient(cfg Config) (*river.Client[pgx.Tx], error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RiverLogger == nil {
		cfg.RiverLogger = slog.New(minLevel{cfg.Logger.Handler(), slog.LevelWarn})
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.ReconcileAfter = cmp.Or(cfg.ReconcileAfter, 30*time.Minute)
	workers := river.NewWorkers()
	// Payments are the product's first kind: every client can insert and
	// work them, as it can deliveries and the periodic jobs.
	if err := StepWorkerFor[app.PaymentArgs]()(workers, cfg); err != nil {
		return nil, err
	}
	for _, register := range cfg.StepWorkers {
		if err := register(workers, cfg); err != nil {
			return nil, err
		}
	}
	if err := river.AddWorkerSafely(workers, NewReconcileWorker(cfg)); err != nil {
		return nil, err
	}
	if err := river.AddWorkerSafely(workers, &OrphanSweepWorker{sweeper: NewOrphanSweeper(cfg)}); err != nil {
		return nil, err
	}
	if err := river.AddWorkerSafely(workers, NewDeliveryWorker(cfg)); err != nil {
		return nil, err
	}
	if cfg.Drills != nil {
		if err := river.AddWorkerSafely(workers, &DrillWorker{drills: cfg.Drills}); err != nil {
			return nil, err
		}
		if err := river.AddWorkerSafely(workers, &DrillScheduleWorker{drills: cfg.Drills}); err != nil {
			return nil, err
		}
	}
	rc := &river.Config{
		Logger:  cfg.RiverLogger,
		Workers: workers,
		// River's own job timeout must outlast our provider call so the
		// call's deadline, not River's, decides.
		JobTimeout: 2*cfg.CallTimeout + 10*time.Second,
		// A job left running by a killed process is retried this long
		// after it started, not River's default hour: longer than any run
		// of a live worker (StepWorker.Timeout), or a slow run would be
		// rescued and worked twice at once.
		RescueStuckJobsAfter: 2*longestCall(cfg.CallTimeout, cfg.AsyncTimeouts) + 40*time.Second,
		FetchCooldown:        cmp.Or(cfg.FetchCooldown, 10*time.Millisecond),
		Middleware:           traceMiddleware(cfg.Tracing),
	}
	if cfg.Workers > 0 {
		every := cfg.ReconcileEvery
		if every <= 0 {
			every = time.Minute
		}
		rc.Queues = map[string]river.QueueConfig{
			app.QueuePayments:   {MaxWorkers: cfg.Workers},
			app.QueueOrders:     {MaxWorkers: max(4, cfg.Workers/4)},
			app.QueueDeliveries: {MaxWorkers: max(4, cfg.Workers/4)},
			river.QueueDefault:  {MaxWorkers: 2},
		}
		for _, name := range cfg.Kinds.Names() {
			k, _ := cfg.Kinds.Get(name)
			if _, ok := rc.Queues[k.Queue]; !ok {
				rc.Queues[k.Queue] = river.QueueConfig{MaxWorkers: max(4, cfg.Workers/4)}
			}
		}
		rc.PeriodicJobs = []*river.PeriodicJob{
			// Unique per interval, so instances running the same schedule
			// reconcile once between them (River's leader inserts periodic
			// jobs, but a leader change can repeat one).
			river.NewPeriodicJob(river.PeriodicInterval(every),
				func() (river.JobArgs, *river.InsertOpts) {
					return ReconcileArgs{}, &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: max(every, time.Second)}}
				},
				&river.PeriodicJobOpts{RunOnStart: true}),
		}
		if o := cfg.Orphans; o.Every > 0 && cfg.Provider != nil {
			rc.PeriodicJobs = append(rc.PeriodicJobs, river.NewPeriodicJob(river.PeriodicInterval(o.Every),
				func() (river.JobArgs, *river.InsertOpts) {
					return OrphanSweepArgs{}, &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: max(o.Every, time.Second)}}
				},
				&river.PeriodicJobOpts{RunOnStart: true}))
		}
	}
	if cfg.Workers > 0 && cfg.Drills != nil && cfg.DrillSchedule > 0 {
		rc.PeriodicJobs = append(rc.PeriodicJobs, drillPeriodicJob(cfg.DrillSchedule))
	}
	client, err := river.NewClient(newDriver(cfg.Pool, cfg.ListenPool), rc)
	if err != nil {
		return nil, fmt.Errorf("river client: %w", err)
	}
	return client, nil
}

// minLevel drops records below a level before they reach the handler.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(as), h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.min}
}
