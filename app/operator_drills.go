package app

import (
	"context"
	"errors"
	"fmt"
)

// StartDrill starts a drill of dependency by hand, in mode. The drill, its
// job and the audit entry are written in one transaction; a dependency
// with a drill still open is refused (ECONFLICT), so two operators
// pressing at once start one.
func (o *Operator) StartDrill(ctx context.Context, actor Actor, dependency string, mode DrillMode) (Drill, error) {
	ds := o.cfg.Drills
	if ds == nil {
		return Drill{}, errors.New("operator: no drills configured")
	}
	d, ok, err := ds.start(ctx, dependency, mode, DrillManual, actor.Email, nil, func(d Drill) AuditEntry {
		return o.audit(actor, "drill.start", "drill "+dependency, nil,
			map[string]any{"drill": d.ID, "mode": d.Mode, "duration": d.Duration.String(), "canaries": d.Canaries}, "", o.cfg.Now())
	})
	if err != nil {
		return d, err
	}
	if !ok {
		return d, Errorf(ECONFLICT, "A drill of %s is already running; wait for its verdict before starting another.", dependency)
	}
	return d, nil
}

// DrillWords says what starting a drill in mode does, for the form and the
// confirmation.
func DrillWords(mode DrillMode, s DrillSettings) string {
	if mode == DrillLive {
		return fmt.Sprintf("opens the breaker on every instance for %s: customers' requests go async too", s.Duration)
	}
	return fmt.Sprintf("sends %d canaries down the async path for %s; customers are untouched", s.Canaries, s.Duration)
}
