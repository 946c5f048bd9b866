package app

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river/rivertype"
)

// JobRef is a River job as an operator action sees it.
type JobRef struct {
	ID          int64              `json:"id"`
	State       rivertype.JobState `json:"state"`
	Priority    int                `json:"priority"`
	OperationID *uuid.UUID         `json:"operation_id,omitempty"`
	// AttemptUnrecorded: an attempt of the job began after its operation
	// was last written, so it ended without recording its outcome (its
	// worker died, or was stopped, mid-call) and may have charged.
	AttemptUnrecorded bool `json:"attempt_unrecorded,omitempty"`
}

// JobOperation is a job's operation, with whether an attempt of the job
// went unrecorded (JobRef.AttemptUnrecorded).
type JobOperation struct {
	*Operation
	AttemptUnrecorded bool
}

// JobStore is the storage job actions need.
type JobStore interface {
	// LockJobsTx locks those of ids in one of states, in id order.
	LockJobsTx(ctx context.Context, tx pgx.Tx, ids []int64, states []rivertype.JobState) ([]JobRef, error)
	GetOperationTx(ctx context.Context, tx pgx.Tx, id uuid.UUID) (*Operation, error)
	// ReviseOperationTx writes op's mutable fields if the stored operation
	// is in one of from; false means it was not.
	ReviseOperationTx(ctx context.Context, tx pgx.Tx, op *Operation, from []Status) (bool, error)
	// JobOperations reads the operations of those of the given jobs in one
	// of states, outside any transaction: what lookups must ask about
	// before the jobs are locked.
	JobOperations(ctx context.Context, ids []int64, states []rivertype.JobState) ([]JobOperation, error)
	// MatchingJobIDs returns up to limit ids of jobs matching f and in one
	// of states, above afterID, in id order; now is what f.Within counts
	// back from.
	MatchingJobIDs(ctx context.Context, f JobFilter, states []rivertype.JobState, afterID int64, limit int, now time.Time) ([]int64, error)
	// RequestCancelTx records an operator's cancel of an open operation of
	// a step kind (its first request counts); false means it was not open.
	RequestCancelTx(ctx context.Context, tx pgx.Tx, id uuid.UUID, now time.Time) (bool, error)
	SetJobPriorityTx(ctx context.Context, tx pgx.Tx, ids []int64, priority int, now time.Time) error
	MarkRunNowTx(ctx context.Context, tx pgx.Tx, ids []int64) error
}

// JobAction is something an operator does to jobs.
type JobAction string

const (
	ActionReprioritize JobAction = "reprioritize"
	ActionRetry        JobAction = "retry"
	ActionCancel       JobAction = "cancel"
	ActionRunNow       JobAction = "run_now"
)

// ParseJobAction accepts the four job actions.
func ParseJobAction(s string) (JobAction, error) {
	switch a := JobAction(s); a {
	case ActionReprioritize, ActionRetry, ActionCancel, ActionRunNow:
		return a, nil
	}
	return "", FieldErrorf("action", "unknown action %q", s)
}

// WaitingStates are the states a job can still be reprioritized in: River
// fetches by priority only from these (checked against River v0.51.1).
var WaitingStates = []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStateScheduled,
	rivertype.JobStateRetryable, rivertype.JobStatePending}

// States are the job states the action applies to; jobs in others are
// left alone (and counted as skipped).
func (a JobAction) States() []rivertype.JobState {
	switch a {
	case ActionReprioritize:
		return WaitingStates
	case ActionRetry:
		// Retrying a finished job makes it available again now.
		return []rivertype.JobState{rivertype.JobStateDiscarded, rivertype.JobStateCancelled, rivertype.JobStateRetryable}
	case ActionCancel:
		// Running jobs are locked too, to be refused with the reason.
		return []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStateScheduled, rivertype.JobStateRetryable,
			rivertype.JobStatePending, rivertype.JobStateRunning}
	case ActionRunNow:
		return []rivertype.JobState{rivertype.JobStateScheduled, rivertype.JobStateRetryable}
	}
	return nil
}

// JobRequest is an action and its argument.
type JobRequest struct {
	Action   JobAction
	Priority int // for ActionReprioritize
	// Detail says how the jobs were chosen, for the audit log.
	Detail string
}

// JobRefusal is a job the action was not applied to, and why, in words
// for the operator.
type JobRefusal struct {
	JobID  int64
	Reason string
}

