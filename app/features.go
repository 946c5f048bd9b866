package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// Names of the declared features.
const (
	FeatureBrowse      = "browse"
	FeatureCheckout    = "checkout"
	FeatureOrderStatus = "order_status"

	FeatureLiveStockRefresh = "live_stock_refresh"
	FeatureRichContent      = "rich_content"
	FeatureRecommendations  = "recommendations"
)

// Feature is a part of the customer's pages that can be told apart from
// the others. Essential ones are never switched off; optional ones are
// switched off under distress, least important first.
type Feature struct {
	Name      string
	Essential bool
	// Words says what it is, for the admin overview.
	Words string
}

// features is the one declaration of the hierarchy: the essential
// features, then the optional ones from most to least important. Under
// distress the optional ones go from the bottom of this list up, and come
// back from the top down.
var features = []Feature{
	{Name: FeatureBrowse, Essential: true, Words: "the catalog and product pages, with stock from cache when live reads fail"},
	{Name: FeatureCheckout, Essential: true, Words: "the checkout form and placing an order"},
	{Name: FeatureOrderStatus, Essential: true, Words: "the order's status page"},
	{Name: FeatureLiveStockRefresh, Words: "reading stock live from the inventory and refreshing the cache in the background"},
	{Name: FeatureRichContent, Words: "product images and rich descriptions"},
	{Name: FeatureRecommendations, Words: `"customers also bought", a query that can be shed`},
}

// Features returns the declared features: the essential ones, then the
// optional ones in their order of importance, most important first.
func Features() []Feature { return slices.Clone(features) }

// LookupFeature returns the declared feature of that name.
func LookupFeature(name string) (Feature, bool) {
	for _, f := range features {
		if f.Name == name {
			return f, true
		}
	}
	return Feature{}, false
}

// optionalFeatures are the optional features, most important first.
func optionalFeatures() []Feature {
	var out []Feature
	for _, f := range features {
		if !f.Essential {
			out = append(out, f)
		}
	}
	return out
}

// shedAt is the distress level at which the optional feature at index i
// (of n, most important first) is switched off: the least important at
// level 1, the next at 2, and so on.
func shedAt(i, n int) int { return n - i }

// PoolStat is the database pool's pressure as pgxpool.Stat tells it.
type PoolStat struct {
	Acquired, Constructing, Max int32
	// EmptyAcquires counts, since the pool opened, the acquires that had
	// to wait for a connection.
	EmptyAcquires int64
}

// PoolGauge reads the request pool's statistics; db.Store is one.
type PoolGauge interface {
	PoolStat() PoolStat
}

// BreakerReader is this instance's copy of the breakers; *Breakers is one.
type BreakerReader interface {
	Get(name string) (Breaker, bool)
}

// Bulkhead is what Admission says of itself.
type Bulkhead interface {
	InUse() int
	Limit() int
	Reserved() int
}

// Saturated reports whether a bulkhead sheds ordinary work now: every slot
// that is not kept for high-value work is taken.
func Saturated(b Bulkhead) bool {
	return b != nil && b.Limit() > 0 && b.InUse() >= b.Limit()-b.Reserved()
}

// BreakerSignal is a dependency whose breaker is not closed.
type BreakerSignal struct {
	Name  string
	State BreakerState
}

// Distress is what the system's state says of its health at one moment:
// the same breakers and bulkheads the admin overview shows, and the
// database pool.
type Distress struct {
	// Breakers are the dependencies whose breaker is not closed, in
	// declaration order.
	Breakers []BreakerSignal
	// Shedding are the dependencies whose bulkhead is saturated.
	Shedding []string
	// PoolPressure is true when the pool had every connection out, or
	// an acquire waited for one while it was at its max.
	PoolPressure bool
	Pool         PoolStat
}

// Level is how distressed the system is: one for each breaker not closed,
// one for a saturated bulkhead, one for pool pressure. Zero is calm.
func (d Distress) Level() int {
	n := len(d.Breakers)
	if len(d.Shedding) > 0 {
		n++
	}
	if d.PoolPressure {
		n++
	}
	return n
}

// Reasons are the signals in words, for the admin overview.
func (d Distress) Reasons() []string {
	var out []string
	for _, b := range d.Breakers {
		out = append(out, fmt.Sprintf("%s breaker %s", b.Name, b.State))
	}
	for _, s := range d.Shedding {
		out = append(out, s+" bulkhead saturated")
	}
	if d.PoolPressure {
		out = append(out, fmt.Sprintf("database pool under pressure (%d of %d connections in use)", d.Pool.Acquired, d.Pool.Max))
	}
	return out
}

