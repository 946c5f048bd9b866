package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spillway/spillway/cmd/internal/loadgen"
)

// Proxy names: one Toxiproxy proxy per link the instances use.
const (
	proxyPostgres  = "postgres"
	proxyPayment   = "payment"
	proxyInventory = "inventory"
)

// scenario is one row of the table: a fault injected while load runs,
// then removed.
type scenario struct {
	Name string
	// Fault says what is injected, for the table's readers and the JSON.
	Fault string
	// inject starts the fault and heal removes it; nil for the baseline.
	inject, heal func(ctx context.Context, r *scenarioRun) error
}

// toxicScenario injects one toxic on one proxy and removes it.
func toxicScenario(name, fault, proxy string, x toxic) scenario {
	x.Name = name
	return scenario{
		Name: name, Fault: fault,
		inject: func(ctx context.Context, r *scenarioRun) error { return r.s.tox.addToxic(ctx, proxy, x) },
		heal:   func(ctx context.Context, r *scenarioRun) error { return r.s.tox.removeToxic(ctx, proxy, name) },
	}
}

// scenarios is every scenario, in the order a full run takes them.
//
// "Half-open" is Toxiproxy's timeout toxic with timeout 0 on the
// downstream stream: the connection stays established and the request
// reaches the peer (Postgres commits, the provider charges), but no byte of
// the answer comes back and nothing closes the socket until the toxic is
// removed: the peer looks alive to TCP and is dead to the application.
// limit_data is the other mid-stream fault: the answer is cut after a few
// bytes and the connection closed.
func scenarios() []scenario {
	halfOpen := toxic{Type: "timeout", Stream: "downstream", Attributes: map[string]int{"timeout": 0}}
	reset := toxic{Type: "reset_peer", Stream: "upstream", Attributes: map[string]int{"timeout": 0}}
	return []scenario{
		{Name: "baseline", Fault: "none"},
		toxicScenario("db-latency", "Postgres answers 100 ms late (latency toxic)", proxyPostgres,
			toxic{Type: "latency", Stream: "downstream", Attributes: map[string]int{"latency": 100, "jitter": 20}}),
		toxicScenario("db-bandwidth", "Postgres answers at 16 KB/s (bandwidth toxic)", proxyPostgres,
			toxic{Type: "bandwidth", Stream: "downstream", Attributes: map[string]int{"rate": 16}}),
		toxicScenario("db-reset", "every Postgres connection reset by peer (reset_peer)", proxyPostgres, reset),
		toxicScenario("db-half-open", "Postgres half-open: queries arrive, no answer returns, sockets stay open (timeout 0)", proxyPostgres, halfOpen),
		{Name: "db-restart", Fault: "Postgres stopped (fast shutdown), started again at heal",
			inject: func(ctx context.Context, r *scenarioRun) error { return r.s.stopPostgres(ctx) },
			heal:   func(ctx context.Context, r *scenarioRun) error { return r.s.startPostgres(ctx) }},
		toxicScenario("provider-latency", "provider answers 1.5 s late, past PAYMENT_DEADLINE (latency toxic)", proxyPayment,
			toxic{Type: "latency", Stream: "downstream", Attributes: map[string]int{"latency": 1500}}),
		toxicScenario("provider-bandwidth", "provider answers at 1 KB/s (bandwidth toxic)", proxyPayment,
			toxic{Type: "bandwidth", Stream: "downstream", Attributes: map[string]int{"rate": 1}}),
		toxicScenario("provider-reset", "every provider connection reset by peer (reset_peer)", proxyPayment, reset),
		toxicScenario("provider-half-open", "provider half-open: charges arrive and happen, no answer returns (timeout 0)", proxyPayment, halfOpen),
		toxicScenario("provider-cut", "provider answers cut after 64 bytes, connection closed (limit_data)", proxyPayment,
			toxic{Type: "limit_data", Stream: "downstream", Attributes: map[string]int{"bytes": 64}}),
		{Name: "provider-down", Fault: "provider proxy disabled mid-stream: open connections closed, new ones refused",
			inject: func(ctx context.Context, r *scenarioRun) error { return r.s.tox.setEnabled(ctx, proxyPayment, false) },
			heal:   func(ctx context.Context, r *scenarioRun) error { return r.s.tox.setEnabled(ctx, proxyPayment, true) }},
		toxicScenario("inventory-reset", "every inventory connection reset by peer (reset_peer)", proxyInventory, reset),
		toxicScenario("inventory-half-open", "inventory half-open: reservations happen, no answer returns (timeout 0)", proxyInventory, halfOpen),
		{Name: "sigkill", Fault: "SIGKILL of instance b while both instances drain a backlog (the provider 1.5 s slow, then 300 ms slow); b restarted at heal",
			inject: func(ctx context.Context, r *scenarioRun) error {
				// A backlog first: past PAYMENT_DEADLINE, requests are captured.
				if err := r.s.tox.addToxic(ctx, proxyPayment, toxic{Name: "sigkill-slow", Type: "latency", Stream: "downstream",
					Attributes: map[string]int{"latency": 1500}}); err != nil {
					return err
				}
				if !loadgen.SleepUntil(ctx, time.Now().Add(1500*time.Millisecond)) {
					return ctx.Err()
				}
				// Then calls that succeed but take 300 ms, so that when b
				// dies its workers hold jobs mid-call and its handlers
				// hold sync calls: what River's rescue and the reconciler
				// must finish.
				if err := r.s.tox.removeToxic(ctx, proxyPayment, "sigkill-slow"); err != nil {
					return err
				}
				if err := r.s.tox.addToxic(ctx, proxyPayment, toxic{Name: "sigkill-busy", Type: "latency", Stream: "downstream",
					Attributes: map[string]int{"latency": 300}}); err != nil {
					return err
				}
				if !loadgen.SleepUntil(ctx, time.Now().Add(700*time.Millisecond)) {
					return ctx.Err()
				}
				r.killInstance(1)
				return nil
			},
			heal: func(ctx context.Context, r *scenarioRun) error {
				if err := r.s.tox.removeToxic(ctx, proxyPayment, "sigkill-busy"); err != nil {
					return err
				}
				return r.restartInstance(ctx, 1)
			}},
		{Name: "clock-step", Fault: "the provider's wall clock stepped back 1 h (fresh charges look an hour old to the orphan sweep), then forward 1 h at heal",
			inject: func(ctx context.Context, r *scenarioRun) error { r.s.clock.step(-time.Hour); return nil },
			heal:   func(ctx context.Context, r *scenarioRun) error { r.s.clock.step(time.Hour); return nil }},
	}
}

