package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/dbos-inc/dbos-transact-golang/dbos"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spillway/spillway/app/sim"
	"github.com/spillway/spillway/cmd/internal/loadgen"
	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/db/localpg"
)

// The DBOS peer: DBOS Transact for Go doing Spillway's job — one step that
// charges the simulator with the workflow id as its Idempotency-Key —
// behind a loopback HTTP handler, on the same cluster, driven by the same
// load. It is what a user would pick instead of Spillway, so each of
// Spillway's rates is set beside DBOS's, not beside a floor.
const (
	dbosVersion      = "v1.8.0" // as go.mod requires it
	dbosDatabase     = "bench_dbos"
	dbosSchema       = "dbos"
	dbosAppName      = "spillway-bench-peer"
	dbosQueue        = "payments"
	dbosWorkflowName = "charge"
	// River's fetch cooldown in Spillway (jobs.NewClient): the peer polls
	// its queue as often as Spillway's workers poll theirs, not at DBOS's
	// 1 s default, so its drain is not held back by a setting.
	dbosPollInterval = 10 * time.Millisecond
	dbosSyncTime     = 10 * time.Second
	dbosCaptureTime  = 10 * time.Second
	dbosDrainLimit   = 30 * time.Second
)

// dbosConfig is the peer's configuration as run, in the report so anyone
// can check it.
type dbosConfig struct {
	Version string `json:"version"`
	// Database and Schema: DBOS's system database, apart from Spillway's.
	Database string `json:"database"`
	Schema   string `json:"schema"`
	Queue    string `json:"queue"`
	// GlobalConcurrency is unset: no cap across executors (one executor).
	GlobalConcurrency string `json:"queue_global_concurrency"`
	WorkerConcurrency int    `json:"queue_worker_concurrency"` // Spillway's WORKERS
	PollingInterval   string `json:"queue_base_polling_interval"`
	PoolMaxConns      int32  `json:"pool_max_conns"`
	StepRetries       int    `json:"step_max_retries"`
	Connections       int    `json:"load_connections"`
	// Capture is how the provider-down handler enqueues: through a DBOS
	// client, so no executor dequeues (and fails) the workflows while the
	// provider is down, as Spillway's paused queue holds its jobs.
	Capture string `json:"capture"`
}

type dbosResults struct {
	Config   dbosConfig   `json:"config"`
	Sync     loadFigures  `json:"sync"`    // 201: the handler ran the workflow and has its result
	Capture  loadFigures  `json:"capture"` // 202: enqueued, provider down
	Enqueued int64        `json:"enqueued_in_db"`
	Drain    drainFigures `json:"drain"`        // the enqueued workflows completing, provider back
	Failed   int64        `json:"drain_failed"` // workflows that ended in ERROR
	Note     string       `json:"note,omitempty"`
}

// dbosCharge is the workflow's input: the payment as the load posts it.
type dbosCharge struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// dbosPeer is one DBOS application: the provider it charges and the
// workflow that does it.
type dbosPeer struct {
	provider string // the simulator's base URL
	client   *http.Client
}

func (p *dbosPeer) config(workers int) dbosConfig {
	return dbosConfig{Version: dbosVersion, Database: dbosDatabase, Schema: dbosSchema, Queue: dbosQueue,
		GlobalConcurrency: "unset", WorkerConcurrency: workers, PollingInterval: dbosPollInterval.String(),
		PoolMaxConns: int32(benchConns + 8), StepRetries: 0, Connections: benchConns,
		Capture: "dbos.Enqueue from a dbos.Client (no executor running)"}
}

// charge is the workflow: one step, the provider call, keyed by the
// workflow id.
func (p *dbosPeer) charge(ctx dbos.Context, in dbosCharge) (string, error) {
	id, err := dbos.GetWorkflowID(ctx)
	if err != nil {
		return "", err
	}
	return dbos.RunAsStep(ctx, func(ctx context.Context) (string, error) {
		return p.callProvider(ctx, id, in)
	}, dbos.WithStepName("provider.charge"))
}

func (p *dbosPeer) callProvider(ctx context.Context, key string, in dbosCharge) (string, error) {
	body, _ := json.Marshal(map[string]any{"amount": in.Amount, "currency": in.Currency, "reference": key})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.provider+"/charges", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	res, err := p.client.Do(req)
	if err != nil {
		return "", err
	}
	out, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	if err != nil {
		return "", err
	}
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("provider: %d", res.StatusCode)
	}
	return string(out), nil
}

