package db

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river/rivertype"

	"github.com/spillway/spillway/app"
)

// AdminJob is a River job as the admin lists it, with the operation it
// works on when it has one.
type AdminJob struct {
	ID          int64
	Kind        string
	Queue       string
	State       rivertype.JobState
	Priority    int
	Attempt     int
	MaxAttempts int
	CreatedAt   time.Time
	ScheduledAt time.Time
	AttemptedAt *time.Time
	FinalizedAt *time.Time
	LastError   string

	OperationID *uuid.UUID
	OpStatus    string
	Amount      int64
	Currency    string
	Email       string
	Description string
	// Steps are an order's steps, for the list's summary; nil for an
	// operation without steps.
	Steps []app.Step
}

// JobCursor is the keyset position after a page's last job: the worker
// order's (priority, scheduled_at, id), or just id for newest-first tabs.
type JobCursor struct {
	Priority    int
	ScheduledAt time.Time
	ID          int64
}

// String encodes the cursor for a query string.
func (c JobCursor) String() string {
	return fmt.Sprintf("%d.%d.%d", c.Priority, c.ScheduledAt.UnixMicro(), c.ID)
}

// ParseJobCursor decodes String's form.
func ParseJobCursor(s string) (*JobCursor, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return nil, app.FieldErrorf("after", "bad page cursor %q", s)
	}
	var n [3]int64
	for i, p := range parts {
		v, err := strconv.ParseInt(p, 10, 64)
		if err != nil {
			return nil, app.FieldErrorf("after", "bad page cursor %q", s)
		}
		n[i] = v
	}
	return &JobCursor{Priority: int(n[0]), ScheduledAt: time.UnixMicro(n[1]).UTC(), ID: n[2]}, nil
}

const adminJobColumns = `j.id, j.kind, j.queue, j.state::text, j.priority, j.attempt, j.max_attempts, j.created_at,
	j.scheduled_at, j.attempted_at, j.finalized_at,
	coalesce(j.errors[array_length(j.errors, 1)]->>'error', ''),
	o.id, coalesce(o.status, ''), coalesce(o.amount, 0), coalesce(o.currency, ''), coalesce(o.customer_email, ''),
	coalesce(o.description, ''), o.steps`

const adminJobFrom = ` FROM river_job j LEFT JOIN operations o ON o.job_id = j.id `

func scanAdminJob(row pgx.Row, more ...any) (AdminJob, error) {
	var j AdminJob
	var steps []byte
	err := row.Scan(append([]any{&j.ID, &j.Kind, &j.Queue, &j.State, &j.Priority, &j.Attempt, &j.MaxAttempts, &j.CreatedAt,
		&j.ScheduledAt, &j.AttemptedAt, &j.FinalizedAt, &j.LastError,
		&j.OperationID, &j.OpStatus, &j.Amount, &j.Currency, &j.Email, &j.Description, &steps}, more...)...)
	if err != nil {
		return j, err
	}
	if steps != nil {
		if err := json.Unmarshal(steps, &j.Steps); err != nil {
			return j, fmt.Errorf("decode order steps: %w", err)
		}
	}
	return j, nil
}