// JobsResult is what an action did.
type JobsResult struct {
	Changed []JobRef // as they were before
	// Settled are jobs whose operation a lookup found charged or declined:
	// the operation was recorded so instead of being cancelled or retried.
	Settled []JobRef
	// Compensating are those of Changed whose operation is of a step kind
	// (an order) that a cancel could not end at once: its worker undoes
	// what its steps did first, then ends it.
	Compensating []JobRef
	Refused      []JobRefusal
}

// ApplyJobs applies req to those of ids in a state it applies to, in one
// transaction with one audit entry. The provider lookups a cancel or a
// retry needs are made first, concurrently and outside the transaction,
// so no job stays locked while the provider is asked; an answer counts
// only if the operation did not change meanwhile.
func (o *Operator) ApplyJobs(ctx context.Context, actor Actor, req JobRequest, ids []int64) (JobsResult, error) {
	var res JobsResult
	if err := o.needJobs(); err != nil {
		return res, err
	}
	if req.Action == ActionReprioritize {
		if _, err := ParsePriority(strconv.Itoa(req.Priority)); err != nil {
			return res, err
		}
	}
	var asked answers
	if req.Action == ActionCancel || req.Action == ActionRetry {
		var err error
		if asked, err = o.ask(ctx, req.Action, ids); err != nil {
			return res, err
		}
	}
	err := o.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		res, err = o.applyJobsTx(ctx, tx, actor, req, ids, asked)
		return err
	})
	return res, err
}

// FilterResult is what an action on every job matching a filter did.
type FilterResult struct {
	Changed      int // jobs changed, over all batches
	Settled      []JobRef
	Compensating []JobRef
	Refused      []JobRefusal
	Batches      int
}

// ApplyToFilter applies req to every job matching f that is in a state
// the action applies to, in batches of FilterBatch jobs in id order, each
// its own transaction with its own audit entry (ApplyJobs). The filter is
// run again for each batch, so jobs that start matching while it runs are
// included: a count shown beforehand is a preview. req.Detail should say
// what f is, for the audit log.
func (o *Operator) ApplyToFilter(ctx context.Context, actor Actor, req JobRequest, f JobFilter) (FilterResult, error) {
	var out FilterResult
	now := o.cfg.Now()
	var last int64
	for {
		ids, err := o.cfg.Store.MatchingJobIDs(ctx, f, req.Action.States(), last, o.cfg.FilterBatch, now)
		if err != nil {
			return out, err
		}
		if len(ids) == 0 {
			return out, nil
		}
		last = ids[len(ids)-1]
		res, err := o.ApplyJobs(ctx, actor, req, ids)
		if err != nil {
			return out, fmt.Errorf("bulk %s after %d batches (%d jobs done): %w", req.Action, out.Batches, out.Changed, err)
		}
		out.Changed += len(res.Changed)
		out.Settled = append(out.Settled, res.Settled...)
		out.Compensating = append(out.Compensating, res.Compensating...)
		out.Refused = append(out.Refused, res.Refused...)
		out.Batches++
	}
}

// FilterBatch is how many jobs each transaction of ApplyToFilter changes.
func (o *Operator) FilterBatch() int { return o.cfg.FilterBatch }

// answer is a provider's answer about an operation's key, with what the
// operation looked like when it was asked.
type answer struct {
	lookup      ChargeLookup
	err         error
	keyGen      int
	attemptedAt *time.Time
}

type answers map[uuid.UUID]answer

// lookupConcurrency bounds the lookups one action makes at once.
const lookupConcurrency = 8