// launch opens a DBOS executor on its own pool, with the workflow and the
// queue registered.
func (p *dbosPeer) launch(ctx context.Context, url string, workers int, log *slog.Logger) (dbos.Context, error) {
	pool, err := dbosPool(ctx, url)
	if err != nil {
		return nil, err
	}
	dc, err := dbos.NewContext(ctx, dbos.Config{AppName: dbosAppName, SystemDBPool: pool, DatabaseSchema: dbosSchema,
		Logger: log, ApplicationVersion: "bench"})
	if err != nil {
		pool.Close()
		return nil, err
	}
	dbos.RegisterWorkflow(dc, p.charge, dbos.WithWorkflowName(dbosWorkflowName))
	if _, err := dbos.RegisterQueue(dc, dbosQueue, dbos.WithWorkerConcurrency(workers),
		dbos.WithQueueBasePollingInterval(dbosPollInterval)); err != nil {
		_ = dbos.Shutdown(dc, 5*time.Second)
		return nil, err
	}
	if err := dbos.Launch(dc); err != nil {
		_ = dbos.Shutdown(dc, 5*time.Second)
		return nil, err
	}
	return dc, nil
}

// dbosPool is the pool DBOS is given (and closes on Shutdown).
func dbosPool(ctx context.Context, url string) (*pgxpool.Pool, error) {
	return db.Open(ctx, db.PoolConfig{URL: url, MaxConns: benchConns + 8})
}