// ReadDistress samples the signals. prevEmpty is the pool's EmptyAcquires
// at the previous sample (negative: none), so a wait since then counts.
func ReadDistress(bs BreakerReader, deps []string, bulkheads map[string]Bulkhead, pool PoolGauge, prevEmpty int64) Distress {
	var d Distress
	for _, name := range deps {
		if bs == nil {
			break
		}
		if b, ok := bs.Get(name); ok && b.State != BreakerClosed {
			d.Breakers = append(d.Breakers, BreakerSignal{Name: name, State: b.State})
		}
	}
	for _, name := range deps {
		if Saturated(bulkheads[name]) {
			d.Shedding = append(d.Shedding, name)
		}
	}
	if pool != nil {
		d.Pool = pool.PoolStat()
		full := d.Pool.Max > 0 && d.Pool.Acquired+d.Pool.Constructing >= d.Pool.Max
		waited := prevEmpty >= 0 && d.Pool.EmptyAcquires > prevEmpty
		// A wait while connections are still being opened below the max is
		// the pool warming up, not pressure.
		d.PoolPressure = (d.Pool.Max > 0 && d.Pool.Acquired >= d.Pool.Max) || (waited && full)
	}
	return d
}

// FeatureOverride is an operator's hand on a feature, kept in Postgres so
// every instance agrees. Only "off" is stored; no row is automatic.
type FeatureOverride struct {
	Name   string
	Reason string
	Actor  string
	At     time.Time
}

// FeatureStore keeps the operators' overrides.
type FeatureStore interface {
	ListFeatureOverrides(ctx context.Context) ([]FeatureOverride, error)
	// SetFeatureOverrideTx stores o; it returns the override it replaced.
	SetFeatureOverrideTx(ctx context.Context, tx pgx.Tx, o FeatureOverride) (*FeatureOverride, error)
	// ClearFeatureOverrideTx removes the feature's override; it returns the
	// one removed, nil when there was none.
	ClearFeatureOverrideTx(ctx context.Context, tx pgx.Tx, name string) (*FeatureOverride, error)
}

// FeatureStatus is one feature's state now.
type FeatureStatus struct {
	Feature
	On bool
	// Manual is true when an operator switched it off.
	Manual   bool
	Override *FeatureOverride
	// Why says why it is in its state, in words ("" for on and calm).
	Why string
	// Since is when it last changed state (zero: on since start).
	Since time.Time
	// Returns, for a feature off for distress that has calmed, is when
	// it comes back on if the calm holds.
	Returns time.Time
}

// FeatureSnapshot is every feature's state at one refresh.
type FeatureSnapshot struct {
	At       time.Time
	Distress Distress
	Features []FeatureStatus
}

// Off returns the features that are off.
func (s FeatureSnapshot) Off() []FeatureStatus {
	var out []FeatureStatus
	for _, f := range s.Features {
		if !f.On {
			out = append(out, f)
		}
	}
	return out
}

// autoState is one optional feature's automatic state, stepped by
// stepFeature.
type autoState struct {
	Off bool
	// Why is the distress that switched it off.
	Why string
	// Since is when it switched; CalmSince, while off, is when distress
	// last fell below its level (zero: it has not).
	Since, CalmSince time.Time
}

// stepFeature is the hysteresis, pure: a feature goes off as soon as
// distress reaches its level, and comes back on only once distress has
// stayed below it for hold.
func stepFeature(s autoState, level, at int, why string, now time.Time, hold time.Duration) autoState {
	if level >= at {
		if !s.Off {
			return autoState{Off: true, Why: why, Since: now}
		}
		s.CalmSince, s.Why = time.Time{}, why
		return s
	}
	if !s.Off {
		return s
	}
	if s.CalmSince.IsZero() {
		s.CalmSince = now
	}
	if !now.Before(s.CalmSince.Add(hold)) {
		return autoState{Since: now}
	}
	return s
}

// FeaturesConfig wires the feature switch.
type FeaturesConfig struct {
	// Store holds the operators' overrides; required.
	Store FeatureStore
	// Breakers, Bulkheads and Pool are the signals; any may be nil.
	Breakers  BreakerReader
	Bulkheads map[string]Bulkhead
	Pool      PoolGauge
	// Dependencies whose breakers and bulkheads count; nil means every
	// declared one.
	Dependencies []string
	// Hold is how long distress must stay below a feature's level before
	// it comes back on (FEATURE_HOLD); zero means DefaultFeatureHold.
	Hold time.Duration
	// Every is how often Run refreshes; zero means a second.
	Every time.Duration
	// Changed, when set, returns a channel closed at the named breaker's
	// next change (Breakers.Changed), so Run refreshes at once.
	Changed func(name string) <-chan struct{}
	Now     func() time.Time
	Logger  *slog.Logger
}

// DefaultFeatureHold is FEATURE_HOLD's default.
const DefaultFeatureHold = time.Minute

// FeatureSwitch decides which features are on. Enabled and Snapshot read
// a copy computed by Refresh, so a request never waits on the database or
// a lock to learn which features it may show.
type FeatureSwitch struct {
	cfg  FeaturesConfig
	snap atomic.Pointer[FeatureSnapshot]

	mu        sync.Mutex // serialises Refresh
	auto      map[string]autoState
	prevEmpty int64
}