// ask looks up the key of every operation among the jobs' that the action
// could not decide without the provider.
func (o *Operator) ask(ctx context.Context, action JobAction, ids []int64) (answers, error) {
	// A running job is refused, not asked about: its attempt is out.
	var states []rivertype.JobState
	for _, st := range action.States() {
		if st != rivertype.JobStateRunning {
			states = append(states, st)
		}
	}
	ops, err := o.cfg.Store.JobOperations(ctx, ids, states)
	if err != nil {
		return nil, err
	}
	var need []*Operation
	for _, op := range ops {
		if needsLookup(action, op.Operation, op.AttemptUnrecorded) {
			need = append(need, op.Operation)
		}
	}
	out := make(answers, len(need))
	if len(need) == 0 || o.cfg.Provider == nil {
		return out, nil
	}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		sema = make(chan struct{}, lookupConcurrency)
	)
	for _, op := range need {
		wg.Add(1)
		sema <- struct{}{}
		go func() {
			defer func() { <-sema; wg.Done() }()
			lctx, cancel := context.WithTimeout(ctx, o.cfg.LookupTimeout)
			l, err := o.cfg.Provider.Lookup(lctx, op.ProviderKey())
			cancel()
			mu.Lock()
			out[op.ID] = answer{lookup: l, err: err, keyGen: op.KeyGen, attemptedAt: op.AttemptedAt}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out, nil
}

// needsLookup reports whether acting on op could lose a charge unless the
// provider is asked first: a cancel of an open operation that may have
// been charged (its outcome unknown, or an attempt of its job unrecorded),
// or a retry of a finished one whose key the provider may know.
func needsLookup(action JobAction, op *Operation, attemptUnrecorded bool) bool {
	if op.Composite() {
		return false // its worker asks each step's dependency (cancelStepsTx)
	}
	switch action {
	case ActionCancel:
		return !op.Status.Terminal() && (op.MayHaveCharged() || attemptUnrecorded)
	case ActionRetry:
		return op.Status != StatusSucceeded && op.Status != StatusDeclined && (op.Attempts > 0 || op.MayHaveCharged())
	}
	return false
}

func (o *Operator) applyJobsTx(ctx context.Context, tx pgx.Tx, actor Actor, req JobRequest, ids []int64, asked answers) (JobsResult, error) {
	var res JobsResult
	jobs, err := o.cfg.Store.LockJobsTx(ctx, tx, ids, req.Action.States())
	if err != nil {
		return res, err
	}
	now := o.cfg.Now()
	switch req.Action {
	case ActionReprioritize:
		for _, j := range jobs {
			if j.Priority != req.Priority {
				res.Changed = append(res.Changed, j)
			}
		}
		if len(res.Changed) > 0 {
			if err := o.cfg.Store.SetJobPriorityTx(ctx, tx, refIDs(res.Changed), req.Priority, now); err != nil {
				return res, err
			}
		}
	case ActionRunNow:
		for _, j := range jobs {
			if _, err := o.cfg.Jobs.JobRetryTx(ctx, tx, j.ID); err != nil {
				return res, fmt.Errorf("run job %d now: %w", j.ID, err)
			}
			res.Changed = append(res.Changed, j)
		}
		if len(res.Changed) > 0 {
			if err := o.cfg.Store.MarkRunNowTx(ctx, tx, refIDs(res.Changed)); err != nil {
				return res, err
			}
		}
	case ActionRetry:
		for _, j := range jobs {
			if err := o.retryTx(ctx, tx, j, asked, &res); err != nil {
				return res, err
			}
		}
	case ActionCancel:
		for _, j := range jobs {
			if err := o.cancelTx(ctx, tx, j, asked, &res); err != nil {
				return res, err
			}
		}
	}
	if len(res.Changed)+len(res.Settled) == 0 {
		return res, nil
	}
	touched := append(append([]JobRef(nil), res.Changed...), res.Settled...)
	e := o.audit(actor, "job."+string(req.Action), jobsTarget(refIDs(touched)), touched, req.after(res), req.Detail, now)
	return res, o.cfg.Store.InsertAuditTx(ctx, tx, e)
}

// cancelStepsTx cancels an open operation of a step kind (an order) the
// only way that loses nothing: the cancel is recorded and the job made
// available now, and its worker, following NextStepAction, first learns
// any outcome we do not know, then undoes every step that took effect,
// each once, and only then ends the operation cancelled. If its last step
// already took effect, it ends as that: a cancel that comes too late
// changes nothing the customer paid for.
func (o *Operator) cancelStepsTx(ctx context.Context, tx pgx.Tx, j JobRef, op *Operation, res *JobsResult) error {
	ok, err := o.cfg.Store.RequestCancelTx(ctx, tx, op.ID, o.cfg.Now())
	if err != nil || !ok {
		return err
	}
	if _, err := o.cfg.Jobs.JobRetryTx(ctx, tx, j.ID); err != nil {
		return fmt.Errorf("run job %d now to compensate: %w", j.ID, err)
	}
	res.Changed = append(res.Changed, j)
	res.Compensating = append(res.Compensating, j)
	return nil
}

// stepsEnded is why a retry of an operation of a step kind that ended is
// refused: what it did was undone (or it succeeded), and its steps' keys
// are spent, so running them again would not do the operation again.
func stepsEnded(op *Operation) string {
	return fmt.Sprintf("its %s already ended %s, and what its steps did was undone or is kept; "+
		"its steps cannot be run again under their keys, so it must be placed anew.", op.Kind, op.Status)
}

// cancelTx cancels one locked job, and its operation unless that could
// lose a charge.
func (o *Operator) cancelTx(ctx context.Context, tx pgx.Tx, j JobRef, asked answers, res *JobsResult) error {
	if j.State == rivertype.JobStateRunning {
		res.Refused = append(res.Refused, JobRefusal{j.ID, "it is running: its call to the provider may be charging " +
			"right now. Wait for the attempt to end, then cancel."})
		return nil
	}
	op, err := o.operationTx(ctx, tx, j)
	if err != nil {
		return err
	}
	if op != nil && op.Composite() && !op.Status.Terminal() {
		return o.cancelStepsTx(ctx, tx, j, op, res)
	}
	if op != nil && !op.Status.Terminal() {
		now := o.cfg.Now()
		if op.MayHaveCharged() || j.AttemptUnrecorded {
			// An attempt may have charged: ask. The provider charged (or
			// declined) after all: that is the outcome, not a cancellation.
			if done, err := o.decided(op, asked, now, j, res, func() error { return o.endTx(ctx, tx, j, op) }); done {
				return err
			}
		}
		op.Cancel("cancelled by an operator", now)
		if _, err := o.writeTx(ctx, tx, op, openStatuses); err != nil {
			return err
		}
	}
	if _, err := o.cfg.Jobs.JobCancelTx(ctx, tx, j.ID); err != nil {
		return fmt.Errorf("cancel job %d: %w", j.ID, err)
	}
	res.Changed = append(res.Changed, j)
	return nil
}

// decided applies the provider's answer about op before a cancel or a
// retry of job j: refused when the provider could not say (res says why),
// settled when it charged or declined after all (record writes that
// outcome). Either way the action goes no further; false means nothing
// was charged and it may.
func (o *Operator) decided(op *Operation, asked answers, now time.Time, j JobRef, res *JobsResult, record func() error) (bool, error) {
	settled, why := o.settle(op, asked, now)
	switch {
	case why != "":
		res.Refused = append(res.Refused, JobRefusal{j.ID, why})
		return true, nil
	case settled:
		if err := record(); err != nil {
			return true, err
		}
		res.Settled = append(res.Settled, j)
		return true, nil
	}
	return false, nil
}

// retryTx makes one locked job available again. A finished job's
// operation is reopened, but only after the provider, which may have
// forgotten the key by now (Stripe keeps keys 24 h), confirms nothing was
// charged under it; the retry then charges under a fresh key.
func (o *Operator) retryTx(ctx context.Context, tx pgx.Tx, j JobRef, asked answers, res *JobsResult) error {
	op, err := o.operationTx(ctx, tx, j)
	if err != nil {
		return err
	}
	if op != nil && op.Composite() {
		// An open one resumes where its steps stand, its worker asking
		// about any outcome we do not know before anything else.
		if op.Status.Terminal() {
			res.Refused = append(res.Refused, JobRefusal{j.ID, stepsEnded(op)})
			return nil
		}
		if _, err := o.cfg.Jobs.JobRetryTx(ctx, tx, j.ID); err != nil {
			return fmt.Errorf("retry job %d: %w", j.ID, err)
		}
		res.Changed = append(res.Changed, j)
		return nil
	}
	finished := j.State == rivertype.JobStateDiscarded || j.State == rivertype.JobStateCancelled
	if op != nil && finished && op.Status != StatusSucceeded && op.Status != StatusDeclined {
		now := o.cfg.Now()
		if op.Attempts > 0 || op.MayHaveCharged() {
			record := func() error {
				_, err := o.writeTx(ctx, tx, op, []Status{StatusQueued, StatusProcessing, StatusFailed, StatusCancelled})
				return err
			}
			if done, err := o.decided(op, asked, now, j, res, record); done {
				return err
			}
			op.CloseKey(now)
		}
		op.Reopen(now)
		if _, err := o.writeTx(ctx, tx, op, []Status{StatusQueued, StatusProcessing, StatusFailed, StatusCancelled}); err != nil {
			return err
		}
	}
	// River's JobRetry makes a job available now (scheduled_at moves up
	// only if it was in the future) and gives an exhausted job one more
	// attempt.
	if _, err := o.cfg.Jobs.JobRetryTx(ctx, tx, j.ID); err != nil {
		return fmt.Errorf("retry job %d: %w", j.ID, err)
	}
	res.Changed = append(res.Changed, j)
	return nil
}

// settle applies what the provider said about op's key. settled means op
// now holds the provider's answer (succeeded or declined); a non-empty why
// means nothing can be concluded and says so; neither means nothing was
// charged, and nothing can be under the key.
func (o *Operator) settle(op *Operation, asked answers, now time.Time) (settled bool, why string) {
	if o.cfg.Provider == nil {
		return false, "an earlier attempt may have charged, and no provider is configured to ask."
	}
	ans, ok := asked[op.ID]
	if !ok || ans.keyGen != op.KeyGen || !sameTime(ans.attemptedAt, op.AttemptedAt) {
		return false, "it changed while the provider was being asked. Try again."
	}
	if ans.err != nil {
		return false, "an earlier attempt may have charged and the provider could not be asked (" +
			ErrorMessage(wrapProvider(ans.err)) + "). Try again when it answers."
	}
	if op.ApplyLookup(ans.lookup, now) {
		return true, ""
	}
	last := op.CreatedAt
	if op.AttemptedAt != nil {
		last = *op.AttemptedAt
	}
	if !ans.lookup.NothingCharged(last, now) {
		return false, fmt.Sprintf("an earlier attempt may have charged and the provider cannot confirm it did not "+
			"(it says %q). Try again in a few minutes.", ans.lookup.Status)
	}
	if ans.lookup.KeyClosed {
		op.CloseKey(now)
	}
	op.OutcomeUnknownSince = nil
	return false, ""
}

func sameTime(a, b *time.Time) bool {
	return (a == nil) == (b == nil) && (a == nil || a.Equal(*b))
}

// wrapProvider turns a lookup failure into words safe for an operator.
func wrapProvider(err error) error {
	var pe *ProviderError
	if errors.As(err, &pe) {
		return &Error{Code: EUNAVAILABLE, Message: faultMessage(pe), Err: err}
	}
	return &Error{Code: EUNAVAILABLE, Message: "the provider could not be reached", Err: err}
}

// endTx records a terminal operation found by a lookup and takes its job
// off the queue.
func (o *Operator) endTx(ctx context.Context, tx pgx.Tx, j JobRef, op *Operation) error {
	if _, err := o.writeTx(ctx, tx, op, openStatuses); err != nil {
		return err
	}
	if !jobFinalized(j.State) {
		if _, err := o.cfg.Jobs.JobCancelTx(ctx, tx, j.ID); err != nil {
			return fmt.Errorf("cancel job %d: %w", j.ID, err)
		}
	}
	return nil
}

var openStatuses = []Status{StatusQueued, StatusProcessing}

// writeTx writes op if it is in one of from, with its notifications when
// it is now terminal.
func (o *Operator) writeTx(ctx context.Context, tx pgx.Tx, op *Operation, from []Status) (bool, error) {
	ok, err := o.cfg.Store.ReviseOperationTx(ctx, tx, op, from)
	if err != nil || !ok {
		return ok, err
	}
	if jobs := NotificationJobs(op, o.cfg.Channels); len(jobs) > 0 {
		if _, err := o.cfg.Jobs.InsertManyTx(ctx, tx, jobs); err != nil {
			return false, fmt.Errorf("enqueue notifications: %w", err)
		}
	}
	return true, nil
}

func (o *Operator) operationTx(ctx context.Context, tx pgx.Tx, j JobRef) (*Operation, error) {
	if j.OperationID == nil {
		return nil, nil
	}
	op, err := o.cfg.Store.GetOperationTx(ctx, tx, *j.OperationID)
	if ErrorCode(err) == ENOTFOUND {
		return nil, nil
	}
	return op, err
}

// Resolution is an operator's verdict on an operation whose outcome the
// provider could not settle.
type Resolution string

const (
	ResolveSucceeded Resolution = "succeeded"
	ResolveFailed    Resolution = "failed"
)

// ResolveRequest is an operator's verdict with why; ProviderRef is the
// provider's charge id when known (succeeded).
type ResolveRequest struct {
	OperationID uuid.UUID
	Outcome     Resolution
	Reason      string
	ProviderRef string
}

// MaxResolveReason bounds an operator's stated reason.
const MaxResolveReason = 500

// Resolve records an operator's verdict on an open operation: succeeded
// (they found the charge) or failed (they confirmed nothing was charged).
// The reason is required and audited. A job still running is refused: its
// attempt will say more than a guess.
func (o *Operator) Resolve(ctx context.Context, actor Actor, req ResolveRequest) (*Operation, error) {
	if err := o.needJobs(); err != nil {
		return nil, err
	}
	req.Reason = strings.TrimSpace(req.Reason)
	switch {
	case req.Outcome != ResolveSucceeded && req.Outcome != ResolveFailed:
		return nil, FieldErrorf("outcome", "resolve as succeeded or failed, not %q", req.Outcome)
	case req.Reason == "":
		return nil, FieldErrorf("reason", "say why: what you checked at the provider, so the audit log can tell")
	}
	req.Reason = ClipText(req.Reason, MaxResolveReason)
	req.ProviderRef = ClipText(strings.TrimSpace(req.ProviderRef), 255)
	var op *Operation
	err := o.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		op, err = o.cfg.Store.GetOperationTx(ctx, tx, req.OperationID)
		if ErrorCode(err) == ENOTFOUND {
			return Errorf(ENOTFOUND, "There is no such thing (any more): no operation %s.", req.OperationID)
		}
		if err != nil {
			return err
		}
		if op.Status.Terminal() {
			return Errorf(ECONFLICT, "operation %s is already %s", op.ID, op.Status)
		}
		if op.Composite() {
			return Errorf(ECONFLICT, "it is an %s: each of its steps is settled by its own dependency's lookup, which its "+
				"worker makes before anything else; retry its job to ask again, or cancel it to undo what it did. "+
				"Nothing was changed.", op.Kind)
		}
		var job *JobRef
		if op.JobID != 0 {
			jobs, err := o.cfg.Store.LockJobsTx(ctx, tx, []int64{op.JobID}, rivertype.JobStates())
			if err != nil {
				return err
			}
			if len(jobs) == 1 {
				job = &jobs[0]
			}
		}
		if job != nil && job.State == rivertype.JobStateRunning {
			return Errorf(ECONFLICT, "its job is running right now; wait for the attempt to end, then decide")
		}
		before := map[string]any{"status": op.Status, "reason": op.Reason, "outcome_unknown_since": op.OutcomeUnknownSince}
		now := o.cfg.Now()
		op.Mode = ModeAsync
		if req.Outcome == ResolveSucceeded {
			op.ApplyCharge(ChargeResult{ProviderRef: req.ProviderRef}, now)
		} else {
			op.OutcomeUnknownSince = nil
			op.Fail("resolved_failed", "an operator confirmed nothing was charged: "+req.Reason, now)
		}
		if ok, err := o.writeTx(ctx, tx, op, openStatuses); err != nil || !ok {
			if err == nil {
				err = Errorf(ECONFLICT, "operation %s changed meanwhile; reload and look again", op.ID)
			}
			return err
		}
		if job != nil && !jobFinalized(job.State) {
			if _, err := o.cfg.Jobs.JobCancelTx(ctx, tx, job.ID); err != nil {
				return fmt.Errorf("cancel job %d: %w", job.ID, err)
			}
		}
		after := map[string]any{"status": op.Status}
		if req.ProviderRef != "" {
			after["provider_ref"] = req.ProviderRef
		}
		return o.cfg.Store.InsertAuditTx(ctx, tx, o.audit(actor, "operation.resolve", "operation "+op.ID.String(),
			before, after, req.Reason, now))
	})
	return op, err
}

