package app_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spillway/spillway/app"
)

// memBreakerStore is the shared table in memory: enough of
// app.BreakerStore for instances that are flushed by hand.
type memBreakerStore struct {
	app.BreakerStore
	mu          sync.Mutex
	b           map[string]app.Breaker
	counts      map[app.CountDelta]app.Counts // keyed without Counts
	streaks     map[string]map[int64]app.Streak
	transitions []app.Transition
}

func newMemBreakerStore() *memBreakerStore {
	return &memBreakerStore{b: map[string]app.Breaker{}, counts: map[app.CountDelta]app.Counts{},
		streaks: map[string]map[int64]app.Streak{}}
}

func (s *memBreakerStore) EnsureBreaker(_ context.Context, name string, p app.BreakerPolicy, now time.Time) (app.Breaker, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.b[name]; !ok {
		s.b[name] = app.Breaker{Name: name, State: app.BreakerClosed, Generation: 1, Since: now, Policy: p}
	}
	return s.b[name], nil
}

func (s *memBreakerStore) GetBreaker(_ context.Context, name string) (app.Breaker, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b[name], nil
}

func (s *memBreakerStore) AddCounts(_ context.Context, deltas []app.CountDelta) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range deltas {
		k := app.CountDelta{Name: d.Name, Generation: d.Generation, Bucket: d.Bucket}
		s.counts[k] = s.counts[k].Add(d.Counts)
	}
	return nil
}

func (s *memBreakerStore) WindowCounts(_ context.Context, name string, gen int64, since time.Time) (app.Counts, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var c app.Counts
	for k, v := range s.counts {
		if k.Name == name && k.Generation == gen && !k.Bucket.Before(since) {
			c = c.Add(v)
		}
	}
	return c, nil
}

func (s *memBreakerStore) AddStreaks(_ context.Context, deltas []app.StreakDelta, _ time.Time) ([]app.StreakDelta, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []app.StreakDelta
	for _, d := range deltas {
		if s.streaks[d.Name] == nil {
			s.streaks[d.Name] = map[int64]app.Streak{}
		}
		st := s.streaks[d.Name][d.Generation].Then(d.Streak)
		s.streaks[d.Name][d.Generation] = st
		out = append(out, app.StreakDelta{Name: d.Name, Generation: d.Generation, Streak: app.Streak{Failures: st.Failures}})
	}
	return out, nil
}

func (s *memBreakerStore) Transition(_ context.Context, from, to app.Breaker, t app.Transition) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b[from.Name].Generation != from.Generation {
		return false, nil
	}
	s.b[from.Name] = to
	s.transitions = append(s.transitions, t)
	return true, nil
}

