package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spillway/spillway/app"
)

// BreakerChannel is the NOTIFY channel a breaker's state change is
// announced on, with the breaker's name as payload.
const BreakerChannel = "spillway_breakers"

const breakerColumns = `name, state, generation, since, coalesce(open_until, 'epoch'), trips, window_ms, min_calls,
	failure_rate, slow_rate, slow_call_ms, open_wait_ms, max_open_wait_ms, probes, probe_lease_ms, trip_memory_ms,
	consecutive_failures`

func scanBreaker(row pgx.Row) (app.Breaker, error) {
	var (
		b                                          app.Breaker
		window, slow, wait, maxWait, lease, memory int64
	)
	err := row.Scan(&b.Name, &b.State, &b.Generation, &b.Since, &b.OpenUntil, &b.Trips, &window, &b.Policy.MinCalls,
		&b.Policy.FailureRate, &b.Policy.SlowRate, &slow, &wait, &maxWait, &b.Policy.Probes, &lease, &memory,
		&b.Policy.ConsecutiveFailures)
	if errors.Is(err, pgx.ErrNoRows) {
		return b, errNotFound
	}
	ms := time.Millisecond
	b.Policy.Window, b.Policy.SlowCall, b.Policy.OpenWait = time.Duration(window)*ms, time.Duration(slow)*ms, time.Duration(wait)*ms
	b.Policy.MaxOpenWait, b.Policy.ProbeLease, b.Policy.TripMemory = time.Duration(maxWait)*ms, time.Duration(lease)*ms, time.Duration(memory)*ms
	if b.OpenUntil.Unix() == 0 {
		b.OpenUntil = time.Time{}
	}
	return b, err
}

func policyArgs(p app.BreakerPolicy) []any {
	ms := func(d time.Duration) int64 { return d.Milliseconds() }
	return []any{ms(p.Window), p.MinCalls, p.FailureRate, p.SlowRate, ms(p.SlowCall), ms(p.OpenWait),
		ms(p.MaxOpenWait), p.Probes, ms(p.ProbeLease), ms(p.TripMemory), p.ConsecutiveFailures}
}

// EnsureBreaker creates the breaker, closed, with policy if it does not
// exist, and returns it as stored.
func EnsureBreaker(ctx context.Context, q Querier, name string, p app.BreakerPolicy, now time.Time) (app.Breaker, error) {
	args := append([]any{name, now}, policyArgs(p)...)
	_, err := q.Exec(ctx, `
		INSERT INTO breakers (name, state, generation, since, trips, window_ms, min_calls, failure_rate, slow_rate,
			slow_call_ms, open_wait_ms, max_open_wait_ms, probes, probe_lease_ms, trip_memory_ms, consecutive_failures,
			updated_at)
		VALUES ($1, 'closed', 1, $2, 0, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $2)
		ON CONFLICT (name) DO NOTHING`, args...)
	if err != nil {
		return app.Breaker{}, fmt.Errorf("ensure breaker %s: %w", name, err)
	}
	return GetBreaker(ctx, q, name)
}

// GetBreaker reads one breaker.
func GetBreaker(ctx context.Context, q Querier, name string) (app.Breaker, error) {
	b, err := scanBreaker(q.QueryRow(ctx, `SELECT `+breakerColumns+` FROM breakers WHERE name = $1`, name))
	if err != nil && !isNotFound(err) {
		return b, fmt.Errorf("get breaker %s: %w", name, err)
	}
	return b, err
}

