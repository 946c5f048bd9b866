package db

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spillway/spillway/app"
)

// Store is db's one adapter to app's ports: the interfaces app declares
// for what it needs stored (OperationStore, OperatorStore, BreakerStore,
// RateLimitStore, OperationReader, OperationWatcher). Every query is a free
// function in this package taking a Querier (or a pgx.Tx, ending in Tx,
// when it needs the caller's transaction, or the pool when it runs its own);
// Store only binds them to a pool, so this file is the map from each port
// to its queries. Build one Store per pool: the breakers get their own.
type Store struct {
	Pool *pgxpool.Pool
}

// NewStore returns a store on pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{Pool: pool} }

var (
	_ app.OperationStore   = (*Store)(nil)
	_ app.OperatorStore    = (*Store)(nil)
	_ app.BreakerStore     = (*Store)(nil)
	_ app.RateLimitStore   = (*Store)(nil)
	_ app.OperationReader  = (*Store)(nil)
	_ app.OperationWatcher = (*Store)(nil)
)

// BeginTx starts a read-committed transaction.
func (s *Store) BeginTx(ctx context.Context) (pgx.Tx, error) { return s.Pool.Begin(ctx) }

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.Pool.Ping(ctx) }

// app.OperationStore: the runner's writes.

func (s *Store) ClaimKeyTx(ctx context.Context, tx pgx.Tx, scope, key string, opID uuid.UUID) (app.KeyClaim, error) {
	return ClaimKeyTx(ctx, tx, scope, key, opID)
}

func (s *Store) RecordTx(ctx context.Context, tx pgx.Tx, op *app.Operation, rec *app.IdempotencyRecord) error {
	return RecordTx(ctx, tx, op, rec)
}

func (s *Store) GetOperationTx(ctx context.Context, tx pgx.Tx, id uuid.UUID) (*app.Operation, error) {
	return GetOperation(ctx, tx, id)
}

// app.OperationReader and app.OperationWatcher: the inbound side's reads.

func (s *Store) GetOperation(ctx context.Context, id uuid.UUID) (*app.Operation, error) {
	return GetOperation(ctx, s.Pool, id)
}

func (s *Store) OperationEvents(ctx context.Context, id uuid.UUID, after int64) ([]app.OperationEvent, error) {
	return OperationEvents(ctx, s.Pool, id, after)
}

func (s *Store) WatchOperation(ctx context.Context, id uuid.UUID, instance string, ttl time.Duration) error {
	return WatchOperation(ctx, s.Pool, id, instance, ttl)
}

func (s *Store) UnwatchOperation(ctx context.Context, id uuid.UUID, instance string) error {
	return UnwatchOperation(ctx, s.Pool, id, instance)
}

func (s *Store) ListenOperations(ctx context.Context, ready func(), fn func(id string)) error {
	return Listen(ctx, s.Pool, OperationChannel, ready, fn)
}

// app.BreakerStore: the shared circuit breakers.

func (s *Store) EnsureBreaker(ctx context.Context, name string, p app.BreakerPolicy, now time.Time) (app.Breaker, error) {
	return EnsureBreaker(ctx, s.Pool, name, p, now)
}

func (s *Store) GetBreaker(ctx context.Context, name string) (app.Breaker, error) {
	return GetBreaker(ctx, s.Pool, name)
}

func (s *Store) ListBreakers(ctx context.Context) ([]app.Breaker, error) {
	return ListBreakers(ctx, s.Pool)
}

func (s *Store) AddCounts(ctx context.Context, deltas []app.CountDelta) error {
	return AddBreakerCounts(ctx, s.Pool, deltas)
}

func (s *Store) WindowCounts(ctx context.Context, name string, gen int64, since time.Time) (app.Counts, error) {
	return BreakerWindowCounts(ctx, s.Pool, name, gen, since)
}

func (s *Store) Transition(ctx context.Context, from, to app.Breaker, t app.Transition) (bool, error) {
	return TransitionBreaker(ctx, s.Pool, from, to, t)
}

func (s *Store) SetPolicy(ctx context.Context, name string, p app.BreakerPolicy, t app.Transition, now time.Time) error {
	return SetBreakerPolicy(ctx, s.Pool, name, p, t, now)
}

func (s *Store) ClaimProbe(ctx context.Context, name string, gen int64, instance string) (int64, bool, error) {
	return ClaimProbe(ctx, s.Pool, name, gen, instance)
}

func (s *Store) FinishProbe(ctx context.Context, id int64, outcome string) error {
	return FinishProbe(ctx, s.Pool, id, outcome)
}

func (s *Store) ProbeSummary(ctx context.Context, name string, gen int64) (successes, failures int, err error) {
	return ProbeSummary(ctx, s.Pool, name, gen)
}

func (s *Store) PruneBreakerHistory(ctx context.Context, before time.Time) error {
	return PruneBreakerHistory(ctx, s.Pool, before)
}

func (s *Store) ListenBreakers(ctx context.Context, ready func(), fn func(name string)) error {
	return ListenBreakers(ctx, s.Pool, ready, fn)
}

// app.RateLimitStore: the shared drain buckets.

func (s *Store) TakeTokens(ctx context.Context, name string, rate float64, burst, want int) (int, time.Duration, error) {
	return TakeTokens(ctx, s.Pool, name, rate, burst, want)
}