// jobWhere is the filter as SQL over river_job j and operations o, with
// its arguments; states, when given, further limits the filter's states
// (to an action's eligible ones).
func jobWhere(f app.JobFilter, states []rivertype.JobState, now time.Time) (string, []any) {
	conds := []string{"true"}
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.States != nil {
		// Compared as River's enum, not as text, so the state can use
		// River's indexes.
		conds = append(conds, "j.state = ANY("+arg(stateStrings(f.States))+"::river_job_state[])")
	}
	if states != nil {
		conds = append(conds, "j.state = ANY("+arg(stateStrings(states))+"::river_job_state[])")
	}
	if f.MaxPriority > 0 {
		conds = append(conds, "j.priority <= "+arg(f.MaxPriority))
	}
	if f.Kind != "" {
		conds = append(conds, "j.kind = "+arg(f.Kind))
	}
	if f.Queue != "" {
		conds = append(conds, "j.queue = "+arg(f.Queue))
	}
	if f.Priority > 0 {
		conds = append(conds, "j.priority = "+arg(f.Priority))
	}
	if f.OperationID != nil {
		conds = append(conds, "o.id = "+arg(*f.OperationID))
	}
	if f.Email != "" {
		conds = append(conds, "lower(o.customer_email) = "+arg(f.Email))
	}
	if f.MinAmount > 0 {
		conds = append(conds, "o.amount >= "+arg(f.MinAmount))
	}
	if f.MaxAmount > 0 {
		conds = append(conds, "o.amount <= "+arg(f.MaxAmount))
	}
	if f.Within > 0 {
		conds = append(conds, "j.created_at >= "+arg(now.Add(-f.Within)))
	}
	if f.Dependency != "" {
		// A one-call kind by its kind; an order (or any operation with
		// steps) when one of its steps names the dependency.
		steps, _ := json.Marshal([]map[string]string{{"dependency": f.Dependency}})
		conds = append(conds, "(o.kind = ANY("+arg(app.KindsCalling(f.Dependency))+") OR o.steps @> "+arg(string(steps))+"::jsonb)")
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// stateStrings is states as Postgres compares them with river_job.state.
func stateStrings(states []rivertype.JobState) []string {
	out := make([]string, len(states))
	for i, s := range states {
		out[i] = string(s)
	}
	return out
}

// JobOrder is the order a job list is in.
type JobOrder int

const (
	NewestFirst JobOrder = iota // by id, descending
	// WorkerOrder is the order workers take waiting jobs in: priority,
	// scheduled_at, id.
	WorkerOrder
)

// ListAdminJobs returns up to limit jobs matching f after the cursor, in
// order. Both orders are keyset-paginated.
func ListAdminJobs(ctx context.Context, q Querier, f app.JobFilter, order JobOrder, after *JobCursor, limit int, now time.Time) ([]AdminJob, error) {
	if order == WorkerOrder && f.States != nil {
		return listWorkerOrder(ctx, q, f, after, limit, now)
	}
	where, args := jobWhere(f, nil, now)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	orderBy := " ORDER BY j.id DESC"
	if order == WorkerOrder {
		orderBy = " ORDER BY j.priority, j.scheduled_at, j.id"
		if after != nil {
			where += " AND (j.priority, j.scheduled_at, j.id) > (" + arg(after.Priority) + ", " + arg(after.ScheduledAt) + ", " + arg(after.ID) + ")"
		}
	} else if after != nil {
		where += " AND j.id < " + arg(after.ID)
	}
	rows, err := q.Query(ctx, `SELECT `+adminJobColumns+adminJobFrom+where+orderBy+` LIMIT `+arg(limit), args...)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return collectAdminJobs(rows)
}

// listWorkerOrder lists waiting jobs in the order workers take them.
// River's fetch index is (state, queue, priority, scheduled_at, id), so
// the order is read per (state, queue) pair, each an index scan of at
// most limit rows, and the pairs merged: one ORDER BY over every waiting
// job would sort the whole backlog (a million deferred jobs) for a page.
func listWorkerOrder(ctx context.Context, q Querier, f app.JobFilter, after *JobCursor, limit int, now time.Time) ([]AdminJob, error) {
	pairs, err := waitingPairs(ctx, q, f.States)
	if err != nil || len(pairs) == 0 {
		return nil, err
	}
	g := f
	g.States = nil // each branch names its state
	where, args := jobWhere(g, nil, now)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	keyset := ""
	if after != nil {
		keyset = " AND (j.priority, j.scheduled_at, j.id) > (" + arg(after.Priority) + ", " + arg(after.ScheduledAt) + ", " + arg(after.ID) + ")"
	}
	lim := arg(limit)
	branches := make([]string, len(pairs))
	for i, p := range pairs {
		branches[i] = `(SELECT ` + adminJobColumns + adminJobFrom + where + ` AND j.state = ` + arg(p[0]) + `::river_job_state AND j.queue = ` +
			arg(p[1]) + keyset + ` ORDER BY j.priority, j.scheduled_at, j.id LIMIT ` + lim + `)`
	}
	// Columns 5, 9 and 1 are priority, scheduled_at and id.
	rows, err := q.Query(ctx, `SELECT * FROM (`+strings.Join(branches, " UNION ALL ")+`) u ORDER BY 5, 9, 1 LIMIT `+lim, args...)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return collectAdminJobs(rows)
}

// CountAdminJobs counts the jobs matching f, limited to states when given.
func CountAdminJobs(ctx context.Context, q Querier, f app.JobFilter, states []rivertype.JobState, now time.Time) (int, error) {
	where, args := jobWhere(f, states, now)
	var n int
	if err := q.QueryRow(ctx, `SELECT count(*)`+adminJobFrom+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count jobs: %w", err)
	}
	return n, nil
}

// AdminJobIDs returns up to limit ids of jobs matching f in states, above
// afterID, in id order: one batch of a bulk action.
func AdminJobIDs(ctx context.Context, q Querier, f app.JobFilter, states []rivertype.JobState, afterID int64, limit int, now time.Time) ([]int64, error) {
	where, args := jobWhere(f, states, now)
	args = append(args, afterID, limit)
	n := len(args)
	rows, err := q.Query(ctx, fmt.Sprintf(`SELECT j.id`+adminJobFrom+where+` AND j.id > $%d ORDER BY j.id LIMIT $%d`, n-1, n), args...)
	if err != nil {
		return nil, fmt.Errorf("job ids: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[int64])
}

// AdminJobKinds lists the distinct kinds of River's jobs, up to limit, in
// name order. It skips through river_job_kind one kind at a time, so it
// costs a probe per kind however many jobs there are.
func AdminJobKinds(ctx context.Context, q Querier, limit int) ([]string, error) {
	rows, err := q.Query(ctx, `
		WITH RECURSIVE k AS (
			(SELECT kind FROM river_job ORDER BY kind LIMIT 1)
			UNION ALL
			SELECT (SELECT j.kind FROM river_job j WHERE j.kind > k.kind ORDER BY j.kind LIMIT 1) FROM k WHERE k.kind IS NOT NULL
		)
		SELECT kind FROM k WHERE kind IS NOT NULL LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("job kinds: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// JobAttempt is one failed attempt from river_job.errors.
type JobAttempt struct {
	Attempt int       `json:"attempt"`
	At      time.Time `json:"at"`
	Error   string    `json:"error"`
	Trace   string    `json:"trace"`
}

// Delivery is one notification sent about an operation.
type Delivery struct {
	ID           string
	Channel      string
	Target       string
	Attempt      int
	Outcome      string
	ResponseCode *int
	Error        string
	CreatedAt    time.Time
}

// AdminJobDetail is everything the job page shows.
type AdminJobDetail struct {
	Job       AdminJob
	Args      json.RawMessage
	Metadata  json.RawMessage
	Tags      []string
	Attempts  []JobAttempt
	Operation *app.Operation
	// HasDeliveries is false when this database has no deliveries table.
	HasDeliveries bool
	Deliveries    []Delivery
}

// GetAdminJob reads one job with its operation, attempts and deliveries.
func GetAdminJob(ctx context.Context, q Querier, id int64) (*AdminJobDetail, error) {
	var d AdminJobDetail
	var errs []byte
	row := q.QueryRow(ctx, `SELECT `+adminJobColumns+`, j.args, j.metadata, j.tags, coalesce(array_to_json(j.errors), '[]')`+
		adminJobFrom+` WHERE j.id = $1`, id)
	j, err := scanAdminJob(row, &d.Args, &d.Metadata, &d.Tags, &errs)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, app.Errorf(app.ENOTFOUND, "There is no such thing (any more): no job %d.", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get job: %w", err)
	}
	d.Job = j
	if err := json.Unmarshal(errs, &d.Attempts); err != nil {
		return nil, fmt.Errorf("decode job errors: %w", err)
	}
	if j.OperationID != nil {
		if d.Operation, err = GetOperation(ctx, q, *j.OperationID); err != nil && app.ErrorCode(err) != app.ENOTFOUND {
			return nil, err
		}
		if err := q.QueryRow(ctx, `SELECT to_regclass('deliveries') IS NOT NULL`).Scan(&d.HasDeliveries); err != nil {
			return nil, fmt.Errorf("find deliveries: %w", err)
		}
		if d.HasDeliveries {
			if d.Deliveries, err = listDeliveries(ctx, q, *j.OperationID); err != nil {
				return nil, err
			}
		}
	}
	return &d, nil
}

func listDeliveries(ctx context.Context, q Querier, opID uuid.UUID) ([]Delivery, error) {
	// Cast everything to plain types: the table belongs to the
	// notifications work and its column types may still move.
	rows, err := q.Query(ctx, `
		SELECT id::text, coalesce(channel::text, ''), coalesce(target::text, ''), coalesce(attempt::int, 0),
			coalesce(outcome::text, ''), response_code::int, coalesce(error::text, ''), created_at
		FROM deliveries WHERE operation_id = $1 ORDER BY created_at, id LIMIT 200`, opID)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Delivery, error) {
		var d Delivery
		err := r.Scan(&d.ID, &d.Channel, &d.Target, &d.Attempt, &d.Outcome, &d.ResponseCode, &d.Error, &d.CreatedAt)
		return d, err
	})
}

// collectAdminJobs scans every row of adminJobColumns.
func collectAdminJobs(rows pgx.Rows) ([]AdminJob, error) {
	jobs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AdminJob, error) { return scanAdminJob(r) })
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return jobs, nil
}
