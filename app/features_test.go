package app_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/apptest"
	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/db/dbtest"
)

// signals are a test's breakers, bulkhead and pool, set by hand.
type signals struct {
	mu       sync.Mutex
	states   map[string]app.BreakerState
	inUse    int
	limit    int
	reserved int
	pool     app.PoolStat
}

func newSignals() *signals {
	return &signals{states: map[string]app.BreakerState{}, limit: 4, pool: app.PoolStat{Max: 10}}
}

func (s *signals) Get(name string) (app.Breaker, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.states[name]
	if !ok {
		st = app.BreakerClosed
	}
	return app.Breaker{Name: name, State: st}, true
}

func (s *signals) set(name string, st app.BreakerState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.states[name] = st
}

func (s *signals) InUse() int    { s.mu.Lock(); defer s.mu.Unlock(); return s.inUse }
func (s *signals) Limit() int    { return s.limit }
func (s *signals) Reserved() int { return s.reserved }

func (s *signals) PoolStat() app.PoolStat { s.mu.Lock(); defer s.mu.Unlock(); return s.pool }

// memOverrides is a FeatureStore in memory.
type memOverrides struct {
	mu   sync.Mutex
	m    map[string]app.FeatureOverride
	fail error
}

func (m *memOverrides) ListFeatureOverrides(context.Context) ([]app.FeatureOverride, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return nil, m.fail
	}
	var out []app.FeatureOverride
	for _, o := range m.m {
		out = append(out, o)
	}
	return out, nil
}

func (m *memOverrides) SetFeatureOverrideTx(_ context.Context, _ pgx.Tx, o app.FeatureOverride) (*app.FeatureOverride, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.m[o.Name] = o
	return nil, nil
}

func (m *memOverrides) ClearFeatureOverrideTx(_ context.Context, _ pgx.Tx, name string) (*app.FeatureOverride, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.m, name)
	return nil, nil
}

