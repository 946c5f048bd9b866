package db

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/rivertype"

	"github.com/spillway/spillway/app"
)

// Store is db's one adapter to app's ports: the interfaces app declares
// for what it needs stored (OperationStore, OperatorStore, BreakerStore,
// RateLimitStore, OperationReader, OperationWatcher, BacklogReader). Every query is a free
// function in this package taking a Querier (or a pgx.Tx, ending in Tx,
// when it needs the caller's transaction, or the pool when it runs its own);
// Store only binds them to a pool, so this file is the map from each port
// to its queries. Build one Store per pool: the breakers get their own.
type Store struct {
	Pool *pgxpool.Pool
	// ListenPool holds the LISTEN connections when Pool is a pooler in
	// transaction mode, where a LISTEN silently hears nothing once its
	// transaction ends; nil: Pool.
	ListenPool *pgxpool.Pool
}

// NewStore returns a store on pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{Pool: pool} }

func (s *Store) listenPool() *pgxpool.Pool {
	if s.ListenPool != nil {
		return s.ListenPool
	}
	return s.Pool
}

var (
	_ app.OperationStore   = (*Store)(nil)
	_ app.OperatorStore    = (*Store)(nil)
	_ app.BreakerStore     = (*Store)(nil)
	_ app.RateLimitStore   = (*Store)(nil)
	_ app.OperationReader  = (*Store)(nil)
	_ app.OperationWatcher = (*Store)(nil)
	_ app.BacklogReader    = (*Store)(nil)
	_ app.CatalogStore     = (*Store)(nil)
	_ app.ProductReader    = (*Store)(nil)
	_ app.StockCacheStore  = (*Store)(nil)
	_ app.FeatureStore     = (*Store)(nil)
	_ app.DrillStore       = (*Store)(nil)
	_ app.PoolGauge        = (*Store)(nil)
)

// BeginTx starts a read-committed transaction, pipelined: its BEGIN goes
// with its first batch and its COMMIT with the writes queued for it.
func (s *Store) BeginTx(ctx context.Context) (pgx.Tx, error) { return BeginPipelined(ctx, s.Pool) }

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

// app.CatalogStore: the prices orders are charged at.

func (s *Store) GetProductsTx(ctx context.Context, tx pgx.Tx, skus []string) (map[string]app.Product, error) {
	return GetProducts(ctx, tx, skus)
}

// app.ProductReader and app.StockCacheStore: the catalog's degraded reads.

func (s *Store) ListProducts(ctx context.Context) ([]app.Product, error) {
	return ListProducts(ctx, s.Pool)
}

func (s *Store) GetProduct(ctx context.Context, sku string) (app.Product, error) {
	return GetProduct(ctx, s.Pool, sku)
}

func (s *Store) GetCachedStock(ctx context.Context, skus []string) (map[string]app.CachedStock, error) {
	return GetCachedStock(ctx, s.Pool, skus)
}

func (s *Store) PutCachedStock(ctx context.Context, values []app.CachedStock) error {
	return PutCachedStock(ctx, s.Pool, values)
}

func (s *Store) ClaimStockRefresh(ctx context.Context, sku, token string, now, until time.Time) (bool, error) {
	return ClaimStockRefresh(ctx, s.Pool, sku, token, now, until)
}

