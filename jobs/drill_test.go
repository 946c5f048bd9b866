package jobs_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/apptest"
	"github.com/spillway/spillway/cmd/spillway/service/servicetest"
	"github.com/spillway/spillway/db"
)

// The drills' tests run the whole product with a DRILL_DURATION of one
// second. A drill's deadline (DRILL_DURATION + 60 s) is reached by moving
// the drills' clock, never by waiting for it; every wait is on the
// database's state.

const drillPayment = `{"amount": 1999, "currency": "usd"}`

// offsetClock is the real clock moved forward by what the test adds.
type offsetClock struct{ d atomic.Int64 }

func (c *offsetClock) now() time.Time           { return time.Now().Add(time.Duration(c.d.Load())) }
func (c *offsetClock) advance(by time.Duration) { c.d.Add(int64(by)) }

func drillProduct(t *testing.T, o servicetest.Options) *servicetest.Product {
	t.Helper()
	o.Drills.Duration = time.Second
	o.Drills.Canaries = 3
	return servicetest.New(t, o)
}

// startDrill starts a drill by hand, as an operator of the admin UI does.
func startDrill(t *testing.T, p *servicetest.Product, dep string, mode app.DrillMode) app.Drill {
	t.Helper()
	op, err := app.NewOperator(app.OperatorConfig{Store: db.NewStore(p.Pool), Drills: p.Service.Drills()})
	if err != nil {
		t.Fatal(err)
	}
	d, err := op.StartDrill(context.Background(), app.Actor{Email: "ops@example.com"}, dep, mode)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// drillIn waits for drill id to reach one of the statuses.
func drillIn(t *testing.T, p *servicetest.Product, id int64, want ...app.DrillStatus) app.Drill {
	t.Helper()
	var d app.Drill
	apptest.WaitFor(t, fmt.Sprintf("drill %d to be %v", id, want), func() bool {
		var err error
		if d, err = db.GetDrill(context.Background(), p.Pool, id); err != nil {
			t.Fatal(err)
		}
		for _, s := range want {
			if d.Status == s {
				return true
			}
		}
		return false
	})
	return d
}

// drillRecord is a drill's record in one line, for the test log.
func drillRecord(d app.Drill) string {
	drain := "-"
	if d.DrainTime != nil {
		drain = d.DrainTime.String()
	}
	return fmt.Sprintf("id=%d dependency=%s mode=%s trigger=%s actor=%q status=%s started=%s ended=%s finished=%s "+
		"duration=%s canaries=%d sent=%d completed=%d drain=%s reason=%q",
		d.ID, d.Dependency, d.Mode, d.Trigger, d.Actor, d.Status, d.StartedAt.Format(time.RFC3339Nano),
		d.EndedAt.Format(time.RFC3339Nano), d.FinishedAt.Format(time.RFC3339Nano), d.Duration,
		d.Canaries, d.Sent, d.Completed, drain, d.Reason)
}

// checkPassed checks what a passed drill's record says.
func checkPassed(t *testing.T, d app.Drill) {
	t.Helper()
	t.Logf("drill record: %s", drillRecord(d))
	if d.Status != app.DrillPassed || d.Sent != 3 || d.Completed != 3 || d.DrainTime == nil ||
		!strings.HasPrefix(d.Reason, "all 3 canaries completed through the async path") {
		t.Fatalf("drill did not pass as it should: %s", drillRecord(d))
	}
	if d.EndedAt.Before(d.StartedAt.Add(d.Duration)) || d.FinishedAt.Before(d.EndedAt) {
		t.Errorf("drill ended before its duration was over: %s", drillRecord(d))
	}
}

// A shadow drill with a healthy async path passes: its canaries are
// captured without a sync try, run once the drill ends, and complete;
// customers are untouched (the breaker stays closed, payments stay sync).
func TestShadowDrillPassesThroughTheAsyncPath(t *testing.T) {
	t.Parallel()
	p := drillProduct(t, servicetest.Options{Workers: 2})
	d := startDrill(t, p, app.DepPayment, app.DrillShadow)
	if r := p.Pay("shadow-customer", drillPayment); r.Status != 201 {
		t.Fatalf("a customer's payment during a shadow drill: %d %s", r.Status, r.Body)
	}
	if b, _ := p.Breakers.Get(app.DepPayment); b.State != app.BreakerClosed {
		t.Fatalf("a shadow drill touched the breaker: %s", b.State)
	}
	d = drillIn(t, p, d.ID, app.DrillPassed, app.DrillFailed)
	checkPassed(t, d)
	if d.Trigger != app.DrillManual || d.Actor != "ops@example.com" || d.Mode != app.DrillShadow {
		t.Errorf("record: %s", drillRecord(d))
	}
	if n := p.Count(`SELECT count(*) FROM operations WHERE kind = 'canary' AND mode = 'async' AND reason = 'drill'
		AND status = 'succeeded' AND amount = 0`); n != 3 {
		t.Errorf("%d canaries succeeded async, want 3", n)
	}
	if n := p.Sim.Effects(servicetest.ProviderKey("shadow-customer")); n != 1 {
		t.Errorf("the customer's payment took effect %d times", n)
	}
	if n := p.Count(`SELECT count(*) FROM admin_audit_log WHERE action = 'drill.start' AND actor_email = 'ops@example.com'`); n != 1 {
		t.Errorf("%d audit entries for the drill's start", n)
	}
}

// A live drill opens the breaker on every instance for DRILL_DURATION, so
// a customer's payment is captured too; it returns the breaker to auto at
// its end, and passes once the canaries and the backlog drain.
func TestLiveDrillOpensTheBreakerAndPasses(t *testing.T) {
	t.Parallel()
	p := drillProduct(t, servicetest.Options{Workers: 2})
	d := startDrill(t, p, app.DepInventory, app.DrillLive)
	apptest.WaitFor(t, "the drill to force the breaker open", func() bool {
		b, _ := p.Breakers.Get(app.DepInventory)
		return b.State == app.BreakerForcedOpen
	})
	d = drillIn(t, p, d.ID, app.DrillPassed, app.DrillFailed)
	checkPassed(t, d)
	if b, _ := p.Breakers.Get(app.DepInventory); b.State != app.BreakerClosed {
		t.Errorf("after a live drill the breaker is %s, want closed (auto)", b.State)
	}
	if n := p.Count(`SELECT count(*) FROM operations WHERE kind = 'canary' AND mode = 'async' AND reason = 'breaker_open'
		AND status = 'succeeded'`); n != 3 {
		t.Errorf("%d canaries were captured by the open breaker and succeeded, want 3", n)
	}
	if n := p.Count(`SELECT count(*) FROM breaker_transitions WHERE name = 'inventory' AND actor = $1`,
		fmt.Sprintf("drill #%d", d.ID)); n != 2 {
		t.Errorf("%d breaker transitions by the drill, want 2 (open, auto)", n)
	}
}

// A live drill of payments really diverts customers: a payment during it
// answers 202 breaker_open and completes after it.
func TestLiveDrillCapturesCustomersUntilItEnds(t *testing.T) {
	t.Parallel()
	p := drillProduct(t, servicetest.Options{Workers: 2})
	d := startDrill(t, p, app.DepPayment, app.DrillLive)
	apptest.WaitFor(t, "the drill to force the breaker open", func() bool {
		b, _ := p.Breakers.Get(app.DepPayment)
		return b.State == app.BreakerForcedOpen
	})
	r := p.Pay("live-customer", drillPayment)
	if doc := r.JSON(t); r.Status != 202 || doc["reason"] != "breaker_open" {
		t.Fatalf("a customer's payment during a live drill: %d %s", r.Status, r.Body)
	}
	checkPassed(t, drillIn(t, p, d.ID, app.DrillPassed, app.DrillFailed))
	p.WaitStatus(r.JSON(t)["id"].(string), app.StatusSucceeded)
}

// With the canaries' workers stopped (their queue paused), a drill of
// either mode fails once its deadline passes, saying which canaries did
// not complete and what to look at; a live drill still returns the
// breaker to auto.
func TestDrillFailsWithAReasonWhenWorkersAreStopped(t *testing.T) {
	t.Parallel()
	for _, mode := range []app.DrillMode{app.DrillShadow, app.DrillLive} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			clock := &offsetClock{}
			p := drillProduct(t, servicetest.Options{Workers: 2, DrillNow: clock.now})
			ctx := context.Background()
			if err := p.River.QueuePause(ctx, app.QueueCanary, nil); err != nil {
				t.Fatal(err)
			}
			d := startDrill(t, p, app.DepPayment, mode)
			d = drillIn(t, p, d.ID, app.DrillDraining)
			// Wait until the canaries are due and nothing works them, so
			// the reason names that rather than a job still scheduled.
			apptest.WaitFor(t, "the canaries to wait for a worker", func() bool {
				return p.Count(`SELECT count(*) FROM river_job WHERE kind = 'canary' AND state = 'available'`) == 3
			})
			if got := drillIn(t, p, d.ID, app.DrillDraining); got.Completed != 0 {
				t.Fatalf("canaries completed with their queue paused: %s", drillRecord(got))
			}
			clock.advance(d.Duration + app.DrillGrace)
			d = drillIn(t, p, d.ID, app.DrillPassed, app.DrillFailed)
			t.Logf("drill record: %s", drillRecord(d))
			want := "3 of 3 canaries did not complete within DRILL_DURATION (1s) + 1m0s: 3 waiting for a worker (job available)"
			if d.Status != app.DrillFailed || d.Sent != 3 || d.Completed != 0 || d.DrainTime != nil || !strings.HasPrefix(d.Reason, want) {
				t.Fatalf("drill with stopped workers: %s\nwant the reason to start %q", drillRecord(d), want)
			}
			if b, _ := p.Breakers.Get(app.DepPayment); b.State != app.BreakerClosed {
				t.Errorf("after a failed %s drill the breaker is %s, want closed (auto)", mode, b.State)
			}
		})
	}
}

