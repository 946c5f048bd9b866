package app_test

import (
	"testing"

	"github.com/spillway/spillway/app"
)

func TestDegradeNamesWhatIsSlowAndWhatStillWorks(t *testing.T) {
	t.Parallel()
	open := func(names ...string) []app.BreakerSignal {
		var out []app.BreakerSignal
		for _, n := range names {
			out = append(out, app.BreakerSignal{Name: n, State: app.BreakerOpen})
		}
		return out
	}
	tests := []struct {
		name     string
		d        app.Distress
		degraded bool
		names    string
		message  string
	}{
		{name: "calm"},
		{name: "pool pressure alone puts up no banner", d: app.Distress{PoolPressure: true}},
		{name: "payment", d: app.Distress{Breakers: open(app.DepPayment)}, degraded: true, names: "payment",
			message: "Payments are slow right now. You can still order: we'll confirm by email when your payment goes through."},
		{name: "inventory", d: app.Distress{Breakers: open(app.DepInventory)}, degraded: true, names: "inventory",
			message: "Stock checks are slow right now. You can still order: stock shown may be a few minutes old, and we'll confirm availability when we reserve your items."},
		{name: "both", d: app.Distress{Breakers: open(app.DepPayment, app.DepInventory)}, degraded: true, names: "payment inventory",
			message: "Payments and stock checks are slow right now. You can still order: we'll confirm by email when your payment goes through; " +
				"stock shown may be a few minutes old, and we'll confirm availability when we reserve your items."},
		{name: "shedding", d: app.Distress{Shedding: []string{app.DepPayment}}, degraded: true, names: "server",
			message: "We're busier than usual right now. You can still order: your order is kept safe and confirmed by email, even if it takes a little longer."},
		{name: "payment and shedding", d: app.Distress{Breakers: open(app.DepPayment), Shedding: []string{app.DepPayment}}, degraded: true,
			names:   "payment server",
			message: "Payments are slow right now. We're also busier than usual. You can still order: we'll confirm by email when your payment goes through."},
		{name: "an undeclared dependency", d: app.Distress{Breakers: open("crm_sync")}, degraded: true, names: "crm_sync",
			message: "Crm sync calls are slow right now. You can still order."},
	}
	for _, tt := range tests {
		got := app.Degrade(tt.d)
		if got.Degraded() != tt.degraded || got.Names() != tt.names || got.Message != tt.message {
			t.Errorf("%s:\n got %v %q %q\nwant %v %q %q", tt.name, got.Degraded(), got.Names(), got.Message,
				tt.degraded, tt.names, tt.message)
		}
	}
}
