package jobs_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/cmd/spillway/service/servicetest"
)

// A captured payment whose call timed out after charging is worked only
// after the provider's key retention (PAYMENT_KEY_RETENTION, 24 h by
// default) has passed: the provider may have forgotten the key, so a
// charge under it could be a second one. The worker asks first, finds the
// charge, and records it without charging again.
func TestJobPastKeyRetentionLooksUpBeforeCharging(t *testing.T) {
	t.Parallel()
	p := servicetest.New(t, servicetest.Options{SyncTimeoutOnHold: true}) // no workers yet: the job waits
	key := servicetest.ProviderKey("retention-1")
	p.Sim.Hold(key)
	r := p.Pay("retention-1", `{"amount": 1999, "currency": "usd"}`)
	if r.Status != http.StatusAccepted {
		t.Fatalf("capture: %d %s", r.Status, r.Body)
	}
	id := r.JSON(t)["id"].(string)
	if r.JSON(t)["reason"] != "timeout" || p.Sim.Effects(id) != 1 {
		t.Fatalf("the timed-out call did not charge: %s, effects %d", r.Body, p.Sim.Effects(id))
	}
	p.Sim.Release(key)
	// The outcome has been unknown for longer than the provider keeps keys.
	if _, err := p.Pool.Exec(context.Background(), `UPDATE operations SET outcome_unknown_since = now() - interval '25 hours',
		attempted_at = now() - interval '25 hours' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	p.StartWorkers(1)
	doc := p.WaitStatus(id, app.StatusSucceeded)
	if calls, lookups, effects := p.Sim.Calls(id), p.Sim.Lookups(id), p.Sim.Effects(id); calls != 1 || lookups < 1 || effects != 1 {
		t.Fatalf("after the retention: %d charge calls (want only the first), %d lookups (want at least 1), %d effects (want 1); %v",
			calls, lookups, effects, doc)
	}
}