// A second drill of a dependency while one is open is refused, so two
// operators pressing at once start one drill.
func TestOneDrillPerDependencyAtATime(t *testing.T) {
	t.Parallel()
	p := drillProduct(t, servicetest.Options{})
	startDrill(t, p, app.DepPayment, app.DrillShadow)
	op, err := app.NewOperator(app.OperatorConfig{Store: db.NewStore(p.Pool), Drills: p.Service.Drills()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = op.StartDrill(context.Background(), app.Actor{Email: "b@example.com"}, app.DepPayment, app.DrillShadow)
	if app.ErrorCode(err) != app.ECONFLICT {
		t.Fatalf("a second drill of payment: %v, want a conflict", err)
	}
	if _, err := op.StartDrill(context.Background(), app.Actor{Email: "b@example.com"}, "crm", app.DrillShadow); app.ErrorCode(err) != app.EINVALID {
		t.Fatalf("a drill of an unknown dependency: %v, want invalid", err)
	}
}

// DRILL_SCHEDULE runs each slot's drills once across instances: two
// instances run the schedule (River's leader inserts the periodic job),
// one drill per dependency is started and passes, and schedulers asked
// again for the same slot, at once, as a second leader after a failover
// would be, start nothing more.
func TestDrillScheduleRunsOnceAcrossTwoInstances(t *testing.T) {
	t.Parallel()
	p := drillProduct(t, servicetest.Options{Workers: 2, Drills: app.DrillSettings{Schedule: time.Hour}})
	p.StartWorkers(2)
	deps := p.Service.Drills().Dependencies()
	if len(deps) != 2 {
		t.Fatalf("drillable dependencies %v, want payment and inventory", deps)
	}
	apptest.WaitFor(t, "the scheduled drills to pass", func() bool {
		return p.Count(`SELECT count(*) FROM drills WHERE trigger = 'schedule' AND status = 'passed'`) == len(deps)
	})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if started, err := p.Service.Drills().Schedule(context.Background()); err != nil || len(started) != 0 {
				t.Errorf("the same slot scheduled again started %v (%v)", started, err)
			}
		})
	}
	wg.Wait()
	if n := p.Count(`SELECT count(*) FROM drills`); n != len(deps) {
		t.Errorf("%d drills, want one per dependency", n)
	}
	if n := p.Count(`SELECT count(DISTINCT slot) FROM drills`); n != 1 {
		t.Errorf("%d slots, want 1", n)
	}
}

// A drill left open long past its deadline, its job gone (River discarded
// it), does not block the dependency's drills for ever: the next start
// fails it, saying so.
func TestADrillWhoseJobIsGoneIsFailedByTheNextStart(t *testing.T) {
	t.Parallel()
	p := drillProduct(t, servicetest.Options{})
	var stale int64
	if err := p.Pool.QueryRow(context.Background(), `
		INSERT INTO drills (dependency, mode, trigger, status, duration_ms, started_at, canaries)
		VALUES ('payment', 'shadow', 'manual', 'running', 1000, now() - interval '2 hours', 3) RETURNING id`).Scan(&stale); err != nil {
		t.Fatal(err)
	}
	d := startDrill(t, p, app.DepPayment, app.DrillShadow)
	old, err := db.GetDrill(context.Background(), p.Pool, stale)
	if err != nil {
		t.Fatal(err)
	}
	if old.Status != app.DrillFailed || !strings.Contains(old.Reason, "job stopped before its verdict") || d.Status != app.DrillRunning {
		t.Fatalf("stale drill %s; new one %s", drillRecord(old), drillRecord(d))
	}
}