// ListBreakers reads every breaker, by name.
func ListBreakers(ctx context.Context, q Querier) ([]app.Breaker, error) {
	rows, err := q.Query(ctx, `SELECT `+breakerColumns+` FROM breakers ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list breakers: %w", err)
	}
	defer rows.Close()
	var bs []app.Breaker
	for rows.Next() {
		b, err := scanBreaker(rows)
		if err != nil {
			return nil, fmt.Errorf("list breakers: %w", err)
		}
		bs = append(bs, b)
	}
	return bs, rows.Err()
}

// AddBreakerCounts adds each instance-local bucket to the shared ones, in one
// statement.
func AddBreakerCounts(ctx context.Context, q Querier, deltas []app.CountDelta) error {
	if len(deltas) == 0 {
		return nil
	}
	var (
		names            []string
		gens             []int64
		buckets          []time.Time
		calls, fails, sl []int32
	)
	for _, d := range deltas {
		names, gens, buckets = append(names, d.Name), append(gens, d.Generation), append(buckets, d.Bucket)
		calls, fails, sl = append(calls, int32(d.Counts.Calls)), append(fails, int32(d.Counts.Failures)), append(sl, int32(d.Counts.Slow))
	}
	_, err := q.Exec(ctx, `
		INSERT INTO breaker_counts (name, generation, bucket, calls, failures, slow)
		SELECT * FROM unnest($1::text[], $2::bigint[], $3::timestamptz[], $4::int[], $5::int[], $6::int[])
		ON CONFLICT (name, generation, bucket) DO UPDATE SET
			calls = breaker_counts.calls + excluded.calls,
			failures = breaker_counts.failures + excluded.failures,
			slow = breaker_counts.slow + excluded.slow`,
		names, gens, buckets, calls, fails, sl)
	if err != nil {
		return fmt.Errorf("add breaker counts: %w", err)
	}
	return nil
}

// BreakerWindowCounts sums a generation's buckets from since on.
func BreakerWindowCounts(ctx context.Context, q Querier, name string, gen int64, since time.Time) (app.Counts, error) {
	var c app.Counts
	err := q.QueryRow(ctx, `
		SELECT coalesce(sum(calls), 0), coalesce(sum(failures), 0), coalesce(sum(slow), 0)
		FROM breaker_counts WHERE name = $1 AND generation = $2 AND bucket >= $3`, name, gen, since).
		Scan(&c.Calls, &c.Failures, &c.Slow)
	if err != nil {
		return c, fmt.Errorf("breaker window: %w", err)
	}
	return c, nil
}

// AddBreakerStreaks folds each instance-local run of failures into its
// generation's shared run (app.Streak.Then: a success seen restarts the
// run from the failures after it) and returns the runs as they now stand,
// in one statement. Runs of one generation in one call are folded in
// order first.
func AddBreakerStreaks(ctx context.Context, q Querier, deltas []app.StreakDelta, now time.Time) ([]app.StreakDelta, error) {
	if len(deltas) == 0 {
		return nil, nil
	}
	type key struct {
		name string
		gen  int64
	}
	merged := map[key]app.Streak{}
	var order []key
	for _, d := range deltas {
		k := key{d.Name, d.Generation}
		if _, ok := merged[k]; !ok {
			order = append(order, k)
		}
		merged[k] = merged[k].Then(d.Streak)
	}
	var (
		names  []string
		gens   []int64
		resets []bool
		fails  []int32
	)
	for _, k := range order {
		st := merged[k]
		names, gens = append(names, k.name), append(gens, k.gen)
		resets, fails = append(resets, st.Reset), append(fails, int32(st.Failures))
	}
	rows, err := q.Query(ctx, `
		WITH d (name, generation, reset, failures) AS (
			SELECT * FROM unnest($1::text[], $2::bigint[], $3::bool[], $4::int[])
		)
		INSERT INTO breaker_streaks AS s (name, generation, failures, updated_at)
		SELECT name, generation, failures, $5 FROM d
		ON CONFLICT (name, generation) DO UPDATE SET
			failures = excluded.failures + CASE
				WHEN (SELECT d.reset FROM d WHERE d.name = s.name AND d.generation = s.generation) THEN 0
				ELSE s.failures END,
			updated_at = excluded.updated_at
		RETURNING name, generation, failures`, names, gens, resets, fails, now)
	if err != nil {
		return nil, fmt.Errorf("add breaker streaks: %w", err)
	}
	defer rows.Close()
	var out []app.StreakDelta
	for rows.Next() {
		var d app.StreakDelta
		if err := rows.Scan(&d.Name, &d.Generation, &d.Streak.Failures); err != nil {
			return nil, fmt.Errorf("add breaker streaks: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("add breaker streaks: %w", err)
	}
	return out, nil
}

// TransitionBreaker moves a breaker from one generation to the next if nobody
// else did first, records the transition and notifies every instance, all
// in one transaction. False means another writer won; re-read and retry.
func TransitionBreaker(ctx context.Context, pool *pgxpool.Pool, from, to app.Breaker, t app.Transition) (bool, error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return false, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	var openUntil *time.Time
	if !to.OpenUntil.IsZero() {
		openUntil = &to.OpenUntil
	}
	tag, err := tx.Exec(ctx, `
		UPDATE breakers SET state = $3, generation = $4, since = $5, open_until = $6, trips = $7, updated_at = $5
		WHERE name = $1 AND generation = $2`,
		from.Name, from.Generation, to.State, to.Generation, to.Since, openUntil, to.Trips)
	if err != nil {
		return false, fmt.Errorf("transition breaker %s: %w", from.Name, err)
	}
	if tag.RowsAffected() == 0 {
		return false, nil
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO breaker_transitions (name, generation, from_state, to_state, reason, calls, failures, slow, instance, actor, at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		from.Name, to.Generation, from.State, to.State, t.Reason, t.Counts.Calls, t.Counts.Failures, t.Counts.Slow,
		t.Instance, t.Actor, to.Since); err != nil {
		return false, fmt.Errorf("record transition: %w", err)
	}
	if t.Audit != nil {
		if err := InsertAudit(ctx, tx, *t.Audit); err != nil {
			return false, err
		}
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, BreakerChannel, from.Name); err != nil {
		return false, fmt.Errorf("notify transition: %w", err)
	}
	return true, tx.Commit(ctx)
}

// SetBreakerPolicy replaces a breaker's thresholds and records who did it.
func SetBreakerPolicy(ctx context.Context, pool *pgxpool.Pool, name string, p app.BreakerPolicy, t app.Transition, now time.Time) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	var b app.Breaker
	b, err = scanBreaker(tx.QueryRow(ctx, `
		UPDATE breakers SET window_ms = $2, min_calls = $3, failure_rate = $4, slow_rate = $5, slow_call_ms = $6,
			open_wait_ms = $7, max_open_wait_ms = $8, probes = $9, probe_lease_ms = $10, trip_memory_ms = $11,
			consecutive_failures = $12, updated_at = $13
		WHERE name = $1 RETURNING `+breakerColumns, append(append([]any{name}, policyArgs(p)...), now)...))
	if err != nil {
		return fmt.Errorf("set breaker policy %s: %w", name, err)
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO breaker_transitions (name, generation, from_state, to_state, reason, calls, failures, slow, instance, actor, at)
		VALUES ($1, $2, $3, $3, $4, 0, 0, 0, $5, $6, $7)`,
		name, b.Generation, b.State, t.Reason, t.Instance, t.Actor, now); err != nil {
		return fmt.Errorf("record policy change: %w", err)
	}
	if t.Audit != nil {
		if err := InsertAudit(ctx, tx, *t.Audit); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, BreakerChannel, name); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// ClaimProbe takes one of a half-open generation's probe permits, if any is
// free. The breaker row is locked only for this short transaction, never
// across the probe call itself.
func ClaimProbe(ctx context.Context, pool *pgxpool.Pool, name string, gen int64, instance string) (int64, bool, error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return 0, false, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	var probes int
	var leaseMS int64
	err = tx.QueryRow(ctx, `
		SELECT probes, probe_lease_ms FROM breakers
		WHERE name = $1 AND generation = $2 AND state = 'half_open' FOR UPDATE`, name, gen).Scan(&probes, &leaseMS)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("claim probe: %w", err)
	}
	var id int64
	err = tx.QueryRow(ctx, `
		INSERT INTO breaker_probes (name, generation, instance, leased_until)
		SELECT $1, $2, $3, now() + $4 * interval '1 millisecond'
		WHERE (SELECT count(*) FROM breaker_probes
			WHERE name = $1 AND generation = $2 AND (outcome IS NOT NULL OR leased_until > now())) < $5
		RETURNING id`, name, gen, instance, leaseMS, probes).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("claim probe: %w", err)
	}
	return id, true, tx.Commit(ctx)
}

