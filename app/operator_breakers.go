package app

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// PolicyText is a breaker's thresholds as operators read and write them:
// durations in Go's notation (1m30s), rates in percent. The admin's form
// shows it and the audit log records it.
type PolicyText struct {
	Window, SlowCall, OpenWait, MaxOpenWait, ProbeLease, TripMemory string
	MinCalls, Probes, ConsecutiveFailures                           string
	FailureRate, SlowRate                                           string
}

// Text is p as operators read it.
func (p BreakerPolicy) Text() PolicyText {
	pct := func(f float64) string { return strconv.FormatFloat(f*100, 'f', -1, 64) }
	return PolicyText{
		Window: p.Window.String(), SlowCall: p.SlowCall.String(), OpenWait: p.OpenWait.String(),
		MaxOpenWait: p.MaxOpenWait.String(), ProbeLease: p.ProbeLease.String(), TripMemory: p.TripMemory.String(),
		MinCalls: strconv.Itoa(p.MinCalls), Probes: strconv.Itoa(p.Probes),
		ConsecutiveFailures: strconv.Itoa(p.ConsecutiveFailures),
		FailureRate:         pct(p.FailureRate), SlowRate: pct(p.SlowRate),
	}
}

// Policy parses and validates the thresholds; the error names every bad
// field.
func (t PolicyText) Policy() (BreakerPolicy, error) {
	var p BreakerPolicy
	var errs []string
	dur := func(name, s string, dst *time.Duration) {
		d, err := time.ParseDuration(s)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %q is not a duration like 10s or 1m", name, s))
		}
		*dst = d
	}
	num := func(name, s string, dst *int) {
		n, err := strconv.Atoi(s)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %q is not a whole number", name, s))
		}
		*dst = n
	}
	pct := func(name, s string, dst *float64) {
		f, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %q is not a percentage", name, s))
		}
		*dst = f / 100
	}
	dur("window", t.Window, &p.Window)
	num("min_calls", t.MinCalls, &p.MinCalls)
	pct("failure_rate", t.FailureRate, &p.FailureRate)
	pct("slow_rate", t.SlowRate, &p.SlowRate)
	dur("slow_call", t.SlowCall, &p.SlowCall)
	dur("open_wait", t.OpenWait, &p.OpenWait)
	dur("max_open_wait", t.MaxOpenWait, &p.MaxOpenWait)
	num("probes", t.Probes, &p.Probes)
	dur("probe_lease", t.ProbeLease, &p.ProbeLease)
	dur("trip_memory", t.TripMemory, &p.TripMemory)
	num("consecutive_failures", t.ConsecutiveFailures, &p.ConsecutiveFailures)
	if len(errs) > 0 {
		return p, Errorf(EINVALID, "%s", strings.Join(errs, "; "))
	}
	if err := p.Validate(); err != nil {
		return p, Errorf(EINVALID, "%s", err.Error())
	}
	return p, nil
}

// ForceWords says what forcing a breaker to state does, in words: "forced
// open", "forced closed", "returned to auto"; "" for a state no operator
// may force.
func ForceWords(state BreakerState) string {
	switch state {
	case BreakerForcedOpen:
		return "forced open"
	case BreakerForcedClosed:
		return "forced closed"
	case BreakerClosed:
		return "returned to auto"
	}
	return ""
}

// MaxForceReason bounds an operator's reason for forcing a breaker.
const MaxForceReason = 200

// breakers is this instance's breakers, or an error saying this service
// was not given them.
func (o *Operator) breakers() (*Breakers, error) {
	if o.cfg.Breakers == nil {
		return nil, errors.New("operator: no breakers configured")
	}
	return o.cfg.Breakers, nil
}

// breaker reads a breaker as stored, worded for an operator when there is
// none.
func (o *Operator) breaker(ctx context.Context, bs *Breakers, name string) (Breaker, error) {
	b, err := bs.cfg.Store.GetBreaker(ctx, name)
	if ErrorCode(err) == ENOTFOUND {
		return b, Errorf(ENOTFOUND, "There is no breaker %q.", name)
	}
	return b, err
}

// ForceBreaker forces a breaker open or closed, or returns it to auto
// (BreakerClosed), with the operator's reason. The breaker, its history and
// the audit entry are written in one transaction that tells every
// instance.
func (o *Operator) ForceBreaker(ctx context.Context, actor Actor, name string, state BreakerState, reason string) (Breaker, error) {
	bs, err := o.breakers()
	if err != nil {
		return Breaker{}, err
	}
	words := ForceWords(state)
	if words == "" {
		return Breaker{}, Errorf(EINVALID, "A breaker can be forced open, forced closed or returned to auto, not %q.", state)
	}
	before, err := o.breaker(ctx, bs, name)
	if err != nil {
		return before, err
	}
	reason = ClipText(strings.TrimSpace(reason), MaxForceReason)
	why := words + " by " + actor.Email
	if reason != "" {
		why += ": " + reason
	}
	return bs.force(ctx, name, state, actor.Email, why, func(from, to Breaker) AuditEntry {
		return o.audit(actor, "breaker.force", "breaker "+name, map[string]any{"state": from.State},
			map[string]any{"state": to.State}, reason, o.cfg.Now())
	})
}

// SetBreakerPolicy replaces a breaker's thresholds with those in t; every
// instance uses them within a second. It reports false, and writes
// nothing, when they are what the breaker already has; an EINVALID error
// names every bad field. The thresholds, the breaker's history and the
// audit entry are written in one transaction.
func (o *Operator) SetBreakerPolicy(ctx context.Context, actor Actor, name string, t PolicyText) (bool, error) {
	bs, err := o.breakers()
	if err != nil {
		return false, err
	}
	before, err := o.breaker(ctx, bs, name)
	if err != nil {
		return false, err
	}
	p, err := t.Policy()
	if err != nil {
		return false, err
	}
	if p == before.Policy {
		return false, nil
	}
	now := o.cfg.Now()
	e := o.audit(actor, "breaker.policy", "breaker "+name, before.Policy.Text(), p.Text(), "", now)
	tr := Transition{Reason: "thresholds changed by " + actor.Email, Instance: bs.cfg.Instance, Actor: actor.Email, Audit: &e}
	if err := bs.cfg.Store.SetPolicy(ctx, name, p, tr, now); err != nil {
		return false, err
	}
	return true, nil
}
