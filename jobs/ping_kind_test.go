package jobs_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/sim"
	"github.com/spillway/spillway/cmd/spillway/service"
	"github.com/spillway/spillway/cmd/spillway/service/servicetest"
	"github.com/spillway/spillway/jobs"
)

// ping is a third operation kind, declared in this file and nowhere else:
// one step that asks the inventory's health endpoint whether it is up. It
// shows what adding a kind takes: its declaration and its worker's
// registration, with no change to the runner, the engine or the worker.

const kindPing = "ping"

type pingArgs struct {
	OperationID uuid.UUID `json:"operation_id"`
}

func (pingArgs) Kind() string                 { return kindPing }
func (a pingArgs) Operation() uuid.UUID       { return a.OperationID }
func (pingArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: "pings"} }

type pingRequest struct{ Note string }

func (r pingRequest) Fingerprint() []byte {
	sum := sha256.Sum256([]byte("ping\x00" + r.Note))
	return sum[:]
}
func (pingRequest) Callback() string { return "" }

// healthStep calls GET {base}/health. A health check has no effect, so a
// lost answer is settled by asking again: its lookup says "call again".
type healthStep struct{ base string }

func (h healthStep) Call(ctx context.Context, _ *app.Operation, _ *app.Step, _ string) (app.StepResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.base+"/health", nil)
	if err != nil {
		return app.StepResult{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return app.StepResult{}, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return app.StepResult{}, &app.ProviderError{Kind: app.FaultUnavailable, StatusCode: resp.StatusCode,
			Err: fmt.Errorf("health answered %d", resp.StatusCode)}
	}
	return app.StepResult{Status: app.StepSucceeded}, nil
}

func (healthStep) LookUp(context.Context, *app.Operation, *app.Step, string, time.Time, time.Time) (app.StepResult, error) {
	return app.StepResult{Status: app.StepPending}, nil
}

func (healthStep) Compensate(context.Context, *app.Operation, *app.Step) error { return nil }

func pingKind(simURL string) []service.Kind {
	k := &app.StepKind{
		Name: kindPing, Scope: "pings", Queue: "pings",
		NewArgs: func(op *app.Operation) river.JobArgs { return pingArgs{OperationID: op.ID} },
		Plan: func(context.Context, pgx.Tx, app.StepRequest) (app.Plan, error) {
			return app.Plan{Steps: []app.Step{{Name: "health", Dependency: app.DepInventory, Status: app.StepPending}},
				Payment: app.PaymentRequest{Currency: "usd"}}, nil
		},
		Handlers: map[string]app.StepHandler{"health": healthStep{base: simURL + sim.InventoryPath}},
	}
	return []service.Kind{{Kind: k, Worker: jobs.StepWorkerFor[pingArgs]()}}
}

// A kind declared in a test file runs synchronously, is captured while its
// dependency is down, and is carried to its end by the generic worker once
// the dependency is back, with replays answering from the first answer.
func TestAKindDeclaredInATestFileNeedsNoRunnerChange(t *testing.T) {
	t.Parallel()
	p := servicetest.New(t, servicetest.Options{Workers: 2, Kinds: pingKind})
	ctx := context.Background()
	runner := p.Service.Runner()

	out, err := runner.Submit(ctx, kindPing, "ping-1", pingRequest{Note: "up"})
	if err != nil {
		t.Fatal(err)
	}
	if d := out.Document; d.Kind != kindPing || d.Status != app.StatusSucceeded || d.Mode != app.ModeSync ||
		len(d.Steps) != 1 || d.Steps[0].Status != app.StepSucceeded {
		t.Fatalf("sync ping: %+v", d)
	}
	again, err := runner.Submit(ctx, kindPing, "ping-1", pingRequest{Note: "up"})
	if err != nil || !again.Replayed || string(again.Body) != string(out.Body) {
		t.Fatalf("replay: %+v %v", again, err)
	}
	if _, err := runner.Submit(ctx, kindPing, "ping-1", pingRequest{Note: "other"}); app.ErrorCode(err) != app.EKEYREUSED {
		t.Fatalf("a reused key with another body: %v", err)
	}

	p.Sim.SetInventoryChaos(sim.Chaos{Down: true})
	out, err = runner.Submit(ctx, kindPing, "ping-2", pingRequest{Note: "down"})
	if err != nil {
		t.Fatal(err)
	}
	if d := out.Document; d.Status != app.StatusQueued || d.Mode != app.ModeAsync || d.Reason != app.ReasonProviderError {
		t.Fatalf("captured ping: %+v", d)
	}
	if n := p.Count(`SELECT count(*) FROM river_job WHERE kind = 'ping' AND queue = 'pings'`); n != 1 {
		t.Fatalf("%d ping jobs, want the one the capture inserted", n)
	}
	p.Sim.SetInventoryChaos(sim.Chaos{})
	op := ended(t, p, uuid.MustParse(out.Document.ID))
	if op.Status != app.StatusSucceeded || op.Mode != app.ModeAsync || op.Steps[0].Mode != app.ModeAsync {
		t.Fatalf("ping ended %s/%s, step %+v", op.Status, op.Mode, op.Steps[0])
	}
}