// TestFastTriggerOpensOnARunOfFailures drives two instances sharing one
// store call by call and flush by flush, on a clock only the test moves.
// The window is set never to trip (rates of 100 %), so what opens the
// breaker here is the run of failures alone.
func TestFastTriggerOpensOnARunOfFailures(t *testing.T) {
	t.Parallel()
	// Steps: "a:ffs" is calls on instance a (f a fault, s a success or a
	// decline, which is no fault); "a|" flushes a; "+1m" moves the clock;
	// "reset" moves the breaker to a new generation (forced closed, then
	// back to auto) while the calls already let through are still out.
	tests := []struct {
		name        string
		consecutive int
		steps       []string
		want        app.BreakerState
	}{
		{"a run on one instance", 20, []string{"a:" + strings.Repeat("f", 20), "a|"}, app.BreakerOpen},
		{"one short", 20, []string{"a:" + strings.Repeat("f", 19), "a|"}, app.BreakerClosed},
		{"a run across flushes", 20, []string{"a:" + strings.Repeat("f", 10), "a|", "a:" + strings.Repeat("f", 10), "a|"}, app.BreakerOpen},
		{"a run across instances", 20, []string{"a:" + strings.Repeat("f", 10), "a|", "b:" + strings.Repeat("f", 10), "b|"}, app.BreakerOpen},
		{"a success on the other instance ends the run", 20,
			[]string{"a:" + strings.Repeat("f", 15), "a|", "b:s", "b|", "a:" + strings.Repeat("f", 15), "a|"}, app.BreakerClosed},
		{"the run restarts after a success in the same flush", 20,
			[]string{"a:" + strings.Repeat("f", 15) + "s" + strings.Repeat("f", 19), "a|"}, app.BreakerClosed},
		{"and trips once it is long enough", 20,
			[]string{"a:" + strings.Repeat("f", 15) + "s" + strings.Repeat("f", 20), "a|"}, app.BreakerOpen},
		{"declines and successes between every few faults never trip", 20,
			[]string{"a:" + strings.Repeat("fffs", 100), "a|", "b:" + strings.Repeat("ffs", 100), "b|"}, app.BreakerClosed},
		{"a slow run still trips: the trigger has no time limit", 20,
			[]string{"a:" + strings.Repeat("f", 10), "a|", "+1m", "b:" + strings.Repeat("f", 10), "b|"}, app.BreakerOpen},
		{"off", 0, []string{"a:" + strings.Repeat("f", 1000), "a|"}, app.BreakerClosed},
		{"a run of one", 1, []string{"a:f", "a|"}, app.BreakerOpen},
		{"calls from before the breaker changed do not count", 20,
			[]string{"hold:20", "reset", "release:f", "a|"}, app.BreakerClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			clk := &clock{now: t0}
			store := newMemBreakerStore()
			policy := app.DefaultBreakerPolicy()
			policy.FailureRate, policy.SlowRate, policy.ConsecutiveFailures = 1, 1, tt.consecutive
			ins := map[string]*app.Breakers{}
			for _, name := range []string{"a", "b"} {
				bs, err := app.NewBreakers(app.BreakersConfig{Store: store, Instance: name, Now: clk.Now, Rand: func() float64 { return 0.5 }})
				if err != nil {
					t.Fatal(err)
				}
				if err := bs.Register(ctx, "payment", policy, app.PolicyOverride{}); err != nil {
					t.Fatal(err)
				}
				ins[name] = bs
			}
			var held []*app.Permit
			for _, step := range tt.steps {
				in, calls, isCalls := strings.Cut(step, ":")
				switch {
				case step == "+1m":
					clk.Advance(time.Minute)
				case step == "reset":
					for _, st := range []app.BreakerState{app.BreakerForcedClosed, app.BreakerClosed} {
						if _, err := ins["a"].Force(ctx, "payment", st, "test", "reset"); err != nil {
							t.Fatal(err)
						}
					}
				case in == "hold":
					for range 20 {
						p, _ := ins["a"].Acquire(ctx, "payment")
						held = append(held, p)
					}
				case in == "release":
					for _, p := range held {
						p.Done(calls == "f", time.Millisecond)
					}
				case strings.HasSuffix(step, "|"):
					ins[strings.TrimSuffix(step, "|")].Flush(ctx)
				case isCalls:
					for _, c := range calls {
						p, _ := ins[in].Acquire(ctx, "payment")
						if p == nil {
							t.Fatalf("%s: instance %s refused a call while the breaker is meant to be closed", step, in)
						}
						p.Done(c == 'f', time.Millisecond)
					}
				default:
					t.Fatalf("bad step %q", step)
				}
			}
			got, _ := store.GetBreaker(ctx, "payment")
			if got.State != tt.want {
				t.Fatalf("breaker %s after %v, want %s (transitions %+v)", got.State, tt.steps, tt.want, store.transitions)
			}
			if tt.want == app.BreakerOpen {
				tr := store.transitions[len(store.transitions)-1]
				if !strings.Contains(tr.Reason, "in a row") || tr.Counts.Failures < tt.consecutive {
					t.Fatalf("the trip is not the fast trigger's: %+v", tr)
				}
			}
		})
	}
}
