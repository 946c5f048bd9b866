package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/sim"
	"github.com/spillway/spillway/cmd/internal/loadgen"
	"github.com/spillway/spillway/db"
)

type floorKind string

const (
	// floorCapture: a River job and the operation row in one transaction.
	floorCapture floorKind = "capture"
	// floorSync: a call to an instant provider, then a one-row transaction.
	floorSync floorKind = "sync"
)

// floorServer is the least any server of this pattern does per POST, with
// no idempotency, breaker, validation or metrics: the floor Spillway's own
// figures are compared with.
type floorServer struct {
	pool     *pgxpool.Pool
	river    *river.Client[pgx.Tx]
	client   *http.Client
	provider string // base URL of the instant provider (sync only)
}

type floorRequest struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

func (s *floorServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req floorRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil || req.Amount <= 0 {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	id := uuid.New()
	// As Spillway's runner: once begun, the work finishes even if the
	// client hangs up, within a bound.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	defer cancel()
	var status int
	var err error
	if s.provider == "" {
		status, err = s.capture(ctx, id, req)
	} else {
		status, err = s.sync(ctx, id, req)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"id":%q}`, id)
}

func (s *floorServer) capture(ctx context.Context, id uuid.UUID, req floorRequest) (int, error) {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		opts := app.PaymentArgs{}.InsertOpts()
		res, err := s.river.InsertTx(ctx, tx, app.PaymentArgs{OperationID: id}, &opts)
		if err != nil {
			return err
		}
		return db.InsertBareCaptureTx(ctx, tx, id, opts.Priority, req.Amount, req.Currency, res.Job.ID)
	})
	return http.StatusAccepted, err
}

func (s *floorServer) sync(ctx context.Context, id uuid.UUID, req floorRequest) (int, error) {
	body, _ := json.Marshal(map[string]any{"amount": req.Amount, "currency": req.Currency, "reference": id.String()})
	preq, err := http.NewRequestWithContext(ctx, http.MethodPost, s.provider+"/charges", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	preq.Header.Set("Content-Type", "application/json")
	preq.Header.Set("Idempotency-Key", id.String())
	res, err := s.client.Do(preq)
	if err != nil {
		return 0, err
	}
	result, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("provider: %d %v", res.StatusCode, err)
	}
	return http.StatusCreated, db.InsertBareSyncPayment(ctx, s.pool, id, req.Amount, req.Currency, result)
}

// floor measures the minimal server of kind, in process, driven by loadgen
// exactly as Spillway is.
func (b *bench) floor(ctx context.Context, kind floorKind) (loadFigures, error) {
	d, err := b.freshDB(ctx, "floor_"+string(kind))
	if err != nil {
		return loadFigures{}, err
	}
	defer b.dropDB(d)
	pool, err := db.Open(ctx, db.PoolConfig{URL: d.url, MaxConns: benchConns + 4, MinConns: benchConns})
	if err != nil {
		return loadFigures{}, err
	}
	defer pool.Close()
	// Insert-only: no queues, so it works nothing and only writes jobs.
	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{SkipUnknownJobCheck: true,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return loadFigures{}, err
	}
	fs := &floorServer{pool: pool, river: rc}
	var stops []func()
	defer func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}()
	if kind == floorSync {
		url, stop, err := serveLoopback(sim.New(sim.Config{}))
		if err != nil {
			return loadFigures{}, err
		}
		stops = append(stops, stop)
		fs.provider = url
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.Proxy = nil
		tr.MaxIdleConnsPerHost = benchConns
		fs.client = &http.Client{Transport: tr}
		stops = append(stops, tr.CloseIdleConnections)
	}
	url, stop, err := serveLoopback(fs)
	if err != nil {
		return loadFigures{}, err
	}
	stops = append(stops, stop)

	status := http.StatusAccepted
	if kind == floorSync {
		status = http.StatusCreated
	}
	b.logf("  minimal server (%s): %d connections, %s", kind, benchConns, benchCeilingTime)
	res, err := loadgen.Run(ctx, paymentLoad(url+"/", benchConns, benchCeilingTime, "floor"))
	if err != nil {
		return loadFigures{}, err
	}
	f := figuresOf(res, status)
	if f.Rate == 0 {
		return f, fmt.Errorf("the minimal %s server answered no %d: %v, %d transport errors", kind, status, res.ByStatus, res.Errors)
	}
	b.logf("  minimal server (%s): %.0f/s, p50 %.2f ms, p99 %.2f ms", kind, f.Rate, f.P50ms, f.P99ms)
	return f, nil
}

// serveLoopback serves h on a free loopback port and returns its base URL
// and a function that shuts it down (bounded).
func serveLoopback(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	s := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(ln)
	}()
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if s.Shutdown(ctx) != nil {
			_ = s.Close()
		}
		<-done
	}
	return "http://" + ln.Addr().String(), stop, nil
}
