package app

import "time"

// PolicyOverride holds the thresholds set explicitly in the environment;
// nil fields leave the stored (or default) value alone, so a restart does
// not undo what an operator changed at run time unless told to.
type PolicyOverride struct {
	Window      *time.Duration
	MinCalls    *int
	FailureRate *float64
	SlowRate    *float64
	SlowCall    *time.Duration
	OpenWait    *time.Duration
	MaxOpenWait *time.Duration
	Probes      *int
	ProbeLease  *time.Duration
	// ConsecutiveFailures is the fast trigger's run length (0: off).
	ConsecutiveFailures *int
}

// Empty reports whether nothing is overridden.
func (o PolicyOverride) Empty() bool { return o == PolicyOverride{} }

// Apply returns p with the overridden fields replaced.
func (o PolicyOverride) Apply(p BreakerPolicy) BreakerPolicy {
	set(&p.Window, o.Window)
	set(&p.MinCalls, o.MinCalls)
	set(&p.FailureRate, o.FailureRate)
	set(&p.SlowRate, o.SlowRate)
	set(&p.SlowCall, o.SlowCall)
	set(&p.OpenWait, o.OpenWait)
	set(&p.MaxOpenWait, o.MaxOpenWait)
	set(&p.Probes, o.Probes)
	set(&p.ProbeLease, o.ProbeLease)
	set(&p.ConsecutiveFailures, o.ConsecutiveFailures)
	return p
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}
