package app

import (
	"context"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5"
)

// errUnchanged rolls back an operator's change that changes nothing.
var errUnchanged = errors.New("unchanged")

// MaxFeatureReason bounds an operator's reason for switching a feature off.
const MaxFeatureReason = 200

// SetFeatureOff switches an optional feature off by hand (off true), on
// every instance, until an operator returns it to automatic (off false).
// The override and its audit entry are written in one transaction; this
// instance's switch is refreshed at once, the others within a second. It
// reports false, and writes nothing, when the feature already is so.
func (o *Operator) SetFeatureOff(ctx context.Context, actor Actor, name string, off bool, reason string) (bool, error) {
	fs := o.cfg.Features
	if fs == nil {
		return false, errors.New("operator: no feature switch configured")
	}
	ft, ok := LookupFeature(name)
	if !ok {
		return false, Errorf(ENOTFOUND, "There is no feature %q.", name)
	}
	if ft.Essential {
		return false, Errorf(EINVALID, "The %s feature is essential: it is never switched off.", name)
	}
	reason = ClipText(strings.TrimSpace(reason), MaxFeatureReason)
	changed := false
	err := o.inTx(ctx, func(tx pgx.Tx) error {
		now := o.cfg.Now()
		var before *FeatureOverride
		var err error
		action, after := "feature.auto", map[string]any{"state": "auto"}
		if off {
			action, after = "feature.off", map[string]any{"state": "off", "reason": reason}
			before, err = fs.cfg.Store.SetFeatureOverrideTx(ctx, tx, FeatureOverride{Name: name, Reason: reason, Actor: actor.Email, At: now})
		} else {
			before, err = fs.cfg.Store.ClearFeatureOverrideTx(ctx, tx, name)
		}
		if err != nil {
			return err
		}
		was := map[string]any{"state": "auto"}
		if before != nil {
			was = map[string]any{"state": "off", "reason": before.Reason}
		}
		if (before != nil) == off && (!off || before.Reason == reason) {
			return errUnchanged // already so: roll back, record nothing
		}
		changed = true
		return o.cfg.Store.InsertAuditTx(ctx, tx, o.audit(actor, action, "feature "+name, was, after, reason, now))
	})
	if errors.Is(err, errUnchanged) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := fs.Refresh(ctx); err != nil {
		o.cfg.Logger.Warn("refresh features after an operator's change", "error", err)
	}
	return changed, nil
}