// dbosSyncHandler runs the workflow under the request's Idempotency-Key
// as its id and answers 201 with its result.
func dbosSyncHandler(dc dbos.Context, p *dbosPeer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, key, ok := decodeDBOSCharge(w, r)
		if !ok {
			return
		}
		h, err := dbos.RunWorkflow(dc, p.charge, in, dbos.WithWorkflowID(key))
		if err == nil {
			_, err = h.GetResult()
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"id":%q}`, key)
	})
}

// dbosCaptureHandler enqueues the workflow and answers 202 at once.
func dbosCaptureHandler(c dbos.Client) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, key, ok := decodeDBOSCharge(w, r)
		if !ok {
			return
		}
		if _, err := dbos.Enqueue[string](c, dbosQueue, dbosWorkflowName, in, dbos.WithEnqueueWorkflowID(key)); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, `{"id":%q}`, key)
	})
}

func decodeDBOSCharge(w http.ResponseWriter, r *http.Request) (dbosCharge, string, bool) {
	var in dbosCharge
	key := r.Header.Get("Idempotency-Key")
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&in); err != nil || in.Amount <= 0 || key == "" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return in, "", false
	}
	return in, key, true
}

// dbosPeerRun measures the peer: sync, capture with the provider down,
// and the drain of what was captured, on a fresh database of its own.
func (b *bench) dbosPeerRun(ctx context.Context) (*dbosResults, error) {
	url, err := localpg.CreateTestDatabase(ctx, b.baseURL, dbosDatabase)
	if err != nil {
		return nil, err
	}
	defer b.dropNamed(dbosDatabase)

	simulator := sim.New(sim.Config{})
	simURL, stopSim, err := serveLoopback(simulator)
	if err != nil {
		return nil, err
	}
	defer stopSim()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.MaxIdleConnsPerHost = benchConns
	defer tr.CloseIdleConnections()
	p := &dbosPeer{provider: simURL, client: &http.Client{Transport: tr}}
	out := &dbosResults{Config: p.config(b.workers)}
	// DBOS's own log (warnings and up) goes beside the servers' logs; its
	// shutdown complaints about cancelled polls would only clutter the run.
	logFile, err := os.Create(filepath.Join(b.dir, "dbos.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	log := slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelWarn}))

	// (a) sync: the handler runs the workflow and waits for its result.
	dc, err := p.launch(ctx, url, b.workers, log)
	if err != nil {
		return nil, fmt.Errorf("dbos launch: %w", err)
	}
	apiURL, stopAPI, err := serveLoopback(dbosSyncHandler(dc, p))
	if err != nil {
		_ = dbos.Shutdown(dc, 10*time.Second)
		return nil, err
	}
	b.logf("  dbos sync: %d connections, %s", benchConns, dbosSyncTime)
	res, err := loadgen.Run(ctx, paymentLoad(apiURL+"/", benchConns, dbosSyncTime, "dbos-sync"))
	stopAPI()
	_ = dbos.Shutdown(dc, 10*time.Second)
	if err != nil {
		return nil, err
	}
	out.Sync = figuresOf(res, http.StatusCreated)
	b.logf("  dbos sync: %.0f 201/s, p50 %.2f ms, p99 %.2f ms", out.Sync.Rate, out.Sync.P50ms, out.Sync.P99ms)

	// (b) capture: provider down; the handler enqueues and answers 202.
	simulator.SetChaos(sim.Chaos{Down: true})
	pool, err := dbosPool(ctx, url)
	if err != nil {
		return nil, err
	}
	client, err := dbos.NewClient(ctx, dbos.ClientConfig{AppName: dbosAppName, SystemDBPool: pool,
		DatabaseSchema: dbosSchema, Logger: log})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("dbos client: %w", err)
	}
	if apiURL, stopAPI, err = serveLoopback(dbosCaptureHandler(client)); err != nil {
		_ = dbos.Shutdown(client, 10*time.Second)
		return nil, err
	}
	b.logf("  dbos capture (provider down): %d connections, %s", benchConns, dbosCaptureTime)
	res, err = loadgen.Run(ctx, paymentLoad(apiURL+"/", benchConns, dbosCaptureTime, "dbos-capture"))
	stopAPI()
	_ = dbos.Shutdown(client, 10*time.Second)
	if err != nil {
		return nil, err
	}
	out.Capture = figuresOf(res, http.StatusAccepted)
	b.logf("  dbos capture: %.0f 202/s, p50 %.2f ms, p99 %.2f ms", out.Capture.Rate, out.Capture.P50ms, out.Capture.P99ms)

	check, err := db.Open(ctx, db.PoolConfig{URL: url, MaxConns: 2})
	if err != nil {
		return nil, err
	}
	defer check.Close()
	if out.Enqueued, err = dbosCount(ctx, check, "status = 'ENQUEUED'"); err != nil {
		return nil, err
	}

	// (c) drain: provider back, an executor works the queue down.
	simulator.SetChaos(sim.Chaos{})
	b.logf("  dbos drain: %d enqueued, %d workers (at most %s)", out.Enqueued, b.workers, dbosDrainLimit)
	start := time.Now()
	if dc, err = p.launch(ctx, url, b.workers, log); err != nil {
		return nil, fmt.Errorf("dbos launch: %w", err)
	}
	left, elapsed, err := waitEmpty(ctx, dbosDrainLimit, start, func(ctx context.Context) (int64, error) {
		return dbosCount(ctx, check, "status IN ('ENQUEUED', 'PENDING')")
	})
	_ = dbos.Shutdown(dc, 10*time.Second)
	if err != nil {
		return nil, err
	}
	out.Drain = drainRate(out.Enqueued-left, elapsed, b.workers, left == 0)
	if out.Failed, err = dbosCount(ctx, check, "status <> 'SUCCESS' AND status NOT IN ('ENQUEUED', 'PENDING')"); err != nil {
		return nil, err
	}
	switch {
	case out.Failed > 0:
		out.Note = fmt.Sprintf("%d DBOS workflows did not succeed", out.Failed)
	case !out.Drain.Empty:
		out.Note = fmt.Sprintf("DBOS drain not empty after %.0f s: rate over the window", out.Drain.Seconds)
	}
	b.logf("  dbos drain: %.0f workflows/s (%d in %.2f s) %s", out.Drain.Rate, out.Drain.Jobs, out.Drain.Seconds, out.Note)
	return out, nil
}

// dbosCount counts the peer's queued workflows (those the capture
// enqueued, not the sync runs) matching where, a constant.
func dbosCount(ctx context.Context, pool *pgxpool.Pool, where string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var n int64
	err := pool.QueryRow(ctx, "SELECT count(*) FROM "+dbosSchema+".workflow_status WHERE queue_name = $1 AND "+where, dbosQueue).Scan(&n)
	return n, err
}

// dropNamed drops a database the bench created outside freshDB, unless
// BENCH_KEEP=1.
func (b *bench) dropNamed(name string) {
	if b.keep {
		b.logf("kept database %s", name)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := localpg.DropDatabase(ctx, b.baseURL, name); err != nil {
		b.logf("drop %s: %v", name, err)
	}
}
