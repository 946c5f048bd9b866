package app_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spillway/spillway/app"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./app -run %s -update to create it)", err, t.Name())
	}
	if string(got) != string(want) {
		t.Fatalf("%s differs from its golden file:\n got: %s\nwant: %s", name, got, want)
	}
}

// The operation document of an order is a public contract (DESIGN.md,
// Orders): kind order, the total as amount, the priced lines and the
// steps with name, dependency, status, mode and attempts, and nothing of
// what only the engine needs (references, unknown-outcome flags).
func TestOrderDocumentGolden(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	steps := app.NewOrderSteps([]app.OrderLine{{SKU: "sku-tea", Quantity: 2}, {SKU: "sku-mug", Quantity: 1}})
	steps[0].Status, steps[0].Mode, steps[0].Attempts, steps[0].Ref = app.StepSucceeded, app.ModeSync, 1, "res_1"
	steps[1].Status, steps[1].Mode, steps[1].Attempts, steps[1].OutcomeUnknown = app.StepProcessing, app.ModeAsync, 2, true
	op := &app.Operation{
		ID: app.OperationID("orders", "golden-1"), Kind: app.KindOrder, Status: app.StatusProcessing, Mode: app.ModeAsync,
		Reason: app.ReasonOutcomeUnknown, Attempts: 3, Priority: 3, Payment: app.PaymentRequest{Amount: 2100, Currency: "usd"},
		CreatedAt: at, UpdatedAt: at,
		Lines: []app.PricedLine{{SKU: "sku-tea", Quantity: 2, UnitPrice: 450}, {SKU: "sku-mug", Quantity: 1, UnitPrice: 1200}},
		Steps: steps,
	}
	b, err := json.MarshalIndent(op.Document(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "order_document.golden.json", append(b, '\n'))
}
