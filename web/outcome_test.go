package web_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/apptest"
	"github.com/spillway/spillway/app/sim"
	"github.com/spillway/spillway/db"
)

// everStatus reports whether the operation was ever recorded in status.
func (h *harness) everStatus(id string, status app.Status) bool {
	h.t.Helper()
	return h.count(`SELECT count(*) FROM operation_events WHERE operation_id = $1 AND status = $2`, id, status) > 0
}

func (h *harness) operator() *app.Operator {
	h.t.Helper()
	op, err := app.NewOperator(app.OperatorConfig{Store: db.NewStore(h.pool), Jobs: h.river, Provider: h.provider})
	if err != nil {
		h.t.Fatal(err)
	}
	return op
}

func (h *harness) jobOf(id string) int64 {
	h.t.Helper()
	return int64(h.count(`SELECT job_id FROM operations WHERE id = $1`, id))
}

// The last attempt times out after the provider charged: the operation is
// never failed, and its job never given up; once the provider answers, the
// charge's replay under the same key records succeeded.
func TestLastAttemptTimesOutAfterChargingEndsSucceeded(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{workers: 1, maxAttempts: 2, reconcileEvery: time.Second,
		syncTimeoutOnHold: true, jobTimeoutOnHold: true})
	// Every answer is held and every caller gives up once its charge is
	// held: the charge is made, as by a real provider that took the money
	// but answered late.
	key := providerKey("late-1")
	h.sim.Hold(key)
	r := h.pay("late-1", payment)
	if r.status != http.StatusAccepted || r.json(t)["reason"] != "timeout" {
		t.Fatalf("capture: %d %s", r.status, r.body)
	}
	id := r.json(t)["id"].(string)
	job := h.jobOf(id)
	// Both worker attempts time out too; the job is not given up, since
	// the outcome is unknown: it keeps its place, charging again under the
	// same key now and then, which the provider answers from its first
	// charge once it answers at all.
	apptest.WaitFor(t, "both worker attempts to be spent", func() bool {
		return h.count(`SELECT count(*) FROM river_job WHERE id = $1 AND attempt >= 2`, job) == 1 && h.sim.Calls(id) >= 3
	})
	doc := h.operation(id)
	if doc["status"] != "processing" || doc["reason"] != "outcome_unknown" {
		t.Fatalf("after the last attempt timed out: %v; want processing/outcome_unknown", doc)
	}
	if n := h.count(`SELECT count(*) FROM river_job WHERE id = $1 AND state IN ('discarded', 'cancelled', 'completed')`, job); n != 0 {
		t.Fatal("the job of an operation whose outcome is unknown was given up")
	}
	if h.sim.Effects(id) != 1 {
		t.Fatalf("calls %d, effects %d: want one charge however many calls", h.sim.Calls(id), h.sim.Effects(id))
	}
	// The provider answers again; the next call's replay settles it.
	h.sim.Release(key)
	done := h.waitStatus(id, app.StatusSucceeded)
	if h.everStatus(id, app.StatusFailed) {
		t.Fatal("the operation was reported failed while it may have been charged")
	}
	if h.sim.Effects(id) != 1 {
		t.Fatalf("effects %d, want 1", h.sim.Effects(id))
	}
	if done["completed_at"] == nil {
		t.Fatalf("succeeded without completed_at: %v", done)
	}
}

// An operator's cancel of a job whose call is under way is refused: the
// call may be charging right now. The payment then ends succeeded.
func TestCancelOfARunningJobIsRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{workers: 1, syncTimeoutOnHold: true})
	// The sync call times out once its charge is held; the worker's call
	// is held too, and stays out until the operator has acted.
	key := providerKey("running-1")
	h.sim.Hold(key)
	r := h.pay("running-1", payment)
	id := r.json(t)["id"].(string)
	job := h.jobOf(id)
	apptest.WaitFor(t, "the worker's call to be out", func() bool {
		return h.sim.Held(id) == 2 && h.count(`SELECT count(*) FROM river_job WHERE id = $1 AND state = 'running'`, job) == 1
	})
	res, err := h.operator().ApplyJobs(context.Background(), app.Actor{Email: "ops@example.com"},
		app.JobRequest{Action: app.ActionCancel}, []int64{job})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changed) != 0 || len(res.Refused) != 1 || !strings.Contains(res.Refused[0].Reason, "running") {
		t.Fatalf("cancel of a running job: %+v", res)
	}
	h.sim.Release(key)
	h.waitStatus(id, app.StatusSucceeded)
	if h.everStatus(id, app.StatusCancelled) || h.sim.Effects(id) != 1 {
		t.Fatalf("cancelled %v, effects %d", h.everStatus(id, app.StatusCancelled), h.sim.Effects(id))
	}
}