// jobFinalized reports whether River is done with a job in state s.
func jobFinalized(s rivertype.JobState) bool {
	return s == rivertype.JobStateDiscarded || s == rivertype.JobStateCancelled || s == rivertype.JobStateCompleted
}

func (r JobRequest) after(res JobsResult) any {
	out := map[string]any{}
	switch r.Action {
	case ActionReprioritize:
		out["priority"] = r.Priority
	case ActionCancel:
		out["state"] = rivertype.JobStateCancelled
	default:
		out["state"] = rivertype.JobStateAvailable
	}
	if len(res.Settled) > 0 {
		out["settled_by_lookup"] = refIDs(res.Settled)
	}
	if len(res.Compensating) > 0 {
		out["compensating"] = refIDs(res.Compensating)
	}
	return out
}

func refIDs(js []JobRef) []int64 {
	ids := make([]int64, len(js))
	for i, j := range js {
		ids[i] = j.ID
	}
	return ids
}

func jobsTarget(ids []int64) string {
	if len(ids) == 1 {
		return "job " + strconv.FormatInt(ids[0], 10)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d jobs: ", len(ids))
	for i, id := range ids {
		if i == 10 {
			fmt.Fprintf(&b, " … (all in before)")
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.FormatInt(id, 10))
	}
	return b.String()
}
