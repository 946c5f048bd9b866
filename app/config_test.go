package app_test

import (
	"strings"
	"testing"
	"time"

	"github.com/spillway/spillway/app"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadConfigDefaults(t *testing.T) {
	t.Parallel()
	c, err := app.LoadConfig(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:8080" || c.Dep(app.DepPayment).Deadline != 3*time.Second || c.PaymentProvider != "sim" ||
		c.HighValueAmount != 100000 || c.SyncConcurrency >= c.DBMaxConns || c.ReadDeadline != 300*time.Millisecond ||
		c.FeatureHold != app.DefaultFeatureHold {
		t.Fatalf("unexpected defaults: %+v", c)
	}
}

func TestLoadConfigNamesTheBadVariable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"PAYMENT_DEADLINE": "3"}, "PAYMENT_DEADLINE"},
		{map[string]string{"PAYMENT_DEADLINE": "-1s"}, "PAYMENT_DEADLINE"},
		{map[string]string{"SPILLWAY_ADDR": "8080"}, "SPILLWAY_ADDR"},
		{map[string]string{"PAYMENT_PROVIDER": "paypal"}, "PAYMENT_PROVIDER"},
		{map[string]string{"PAYMENT_PROVIDER": "http"}, "PAYMENT_PROVIDER_URL"},
		{map[string]string{"PAYMENT_PROVIDER": "http", "PAYMENT_PROVIDER_URL": "localhost:9"}, "PAYMENT_PROVIDER_URL"},
		{map[string]string{"PAYMENT_PROVIDER": "stripe"}, "STRIPE_SECRET_KEY"},
		{map[string]string{"HIGH_VALUE_AMOUNT": "lots"}, "HIGH_VALUE_AMOUNT"},
		{map[string]string{"DATABASE_URL": "mysql://x"}, "DATABASE_URL"},
		{map[string]string{"DATABASE_URL": "postgres://127.0.0.1:6432/x", "DATABASE_DIRECT_URL": "mysql://x"}, "DATABASE_DIRECT_URL"},
		{map[string]string{"DATABASE_DIRECT_URL": "postgres://127.0.0.1:5432/x"}, "DATABASE_DIRECT_URL"},
		{map[string]string{"DB_MAX_CONNS": "20", "SYNC_CONCURRENCY": "19"}, "SYNC_CONCURRENCY"},
		{map[string]string{"PAYMENT_RETRY_BASE": "1m", "PAYMENT_RETRY_MAX": "1s"}, "PAYMENT_RETRY_MAX"},
		{map[string]string{"LOG_LEVEL": "loud"}, "LOG_LEVEL"},
		{map[string]string{"INVENTORY_DEADLINE": "soon"}, "INVENTORY_DEADLINE"},
		{map[string]string{"READ_DEADLINE": "fast"}, "READ_DEADLINE"},
		{map[string]string{"READ_DEADLINE": "0s"}, "READ_DEADLINE"},
		{map[string]string{"INVENTORY_RETRY_BASE": "1m", "INVENTORY_RETRY_MAX": "1s"}, "INVENTORY_RETRY_MAX"},
		{map[string]string{"INVENTORY_DRAIN_RATE": "-1"}, "INVENTORY_DRAIN_RATE"},
		{map[string]string{"BREAKER_INVENTORY_FAILURE_RATE": "2"}, "BREAKER_INVENTORY_FAILURE_RATE"},
		{map[string]string{"BREAKER_PAYMENT_CONSECUTIVE_FAILURES": "-1"}, "BREAKER_PAYMENT_CONSECUTIVE_FAILURES"},
		{map[string]string{"BREAKER_INVENTORY_CONSECUTIVE_FAILURES": "many"}, "BREAKER_INVENTORY_CONSECUTIVE_FAILURES"},
		{map[string]string{"INVENTORY_ASYNC_TIMEOUT": "1m", "SHUTDOWN_GRACE": "30s"}, "SHUTDOWN_GRACE"},
		{map[string]string{"FEATURE_HOLD": "1h30"}, "FEATURE_HOLD"},
		{map[string]string{"FEATURE_HOLD": "0s"}, "FEATURE_HOLD"},
	}
	for _, tt := range tests {
		_, err := app.LoadConfig(env(tt.env))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("LoadConfig(%v) = %v; want an error naming %s", tt.env, err, tt.want)
		}
	}
}

func TestPaymentPriority(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		amount int64
		want   int
	}{{1, 3}, {99999, 3}, {100000, 2}, {5000000, 2}} {
		if got := app.PaymentPriority(tt.amount, 100000); got != tt.want {
			t.Errorf("PaymentPriority(%d) = %d, want %d", tt.amount, got, tt.want)
		}
	}
}

// Every declared dependency gets its settings from variables under its
// own name, defaults otherwise, and one dependency's variables never
// change another's.
func TestDependencySettingsComeFromTheirOwnVariables(t *testing.T) {
	t.Parallel()
	c, err := app.LoadConfig(env(map[string]string{
		"INVENTORY_DEADLINE": "250ms", "INVENTORY_MAX_ATTEMPTS": "7", "INVENTORY_DRAIN_RATE": "50",
		"BREAKER_INVENTORY_MIN_CALLS": "5", "BREAKER_INVENTORY_CONSECUTIVE_FAILURES": "0", "DRAIN_RATE": "20",
	}))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range app.Dependencies() {
		if _, ok := c.Deps[d.Name]; !ok {
			t.Errorf("no settings for declared dependency %s", d.Name)
		}
	}
	inv, pay := c.Dep(app.DepInventory), c.Dep(app.DepPayment)
	if inv.Deadline != 250*time.Millisecond || inv.MaxAttempts != 7 || inv.DrainRate != 50 ||
		inv.Breaker.MinCalls == nil || *inv.Breaker.MinCalls != 5 ||
		inv.Breaker.ConsecutiveFailures == nil || *inv.Breaker.ConsecutiveFailures != 0 {
		t.Errorf("inventory settings %+v", inv)
	}
	// DRAIN_RATE is the payment's, as before there were other dependencies.
	if pay.Deadline != 3*time.Second || pay.MaxAttempts != 25 || pay.DrainRate != 20 || !pay.Breaker.Empty() {
		t.Errorf("payment settings %+v", pay)
	}
	if c.ShutdownGrace < max(inv.AsyncTimeout, pay.AsyncTimeout) {
		t.Errorf("SHUTDOWN_GRACE %s is shorter than a running call may take", c.ShutdownGrace)
	}
}