// A waiting job whose earlier attempt timed out after charging: cancel asks
// the provider, finds the charge, and records the payment as succeeded
// instead of cancelling it.
func TestCancelAfterATimedOutAttemptThatChargedRecordsTheCharge(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{syncTimeoutOnHold: true}) // no workers: the job waits
	key := providerKey("charged-1")
	h.sim.Hold(key)
	r := h.pay("charged-1", payment)
	id := r.json(t)["id"].(string)
	if r.json(t)["reason"] != "timeout" || h.sim.Effects(id) != 1 {
		t.Fatalf("the timed-out call did not charge: %s, effects %d", r.body, h.sim.Effects(id))
	}
	h.sim.Release(key)
	res, err := h.operator().ApplyJobs(context.Background(), app.Actor{Email: "ops@example.com"},
		app.JobRequest{Action: app.ActionCancel}, []int64{h.jobOf(id)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Settled) != 1 || len(res.Changed) != 0 {
		t.Fatalf("cancel after a charge: %+v", res)
	}
	doc := h.operation(id)
	if doc["status"] != "succeeded" || h.everStatus(id, app.StatusCancelled) || h.sim.Effects(id) != 1 {
		t.Fatalf("after cancel: %v (effects %d)", doc, h.sim.Effects(id))
	}
}

// A waiting job whose earlier attempt timed out without charging: the
// lookup finds nothing and closes the key, so the cancel goes ahead and
// nothing can charge under the old key afterwards.
func TestCancelAfterATimedOutAttemptThatDidNotChargeCancels(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{syncTimeoutOnHold: true})
	// Down, and its answer held: the call times out and nothing is charged.
	key := providerKey("uncharged-1")
	h.sim.SetChaos(sim.Chaos{Down: true})
	h.sim.Hold(key)
	r := h.pay("uncharged-1", payment)
	id := r.json(t)["id"].(string)
	if r.json(t)["reason"] != "timeout" || h.sim.Calls(id) != 1 {
		t.Fatalf("capture: %s, calls %d; want a timed-out call", r.body, h.sim.Calls(id))
	}
	h.sim.SetChaos(sim.Chaos{})
	h.sim.Release(key)
	res, err := h.operator().ApplyJobs(context.Background(), app.Actor{Email: "ops@example.com"},
		app.JobRequest{Action: app.ActionCancel}, []int64{h.jobOf(id)})
	if err != nil || len(res.Changed) != 1 {
		t.Fatalf("cancel: %+v %v", res, err)
	}
	if doc := h.operation(id); doc["status"] != "cancelled" {
		t.Fatalf("after cancel: %v", doc)
	}
	// A request still on the wire under the old key cannot charge now.
	charge, err := h.provider.Charge(context.Background(), app.Charge{IdempotencyKey: id, Amount: 1999, Currency: "usd", Reference: id})
	if err == nil || h.sim.Effects(id) != 0 {
		t.Fatalf("a charge under the closed key: %+v %v, effects %d", charge, err, h.sim.Effects(id))
	}
}

// A job whose worker died mid-call, so River's rescuer made it retryable
// with nothing recorded on the operation: the attempt may have charged
// though the operation does not say so. A cancel asks the provider first,
// finds the charge, and records the payment as succeeded.
func TestCancelAfterAnUnrecordedAttemptThatChargedRecordsTheCharge(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{}) // no workers: the job waits
	h.sim.SetChaos(sim.Chaos{Down: true})
	r := h.pay("died-1", payment)
	id := r.json(t)["id"].(string)
	if r.status != http.StatusAccepted {
		t.Fatalf("capture: %d %s", r.status, r.body)
	}
	h.sim.SetChaos(sim.Chaos{})
	// The dying worker's call, which charged, and River's rescue of its
	// job: retryable, attempted after the operation was last written.
	if _, err := h.provider.Charge(context.Background(), app.Charge{IdempotencyKey: id, Amount: 1999, Currency: "usd", Reference: id}); err != nil {
		t.Fatal(err)
	}
	job := h.jobOf(id)
	if _, err := h.pool.Exec(context.Background(), `UPDATE river_job SET state = 'retryable', attempt = attempt + 1,
		attempted_at = now() + interval '1 second', scheduled_at = now() + interval '1 hour' WHERE id = $1`, job); err != nil {
		t.Fatal(err)
	}
	if doc := h.operation(id); doc["reason"] == "outcome_unknown" {
		t.Fatalf("the operation already says its outcome is unknown: %v; the test needs it not to", doc)
	}
	res, err := h.operator().ApplyJobs(context.Background(), app.Actor{Email: "ops@example.com"},
		app.JobRequest{Action: app.ActionCancel}, []int64{job})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Settled) != 1 || len(res.Changed) != 0 {
		t.Fatalf("cancel after an unrecorded attempt that charged: %+v", res)
	}
	if doc := h.operation(id); doc["status"] != "succeeded" || h.everStatus(id, app.StatusCancelled) || h.sim.Effects(id) != 1 {
		t.Fatalf("after cancel: %v (effects %d)", doc, h.sim.Effects(id))
	}
}