// NewFeatureSwitch validates cfg and returns the switch, every feature on
// until the first Refresh.
func NewFeatureSwitch(cfg FeaturesConfig) (*FeatureSwitch, error) {
	if cfg.Store == nil {
		return nil, errors.New("features: Store is required")
	}
	if cfg.Hold < 0 {
		return nil, errors.New("features: Hold must not be negative")
	}
	if cfg.Hold == 0 {
		cfg.Hold = DefaultFeatureHold
	}
	if cfg.Every <= 0 {
		cfg.Every = time.Second
	}
	if cfg.Dependencies == nil {
		for _, d := range Dependencies() {
			cfg.Dependencies = append(cfg.Dependencies, d.Name)
		}
	}
	cfg.Now = orNow(cfg.Now)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	f := &FeatureSwitch{cfg: cfg, auto: map[string]autoState{}, prevEmpty: -1}
	snap := FeatureSnapshot{}
	for _, ft := range features {
		snap.Features = append(snap.Features, FeatureStatus{Feature: ft, On: true})
	}
	f.snap.Store(&snap)
	return f, nil
}

// Enabled reports whether the named feature is on. A nil switch, and an
// essential feature, are always on; an undeclared name is off, so a typo
// shows up at once.
func (f *FeatureSwitch) Enabled(name string) bool {
	if f == nil {
		_, ok := LookupFeature(name)
		return ok
	}
	for _, s := range f.snap.Load().Features {
		if s.Name == name {
			return s.On
		}
	}
	return false
}

// Snapshot returns every feature's state as of the last refresh.
func (f *FeatureSwitch) Snapshot() FeatureSnapshot {
	if f == nil {
		s := FeatureSnapshot{}
		for _, ft := range features {
			s.Features = append(s.Features, FeatureStatus{Feature: ft, On: true})
		}
		return s
	}
	s := *f.snap.Load()
	s.Features = slices.Clone(s.Features)
	return s
}

// Refresh samples the signals, reads the overrides and recomputes every
// feature. On a store error the overrides last read are kept (the
// automatic part is still stepped), and the error returned.
func (f *FeatureSwitch) Refresh(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := StorageTime(f.cfg.Now())
	d := ReadDistress(f.cfg.Breakers, f.cfg.Dependencies, f.cfg.Bulkheads, f.cfg.Pool, f.prevEmpty)
	if f.cfg.Pool != nil {
		f.prevEmpty = d.Pool.EmptyAcquires
	}
	prev := f.snap.Load()
	overrides := map[string]*FeatureOverride{}
	ovs, err := f.cfg.Store.ListFeatureOverrides(ctx)
	if err != nil {
		for _, s := range prev.Features {
			if s.Override != nil {
				overrides[s.Name] = s.Override
			}
		}
	} else {
		for i := range ovs {
			overrides[ovs[i].Name] = &ovs[i]
		}
	}
	why := strings.Join(d.Reasons(), "; ")
	opt := optionalFeatures()
	level := d.Level()
	snap := FeatureSnapshot{At: now, Distress: d}
	for _, ft := range features {
		st := FeatureStatus{Feature: ft, On: true}
		if !ft.Essential {
			i := slices.IndexFunc(opt, func(o Feature) bool { return o.Name == ft.Name })
			at := shedAt(i, len(opt))
			a := stepFeature(f.auto[ft.Name], level, at, why, now, f.cfg.Hold)
			f.auto[ft.Name] = a
			st.Since = a.Since
			if a.Off {
				st.On = false
				st.Why = fmt.Sprintf("off automatically at distress level %d or more: %s", at, a.Why)
				if !a.CalmSince.IsZero() {
					st.Returns = a.CalmSince.Add(f.cfg.Hold)
					st.Why = fmt.Sprintf("off automatically (%s); calm since %s, back on at %s if it holds",
						a.Why, a.CalmSince.Format(time.RFC3339), st.Returns.Format(time.RFC3339))
				}
			}
			if o := overrides[ft.Name]; o != nil {
				st.On, st.Manual, st.Override, st.Since = false, true, o, o.At
				st.Why = "switched off by " + o.Actor
				if o.Reason != "" {
					st.Why += ": " + o.Reason
				}
			}
		}
		snap.Features = append(snap.Features, st)
	}
	f.snap.Store(&snap)
	if err != nil {
		return fmt.Errorf("features: read overrides: %w", err)
	}
	return nil
}

// Run refreshes every Every, and at once when a breaker changes, until
// ctx ends.
func (f *FeatureSwitch) Run(ctx context.Context) error {
	t := time.NewTicker(f.cfg.Every)
	defer t.Stop()
	changed := make(chan struct{}, 1)
	if f.cfg.Changed != nil {
		for _, name := range f.cfg.Dependencies {
			go func() {
				for {
					ch := f.cfg.Changed(name)
					if ch == nil {
						return
					}
					select {
					case <-ctx.Done():
						return
					case <-ch:
					}
					select {
					case changed <- struct{}{}:
					default:
					}
				}
			}()
		}
	}
	for {
		if err := f.Refresh(ctx); err != nil && ctx.Err() == nil {
			f.cfg.Logger.Warn("refresh features", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-changed:
		}
	}
}
