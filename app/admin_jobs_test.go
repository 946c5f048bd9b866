package app_test

import (
	"strings"
	"testing"

	"github.com/spillway/spillway/app"
)

func TestParseDependencyAcceptsOnlyDeclaredDependencies(t *testing.T) {
	for _, d := range app.Dependencies() {
		if got, err := app.ParseDependency(" " + d.Name + " "); err != nil || got != d.Name {
			t.Errorf("%s: %q %v", d.Name, got, err)
		}
	}
	for _, bad := range []string{"crm", "Payment", "payments", ""} {
		_, err := app.ParseDependency(bad)
		if app.ErrorCode(err) != app.EINVALID || !strings.Contains(app.ErrorMessage(err), "dependency must be one of payment, inventory") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestKindsCallingNamesOneCallKinds(t *testing.T) {
	if got := app.KindsCalling(app.DepPayment); len(got) != 1 || got[0] != app.KindPayment {
		t.Errorf("payment is called by %v", got)
	}
	// Orders are matched by their steps, not their kind.
	if got := app.KindsCalling(app.DepInventory); len(got) != 0 {
		t.Errorf("inventory is called by %v", got)
	}
}
