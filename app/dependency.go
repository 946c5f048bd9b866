package app

import (
	"strings"
	"time"
)

// Names of the declared dependencies: each is its breaker's name and the
// dependency label of its metrics.
const (
	DepPayment   = "payment"
	DepInventory = "inventory"
)

// Dependency is a downstream Spillway calls. It is declared once, in
// Dependencies, and the declaration is all it takes to get the machinery:
// settings read from the environment under its name (EnvPrefix), a
// circuit breaker of the same name shared by every instance (so its row
// on the admin overview and the Breakers page), its own River queue, its
// drain rate, and its name as the dependency label of the metrics.
type Dependency struct {
	Name string
	// Queue is the River queue its captured calls wait in.
	Queue string
	// Defaults are its settings when the environment sets none.
	Defaults DependencySettings
}

// DependencySettings are one dependency's timing, retry and breaker
// settings.
type DependencySettings struct {
	// Deadline bounds a synchronous call (<NAME>_DEADLINE).
	Deadline time.Duration
	// AsyncTimeout bounds a worker's call (<NAME>_ASYNC_TIMEOUT).
	AsyncTimeout time.Duration
	// MaxAttempts is a captured call's attempt budget (<NAME>_MAX_ATTEMPTS).
	MaxAttempts int
	// RetryBase and RetryMax bound the backoff between attempts
	// (<NAME>_RETRY_BASE, <NAME>_RETRY_MAX).
	RetryBase, RetryMax time.Duration
	// DrainRate caps async calls per second across instances; 0 means no
	// cap (<NAME>_DRAIN_RATE).
	DrainRate float64
	// Breaker holds the thresholds set in the environment
	// (BREAKER_<NAME>_*); unset ones keep the stored values.
	Breaker PolicyOverride
	// MaxBacklog and MaxBacklogAge bound the captured calls waiting for
	// it (<NAME>_MAX_BACKLOG, <NAME>_MAX_BACKLOG_AGE): past either, a new
	// capture is refused with 503 and nothing is acknowledged. Zero means
	// no bound.
	MaxBacklog    int
	MaxBacklogAge time.Duration
}

// EnvPrefix is how the dependency's variables begin: "PAYMENT_" for
// PAYMENT_DEADLINE and the others.
func (d Dependency) EnvPrefix() string { return strings.ToUpper(d.Name) + "_" }

// BreakerEnvPrefix is how its breaker's variables begin: "BREAKER_PAYMENT_".
func (d Dependency) BreakerEnvPrefix() string { return "BREAKER_" + d.EnvPrefix() }

// DefaultMaxBacklog is a dependency's backlog bound when the environment
// sets none: far above what an outage of minutes captures at this
// machine's rates, and below what would make the queue itself the
// problem.
const DefaultMaxBacklog = 100_000

// Dependencies lists every dependency Spillway calls, in the order pages
// show them. Adding one here is what declaring a dependency means.
func Dependencies() []Dependency {
	return []Dependency{
		{Name: DepPayment, Queue: QueuePayments, Defaults: DependencySettings{
			Deadline: 3 * time.Second, AsyncTimeout: 30 * time.Second, MaxAttempts: 25,
			RetryBase: 2 * time.Second, RetryMax: time.Hour, MaxBacklog: DefaultMaxBacklog,
		}},
		// Inventory calls are made by orders, and a captured order waits
		// in the orders queue, whichever step it stands at: that queue's
		// backlog is what INVENTORY_MAX_BACKLOG bounds.
		{Name: DepInventory, Queue: QueueOrders, Defaults: DependencySettings{
			Deadline: time.Second, AsyncTimeout: 10 * time.Second, MaxAttempts: 25,
			RetryBase: time.Second, RetryMax: 10 * time.Minute, MaxBacklog: DefaultMaxBacklog,
		}},
	}
}
