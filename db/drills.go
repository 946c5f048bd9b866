package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/spillway/spillway/app"
)

const drillColumns = `id, dependency, mode, trigger, actor, slot, status, duration_ms, started_at, ended_at,
	canaries, sent, completed, drain_ms, reason, finished_at`

// InsertDrillTx records d and sets its ID. It reports false, and writes
// nothing, when the dependency already has a drill open or d's schedule
// slot was drilled (the unique indexes drills_open and drills_slot).
func InsertDrillTx(ctx context.Context, tx pgx.Tx, d *app.Drill) (bool, error) {
	err := tx.QueryRow(ctx, `
		INSERT INTO drills (dependency, mode, trigger, actor, slot, status, duration_ms, started_at, canaries)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT DO NOTHING RETURNING id`,
		d.Dependency, d.Mode, d.Trigger, d.Actor, d.Slot, d.Status, d.Duration.Milliseconds(), d.StartedAt, d.Canaries).
		Scan(&d.ID)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("insert drill: %w", err)
	}
	return true, nil
}

// AbandonDrillsTx fails the drills of dependency still open past their
// deadline by more than grace at now: their job stopped before a verdict
// (River discarded it), and an open drill would refuse every later one.
// It answers how many it failed.
func AbandonDrillsTx(ctx context.Context, tx pgx.Tx, dependency string, now time.Time, grace time.Duration) (int, error) {
	tag, err := tx.Exec(ctx, `
		UPDATE drills SET status = 'failed', finished_at = $2, ended_at = coalesce(ended_at, $2),
			reason = 'the drill''s job stopped before its verdict (see its job among the failed jobs); its canaries were not judged'
		WHERE dependency = $1 AND status IN ('running', 'draining')
			AND started_at + (duration_ms + $3::bigint) * interval '1 millisecond' < $2`,
		dependency, now, (app.DrillGrace + grace).Milliseconds())
	if err != nil {
		return 0, fmt.Errorf("abandon drills: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// GetDrill reads one drill.
func GetDrill(ctx context.Context, q Querier, id int64) (app.Drill, error) {
	rows, err := q.Query(ctx, `SELECT `+drillColumns+` FROM drills WHERE id = $1`, id)
	if err != nil {
		return app.Drill{}, fmt.Errorf("get drill: %w", err)
	}
	d, err := pgx.CollectExactlyOneRow(rows, scanDrill)
	if errors.Is(err, pgx.ErrNoRows) {
		return d, app.Errorf(app.ENOTFOUND, "There is no drill %d.", id)
	}
	return d, err
}

// SaveDrill stores a drill's progress and verdict.
func SaveDrill(ctx context.Context, q Querier, d app.Drill) error {
	var drain *int64
	if d.DrainTime != nil {
		ms := d.DrainTime.Milliseconds()
		drain = &ms
	}
	_, err := q.Exec(ctx, `
		UPDATE drills SET status = $2, ended_at = $3, sent = $4, completed = $5, drain_ms = $6, reason = $7, finished_at = $8
		WHERE id = $1`,
		d.ID, d.Status, nullTime(d.EndedAt), d.Sent, d.Completed, drain, d.Reason, nullTime(d.FinishedAt))
	if err != nil {
		return fmt.Errorf("save drill: %w", err)
	}
	return nil
}

// ListDrills returns up to limit drills, newest first.
func ListDrills(ctx context.Context, q Querier, limit int) ([]app.Drill, error) {
	rows, err := q.Query(ctx, `SELECT `+drillColumns+` FROM drills ORDER BY id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list drills: %w", err)
	}
	return pgx.CollectRows(rows, scanDrill)
}

// LastDrills returns each dependency's latest drill (open or finished),
// and its latest finished one, by dependency: the overview's and the
// metrics' figures.
func LastDrills(ctx context.Context, q Querier) (latest, finished map[string]app.Drill, err error) {
	read := func(where string) (map[string]app.Drill, error) {
		rows, err := q.Query(ctx, `SELECT DISTINCT ON (dependency) `+drillColumns+` FROM drills `+where+`
			ORDER BY dependency, id DESC`)
		if err != nil {
			return nil, fmt.Errorf("last drills: %w", err)
		}
		ds, err := pgx.CollectRows(rows, scanDrill)
		if err != nil {
			return nil, err
		}
		m := make(map[string]app.Drill, len(ds))
		for _, d := range ds {
			m[d.Dependency] = d
		}
		return m, nil
	}
	if latest, err = read(""); err != nil {
		return nil, nil, err
	}
	finished, err = read(`WHERE finished_at IS NOT NULL`)
	return latest, finished, err
}

// CanaryStates reads how the canaries ids stand, with their jobs' states.
func CanaryStates(ctx context.Context, q Querier, ids []uuid.UUID) ([]app.CanaryState, error) {
	rows, err := q.Query(ctx, `
		SELECT o.id, o.status, o.completed_at, coalesce(j.state::text, ''), coalesce(o.error->>'message', '')
		FROM operations o LEFT JOIN river_job j ON j.id = o.job_id
		WHERE o.id = ANY($1) ORDER BY o.created_at`, ids)
	if err != nil {
		return nil, fmt.Errorf("canary states: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (app.CanaryState, error) {
		var s app.CanaryState
		err := r.Scan(&s.ID, &s.Status, &s.CompletedAt, &s.JobState, &s.LastError)
		return s, err
	})
}

func scanDrill(r pgx.CollectableRow) (app.Drill, error) {
	var d app.Drill
	var durMS int64
	var drainMS *int64
	var ended, finished *time.Time
	err := r.Scan(&d.ID, &d.Dependency, &d.Mode, &d.Trigger, &d.Actor, &d.Slot, &d.Status, &durMS, &d.StartedAt, &ended,
		&d.Canaries, &d.Sent, &d.Completed, &drainMS, &d.Reason, &finished)
	if err != nil {
		return d, fmt.Errorf("scan drill: %w", err)
	}
	d.Duration = time.Duration(durMS) * time.Millisecond
	if drainMS != nil {
		dt := time.Duration(*drainMS) * time.Millisecond
		d.DrainTime = &dt
	}
	if ended != nil {
		d.EndedAt = ended.UTC()
	}
	if finished != nil {
		d.FinishedAt = finished.UTC()
	}
	d.StartedAt = d.StartedAt.UTC()
	return d, nil
}

// nullTime is t, or NULL when zero.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