func newTestSwitch(t *testing.T, sig *signals, store app.FeatureStore, clk *clock, hold time.Duration) *app.FeatureSwitch {
	t.Helper()
	f, err := app.NewFeatureSwitch(app.FeaturesConfig{Store: store, Breakers: sig, Pool: sig,
		Bulkheads: map[string]app.Bulkhead{app.DepPayment: sig}, Hold: hold, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func refresh(t *testing.T, f *app.FeatureSwitch) {
	t.Helper()
	if err := f.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// offNames are the features that are off, in declared order.
func offNames(f *app.FeatureSwitch) []string {
	var out []string
	for _, s := range f.Snapshot().Features {
		if !s.On {
			out = append(out, s.Name)
		}
	}
	return out
}

func TestFeaturesAreDeclaredEssentialFirstThenOptionalByImportance(t *testing.T) {
	t.Parallel()
	fs := app.Features()
	seenOptional := false
	var optional []string
	for _, f := range fs {
		if f.Essential && seenOptional {
			t.Fatalf("essential %s declared after an optional feature", f.Name)
		}
		if !f.Essential {
			seenOptional = true
			optional = append(optional, f.Name)
		}
	}
	want := []string{app.FeatureLiveStockRefresh, app.FeatureRichContent, app.FeatureRecommendations}
	if !slices.Equal(optional, want) {
		t.Fatalf("optional features %v, want %v", optional, want)
	}
}

func TestOptionalFeaturesSwitchOffLeastImportantFirstAsDistressGrows(t *testing.T) {
	t.Parallel()
	sig, clk := newSignals(), newClock()
	f := newTestSwitch(t, sig, &memOverrides{m: map[string]app.FeatureOverride{}}, clk, time.Minute)
	steps := []struct {
		name string
		set  func()
		off  []string
	}{
		{"calm", func() {}, nil},
		{"payment breaker open", func() { sig.set(app.DepPayment, app.BreakerOpen) },
			[]string{app.FeatureRecommendations}},
		{"and the bulkhead saturated", func() { sig.mu.Lock(); sig.inUse = 4; sig.mu.Unlock() },
			[]string{app.FeatureRichContent, app.FeatureRecommendations}},
		{"and the pool at its max", func() { sig.mu.Lock(); sig.pool.Acquired = 10; sig.mu.Unlock() },
			[]string{app.FeatureLiveStockRefresh, app.FeatureRichContent, app.FeatureRecommendations}},
		{"and the inventory breaker half-open too: essentials stay on", func() { sig.set(app.DepInventory, app.BreakerHalfOpen) },
			[]string{app.FeatureLiveStockRefresh, app.FeatureRichContent, app.FeatureRecommendations}},
	}
	for _, s := range steps {
		s.set()
		refresh(t, f)
		if got := offNames(f); !slices.Equal(got, s.off) {
			t.Fatalf("%s: off %v, want %v", s.name, got, s.off)
		}
		for _, ft := range app.Features() {
			if ft.Essential && !f.Enabled(ft.Name) {
				t.Fatalf("%s: essential %s is off", s.name, ft.Name)
			}
		}
	}
	st := f.Snapshot()
	if st.Distress.Level() != 4 {
		t.Fatalf("level %d, want 4", st.Distress.Level())
	}
	for _, s := range st.Off() {
		if !strings.Contains(s.Why, "payment breaker open") {
			t.Fatalf("%s off without naming the signal: %q", s.Name, s.Why)
		}
	}
}

func TestFeaturesComeBackOnlyAfterTheCalmHolds(t *testing.T) {
	t.Parallel()
	sig, clk := newSignals(), newClock()
	f := newTestSwitch(t, sig, &memOverrides{m: map[string]app.FeatureOverride{}}, clk, time.Minute)
	sig.set(app.DepPayment, app.BreakerOpen)
	refresh(t, f)
	if f.Enabled(app.FeatureRecommendations) {
		t.Fatal("recommendations on with the payment breaker open")
	}
	sig.set(app.DepPayment, app.BreakerClosed)
	refresh(t, f)
	clk.Advance(59 * time.Second)
	refresh(t, f)
	if f.Enabled(app.FeatureRecommendations) {
		t.Fatal("recommendations back before the hold")
	}
	s := f.Snapshot().Off()[0]
	if s.Returns.IsZero() || !strings.Contains(s.Why, "calm since") {
		t.Fatalf("recovering feature does not say when it returns: %+v", s)
	}
	// Distress again within the hold starts the calm over.
	sig.set(app.DepPayment, app.BreakerHalfOpen)
	refresh(t, f)
	sig.set(app.DepPayment, app.BreakerClosed)
	clk.Advance(2 * time.Second)
	refresh(t, f)
	clk.Advance(59 * time.Second)
	refresh(t, f)
	if f.Enabled(app.FeatureRecommendations) {
		t.Fatal("a flap within the hold did not restart the calm")
	}
	clk.Advance(time.Second)
	refresh(t, f)
	if !f.Enabled(app.FeatureRecommendations) {
		t.Fatal("recommendations still off after a full hold of calm")
	}
	if off := offNames(f); len(off) != 0 {
		t.Fatalf("still off: %v", off)
	}
}

func TestPoolWaitsCountOnlyAtTheMax(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		stat      app.PoolStat
		prevEmpty int64
		want      bool
	}{
		{"idle", app.PoolStat{Acquired: 1, Max: 10, EmptyAcquires: 5}, 5, false},
		{"every connection out", app.PoolStat{Acquired: 10, Max: 10}, 0, true},
		{"waited while full", app.PoolStat{Acquired: 8, Constructing: 2, Max: 10, EmptyAcquires: 6}, 5, true},
		{"waited while warming up", app.PoolStat{Acquired: 2, Constructing: 1, Max: 10, EmptyAcquires: 6}, 5, false},
		{"first sample", app.PoolStat{Acquired: 9, Constructing: 1, Max: 10, EmptyAcquires: 6}, -1, false},
	}
	for _, tt := range tests {
		sig := newSignals()
		sig.pool = tt.stat
		d := app.ReadDistress(nil, nil, nil, sig, tt.prevEmpty)
		if d.PoolPressure != tt.want {
			t.Errorf("%s: pressure %v, want %v", tt.name, d.PoolPressure, tt.want)
		}
	}
}

func TestBulkheadSaturatedWhenOrdinarySlotsAreTaken(t *testing.T) {
	t.Parallel()
	a := app.NewAdmission(4, 1)
	for range 2 {
		a.TryAcquire(false)
	}
	if app.Saturated(a) {
		t.Fatal("saturated with room left")
	}
	a.TryAcquire(false)
	if !app.Saturated(a) {
		t.Fatal("not saturated with only the high-value slot free")
	}
}

func TestOverrideReadFailureKeepsTheLastOverrides(t *testing.T) {
	t.Parallel()
	sig, clk := newSignals(), newClock()
	store := &memOverrides{m: map[string]app.FeatureOverride{
		app.FeatureRichContent: {Name: app.FeatureRichContent, Actor: "ops@example.com", Reason: "CDN bill"},
	}}
	f := newTestSwitch(t, sig, store, clk, time.Minute)
	refresh(t, f)
	store.mu.Lock()
	store.fail = errors.New("database down")
	store.mu.Unlock()
	if err := f.Refresh(context.Background()); err == nil {
		t.Fatal("no error from a failed read")
	}
	if f.Enabled(app.FeatureRichContent) {
		t.Fatal("an override was forgotten when the database failed")
	}
	s := f.Snapshot().Off()[0]
	if !s.Manual || s.Why != "switched off by ops@example.com: CDN bill" {
		t.Fatalf("manual feature: %+v", s)
	}
}

func TestUnknownFeatureIsOffAndNilSwitchIsOn(t *testing.T) {
	t.Parallel()
	var nilSwitch *app.FeatureSwitch
	if !nilSwitch.Enabled(app.FeatureRecommendations) || nilSwitch.Enabled("no_such") {
		t.Fatal("nil switch")
	}
	f := newTestSwitch(t, newSignals(), &memOverrides{m: map[string]app.FeatureOverride{}}, newClock(), 0)
	if f.Enabled("no_such") {
		t.Fatal("an undeclared feature is on")
	}
}

func TestOperatorSwitchesAFeatureOffForEveryInstanceAudited(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	clk := newClock()
	sig := newSignals()
	a := newTestSwitch(t, sig, db.NewStore(pool), clk, time.Minute)
	b := newTestSwitch(t, sig, db.NewStore(pool), clk, time.Minute)
	op, err := app.NewOperator(app.OperatorConfig{Store: db.NewStore(pool), Features: a, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	actor := app.Actor{Email: "ops@example.com", IP: "127.0.0.1", RequestID: "req-1"}
	if _, err := op.SetFeatureOff(ctx, actor, app.FeatureCheckout, true, ""); app.ErrorCode(err) != app.EINVALID {
		t.Fatalf("switching off an essential feature: %v", err)
	}
	if _, err := op.SetFeatureOff(ctx, actor, "no_such", true, ""); app.ErrorCode(err) != app.ENOTFOUND {
		t.Fatalf("switching off an undeclared feature: %v", err)
	}
	changed, err := op.SetFeatureOff(ctx, actor, app.FeatureLiveStockRefresh, true, "inventory asked us to")
	if err != nil || !changed {
		t.Fatalf("switch off: %v %v", changed, err)
	}
	if a.Enabled(app.FeatureLiveStockRefresh) {
		t.Fatal("this instance did not hear of it at once")
	}
	refresh(t, b)
	if b.Enabled(app.FeatureLiveStockRefresh) {
		t.Fatal("another instance still has it on after its refresh")
	}
	if changed, err := op.SetFeatureOff(ctx, actor, app.FeatureLiveStockRefresh, true, "inventory asked us to"); err != nil || changed {
		t.Fatalf("the same switch again: %v %v", changed, err)
	}
	if _, err := op.SetFeatureOff(ctx, actor, app.FeatureLiveStockRefresh, false, ""); err != nil {
		t.Fatal(err)
	}
	refresh(t, b)
	if !a.Enabled(app.FeatureLiveStockRefresh) || !b.Enabled(app.FeatureLiveStockRefresh) {
		t.Fatal("back to automatic, yet still off")
	}
	es, err := db.ListAudit(ctx, pool, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range es {
		actions = append(actions, e.Action+" "+e.Target+" "+e.Detail)
		if e.ActorEmail != actor.Email || e.RequestID != "req-1" {
			t.Fatalf("audit entry without its actor: %+v", e)
		}
	}
	want := []string{"feature.auto feature live_stock_refresh ", "feature.off feature live_stock_refresh inventory asked us to"}
	if !slices.Equal(actions, want) {
		t.Fatalf("audit %q, want %q", actions, want)
	}
}

// notifier is a test's Breakers.Changed: each call hands out the current
// channel, and fire closes it for a fresh one, as a breaker change does.
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

func (n *notifier) Changed(string) <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ch
}

func (n *notifier) fire() {
	n.mu.Lock()
	defer n.mu.Unlock()
	close(n.ch)
	n.ch = make(chan struct{})
}

func TestRunRefreshesAtOnceOnABreakerChange(t *testing.T) {
	t.Parallel()
	sig, clk := newSignals(), newClock()
	n := &notifier{ch: make(chan struct{})}
	// The ticker is an hour: only the notification can refresh it.
	f, err := app.NewFeatureSwitch(app.FeaturesConfig{Store: &memOverrides{m: map[string]app.FeatureOverride{}},
		Breakers: sig, Dependencies: []string{app.DepPayment}, Changed: n.Changed, Every: time.Hour, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	apptest.WaitFor(t, "the first refresh", func() bool { return !f.Snapshot().At.IsZero() })
	sig.set(app.DepPayment, app.BreakerOpen)
	n.fire()
	apptest.WaitFor(t, "recommendations off after the breaker opened", func() bool { return !f.Enabled(app.FeatureRecommendations) })
	if !f.Enabled(app.FeatureRichContent) {
		t.Fatal("more than the least important feature went off at level 1")
	}
}