// FinishProbe records a probe's outcome ("success" or "failure"), or with
// outcome "" releases the permit unused.
func FinishProbe(ctx context.Context, q Querier, id int64, outcome string) error {
	var err error
	if outcome == "" {
		_, err = q.Exec(ctx, `UPDATE breaker_probes SET leased_until = now() WHERE id = $1 AND outcome IS NULL`, id)
	} else {
		_, err = q.Exec(ctx, `UPDATE breaker_probes SET outcome = $2 WHERE id = $1 AND outcome IS NULL`, id, outcome)
	}
	if err != nil {
		return fmt.Errorf("finish probe: %w", err)
	}
	return nil
}

// ProbeSummary counts a half-open generation's probe outcomes.
func ProbeSummary(ctx context.Context, q Querier, name string, gen int64) (successes, failures int, err error) {
	err = q.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE outcome = 'success'), count(*) FILTER (WHERE outcome = 'failure')
		FROM breaker_probes WHERE name = $1 AND generation = $2`, name, gen).Scan(&successes, &failures)
	if err != nil {
		return 0, 0, fmt.Errorf("probe summary: %w", err)
	}
	return successes, failures, nil
}

// PruneBreakerHistory drops counts and probes too old to matter.
func PruneBreakerHistory(ctx context.Context, q Querier, before time.Time) error {
	if _, err := q.Exec(ctx, `DELETE FROM breaker_counts WHERE bucket < $1`, before); err != nil {
		return fmt.Errorf("prune breaker counts: %w", err)
	}
	if _, err := q.Exec(ctx, `DELETE FROM breaker_streaks WHERE updated_at < $1`, before); err != nil {
		return fmt.Errorf("prune breaker streaks: %w", err)
	}
	if _, err := q.Exec(ctx, `DELETE FROM breaker_probes WHERE created_at < $1`, before); err != nil {
		return fmt.Errorf("prune breaker probes: %w", err)
	}
	return nil
}

// ListenBreakers calls fn with a breaker's name whenever any instance
// changes it, until ctx ends, calling ready once it is listening.
func ListenBreakers(ctx context.Context, pool *pgxpool.Pool, ready func(), fn func(name string)) error {
	return Listen(ctx, pool, BreakerChannel, ready, fn)
}