// selectScenarios picks the scenarios named in only (comma-separated), in
// the suite's order; empty only is all of them.
func selectScenarios(all []scenario, only string) ([]scenario, error) {
	if strings.TrimSpace(only) == "" {
		return all, nil
	}
	want := map[string]bool{}
	for _, n := range strings.Split(only, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if !slices.ContainsFunc(all, func(s scenario) bool { return s.Name == n }) {
			return nil, fmt.Errorf("-only: no scenario %q (%s)", n, strings.Join(scenarioNames(all), ", "))
		}
		want[n] = true
	}
	var out []scenario
	for _, s := range all {
		if want[s.Name] {
			out = append(out, s)
		}
	}
	return out, nil
}

func scenarioNames(all []scenario) []string {
	names := make([]string, len(all))
	for i, s := range all {
		names[i] = s.Name
	}
	return names
}

// timing is how long each phase of a scenario lasts.
type timing struct {
	Warm  time.Duration // load before the fault
	Fault time.Duration // with the fault
	After time.Duration // load after the fault is removed
	Drain time.Duration // the most to wait, after the load, for every operation to end
	Rate  float64       // requests per second
}

func defaultTiming() timing {
	return timing{Warm: 2 * time.Second, Fault: 4 * time.Second, After: 4 * time.Second, Drain: 2 * time.Minute, Rate: 30}
}

// parseTiming reads CHAOS_RATE, CHAOS_WARM, CHAOS_FAULT, CHAOS_AFTER and
// CHAOS_DRAIN over the defaults, reporting every bad one at once.
func parseTiming(getenv func(string) string) (timing, error) {
	t := defaultTiming()
	var bad []string
	for name, d := range map[string]*time.Duration{"CHAOS_WARM": &t.Warm, "CHAOS_FAULT": &t.Fault,
		"CHAOS_AFTER": &t.After, "CHAOS_DRAIN": &t.Drain} {
		s := getenv(name)
		if s == "" {
			continue
		}
		v, err := time.ParseDuration(s)
		if err != nil || v <= 0 || v > 10*time.Minute {
			bad = append(bad, fmt.Sprintf("%s %q: want a duration above 0 and at most 10m", name, s))
			continue
		}
		*d = v
	}
	if s := getenv("CHAOS_RATE"); s != "" {
		var v float64
		if _, err := fmt.Sscan(s, &v); err != nil || v <= 0 || v > 1000 {
			bad = append(bad, fmt.Sprintf("CHAOS_RATE %q: want requests per second above 0 and at most 1000", s))
		} else {
			t.Rate = v
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		return t, fmt.Errorf("%s", strings.Join(bad, "; "))
	}
	return t, nil
}