func (s *Store) ReleaseStockRefresh(ctx context.Context, sku, token string) error {
	return ReleaseStockRefresh(ctx, s.Pool, sku, token)
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
	return Listen(ctx, s.listenPool(), OperationChannel, ready, fn)
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

func (s *Store) AddStreaks(ctx context.Context, deltas []app.StreakDelta, now time.Time) ([]app.StreakDelta, error) {
	return AddBreakerStreaks(ctx, s.Pool, deltas, now)
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
	return ListenBreakers(ctx, s.listenPool(), ready, fn)
}

// app.BacklogReader: the backlog bounds.

func (s *Store) QueueBacklog(ctx context.Context, queue string) (app.Backlog, error) {
	return QueueBacklog(ctx, s.Pool, queue)
}

// app.RateLimitStore: the shared drain buckets.

func (s *Store) TakeTokens(ctx context.Context, name string, rate float64, burst, want int) (int, time.Duration, error) {
	return TakeTokens(ctx, s.Pool, name, rate, burst, want)
}

// app.OperatorStore: operator actions on jobs, queues and operations, with
// their audit entries.

func (s *Store) LockJobsTx(ctx context.Context, tx pgx.Tx, ids []int64, states []rivertype.JobState) ([]app.JobRef, error) {
	return LockJobsTx(ctx, tx, ids, states)
}

func (s *Store) JobOperations(ctx context.Context, ids []int64, states []rivertype.JobState) ([]app.JobOperation, error) {
	return JobOperations(ctx, s.Pool, ids, states)
}

func (s *Store) MatchingJobIDs(ctx context.Context, f app.JobFilter, states []rivertype.JobState, afterID int64, limit int, now time.Time) ([]int64, error) {
	return AdminJobIDs(ctx, s.Pool, f, states, afterID, limit, now)
}

func (s *Store) RequestCancelTx(ctx context.Context, tx pgx.Tx, id uuid.UUID, now time.Time) (bool, error) {
	return RequestCancelTx(ctx, tx, id, now)
}

func (s *Store) ReviseOperationTx(ctx context.Context, tx pgx.Tx, op *app.Operation, from []app.Status) (bool, error) {
	return ReviseOperation(ctx, tx, op, from)
}

func (s *Store) SetJobPriorityTx(ctx context.Context, tx pgx.Tx, ids []int64, priority int, now time.Time) error {
	return SetJobPriorityTx(ctx, tx, ids, priority, now)
}

func (s *Store) MarkRunNowTx(ctx context.Context, tx pgx.Tx, ids []int64) error {
	return MarkRunNow(ctx, tx, ids)
}

func (s *Store) LockQueueTx(ctx context.Context, tx pgx.Tx, name string) (bool, error) {
	return LockQueueTx(ctx, tx, name)
}

func (s *Store) InsertAuditTx(ctx context.Context, tx pgx.Tx, e app.AuditEntry) error {
	return InsertAudit(ctx, tx, e)
}

// app.OperatorStore: users, sign-ins and sessions.

func (s *Store) AdminUserByEmail(ctx context.Context, email string) (*app.AdminUser, error) {
	return GetAdminUserByEmail(ctx, s.Pool, email)
}

func (s *Store) AdminUserByEmailTx(ctx context.Context, tx pgx.Tx, email string) (*app.AdminUser, error) {
	return GetAdminUserByEmail(ctx, tx, email)
}

func (s *Store) UpsertAdminUserTx(ctx context.Context, tx pgx.Tx, email, hash string, role app.Role, now time.Time) (int64, error) {
	return UpsertAdminUser(ctx, tx, email, hash, role, now)
}

func (s *Store) InsertAdminUserIfAbsentTx(ctx context.Context, tx pgx.Tx, email, hash string, role app.Role, now time.Time) (bool, error) {
	return InsertAdminUserIfAbsent(ctx, tx, email, hash, role, now)
}

func (s *Store) DeleteUserSessionsTx(ctx context.Context, tx pgx.Tx, userID int64) (int64, error) {
	return DeleteUserAdminSessions(ctx, tx, userID)
}

func (s *Store) ClaimSignIn(ctx context.Context, email, ip string, lim app.SignInLimits, now time.Time) (int64, error) {
	return ClaimSignIn(ctx, s.Pool, email, ip, lim, now)
}

func (s *Store) MarkSignInOKTx(ctx context.Context, tx pgx.Tx, id int64) error {
	return MarkSignInOK(ctx, tx, id)
}

func (s *Store) CreateSessionTx(ctx context.Context, tx pgx.Tx, ns app.NewSession) error {
	return CreateAdminSession(ctx, tx, ns)
}

func (s *Store) PruneSessionsTx(ctx context.Context, tx pgx.Tx, now, idleSince time.Time) error {
	return PruneAdminSessions(ctx, tx, now, idleSince)
}

func (s *Store) DeleteSessionTx(ctx context.Context, tx pgx.Tx, tokenHash []byte) error {
	return DeleteAdminSession(ctx, tx, tokenHash)
}

func (s *Store) Session(ctx context.Context, tokenHash []byte, now time.Time) (*app.AdminSession, error) {
	return GetAdminSession(ctx, s.Pool, tokenHash, now)
}

func (s *Store) DeleteIdleSession(ctx context.Context, tokenHash []byte, idleSince time.Time) error {
	return DeleteIdleAdminSession(ctx, s.Pool, tokenHash, idleSince)
}

func (s *Store) TouchSession(ctx context.Context, tokenHash []byte, now time.Time) error {
	return TouchAdminSession(ctx, s.Pool, tokenHash, now)
}

// app.FeatureStore and app.PoolGauge: the feature switch's overrides and
// the pool pressure it weighs.

func (s *Store) ListFeatureOverrides(ctx context.Context) ([]app.FeatureOverride, error) {
	return ListFeatureOverrides(ctx, s.Pool)
}

func (s *Store) SetFeatureOverrideTx(ctx context.Context, tx pgx.Tx, o app.FeatureOverride) (*app.FeatureOverride, error) {
	return SetFeatureOverrideTx(ctx, tx, o)
}

func (s *Store) ClearFeatureOverrideTx(ctx context.Context, tx pgx.Tx, name string) (*app.FeatureOverride, error) {
	return ClearFeatureOverrideTx(ctx, tx, name)
}

func (s *Store) PoolStat() app.PoolStat { return PoolStat(s.Pool) }

// app.DrillStore: the drills' records.

func (s *Store) InsertDrillTx(ctx context.Context, tx pgx.Tx, d *app.Drill) (bool, error) {
	return InsertDrillTx(ctx, tx, d)
}

func (s *Store) AbandonDrillsTx(ctx context.Context, tx pgx.Tx, dependency string, now time.Time, grace time.Duration) (int, error) {
	return AbandonDrillsTx(ctx, tx, dependency, now, grace)
}

func (s *Store) GetDrill(ctx context.Context, id int64) (app.Drill, error) {
	return GetDrill(ctx, s.Pool, id)
}

func (s *Store) SaveDrill(ctx context.Context, d app.Drill) error { return SaveDrill(ctx, s.Pool, d) }

func (s *Store) CanaryStates(ctx context.Context, ids []uuid.UUID) ([]app.CanaryState, error) {
	return CanaryStates(ctx, s.Pool, ids)
}
