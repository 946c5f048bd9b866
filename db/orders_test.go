package db_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/db/dbtest"
)

// An order's lines and steps are stored with the operation and read back
// as written; a revise writes the steps' progress, never the lines.
func TestOrderLinesAndStepsRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	lines := []app.PricedLine{{SKU: "sku-tea", Quantity: 2, UnitPrice: 450}, {SKU: "sku-mug", Quantity: 1, UnitPrice: 1200}}
	op := &app.Operation{
		ID: app.OperationID("orders", "rt-1"), Kind: app.KindOrder, Status: app.StatusProcessing, Mode: app.ModeSync,
		Priority: 3, Payment: app.PaymentRequest{Amount: 2100, Currency: "usd"}, CreatedAt: now, UpdatedAt: now,
		Lines: lines, Steps: app.NewOrderSteps([]app.OrderLine{{SKU: "sku-tea", Quantity: 2}, {SKU: "sku-mug", Quantity: 1}}),
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := db.InsertOperationTx(ctx, tx, op); err != nil || !ok {
		t.Fatalf("insert: %v %v", ok, err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetOperation(ctx, pool, op.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Lines, op.Lines) || !reflect.DeepEqual(got.Steps, op.Steps) {
		t.Fatalf("read back %+v %+v, wrote %+v %+v", got.Lines, got.Steps, op.Lines, op.Steps)
	}

	// The first reservation succeeded, the second's outcome is unknown.
	got.Steps[0].Status, got.Steps[0].Mode, got.Steps[0].Attempts, got.Steps[0].Ref =
		app.StepSucceeded, app.ModeSync, 1, "res_1"
	got.Steps[1].Status, got.Steps[1].OutcomeUnknown, got.Steps[1].Attempts = app.StepProcessing, true, 1
	got.Lines = nil // a revise never rewrites the lines
	if ok, err := db.UpdateOpenOperation(ctx, pool, got); err != nil || !ok {
		t.Fatalf("revise: %v %v", ok, err)
	}
	again, err := db.GetOperation(ctx, pool, op.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again.Lines, lines) || !reflect.DeepEqual(again.Steps, got.Steps) {
		t.Fatalf("after the revise: %+v %+v", again.Lines, again.Steps)
	}
	if doc := again.Document(); len(doc.Steps) != 3 || doc.Steps[1].Status != app.StepProcessing || len(doc.Lines) != 2 {
		t.Fatalf("document %+v", doc)
	}

	// An order must carry its lines and steps; a payment carries none.
	bad := *op
	bad.ID, bad.Lines, bad.Steps = app.OperationID("orders", "rt-2"), nil, nil
	if _, err := db.InsertOperationTx(ctx, mustBegin(t, pool), &bad); err == nil {
		t.Fatal("an order without steps was stored")
	}
	pay := *op
	pay.ID, pay.Kind, pay.Lines, pay.Steps = app.OperationID("payments", "rt-3"), app.KindPayment, nil, nil
	tx = mustBegin(t, pool)
	if _, err := db.InsertOperationTx(ctx, tx, &pay); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if p, err := db.GetOperation(ctx, pool, pay.ID); err != nil || p.Steps != nil || p.Lines != nil || p.Document().Steps != nil {
		t.Fatalf("a payment read back with order fields: %+v %v", p, err)
	}
}

func mustBegin(t *testing.T, pool *pgxpool.Pool) pgx.Tx {
	t.Helper()
	tx, err := pool.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	return tx
}
