package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// exactQuantile uses the same rank definition as Histogram.Quantile.
func exactQuantile(sorted []time.Duration, q float64) time.Duration {
	rank := max(1, int(math.Ceil(q*float64(len(sorted)))))
	return sorted[rank-1]
}

func TestHistogramQuantiles(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	series := func(n int, f func(i int) time.Duration) []time.Duration {
		out := make([]time.Duration, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	tests := []struct {
		name   string
		values []time.Duration
	}{
		{"single", []time.Duration{5 * time.Millisecond}},
		{"constant", series(1000, func(int) time.Duration { return 1234567 })},
		{"small exact nanoseconds", series(100, func(i int) time.Duration { return time.Duration(i) })},
		{"uniform microseconds", series(10000, func(i int) time.Duration { return time.Duration(i+1) * time.Microsecond })},
		{"bimodal", series(1000, func(i int) time.Duration {
			if i%10 == 0 {
				return time.Second
			}
			return time.Millisecond
		})},
		{"log-normal", series(20000, func(int) time.Duration {
			return time.Duration(math.Exp(rng.NormFloat64()*1.5 + math.Log(float64(2*time.Millisecond))))
		})},
		{"ten minutes", series(10, func(i int) time.Duration { return time.Duration(i+1) * time.Minute })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var h Histogram
			var sum float64
			for _, v := range tt.values {
				h.Record(v)
				sum += float64(v)
			}
			sorted := slices.Sorted(slices.Values(tt.values))
			s := h.Summary()
			if s.Count != int64(len(sorted)) || s.Min != sorted[0] || s.Max != sorted[len(sorted)-1] {
				t.Fatalf("count/min/max = %d/%s/%s, want %d/%s/%s", s.Count, s.Min, s.Max, len(sorted), sorted[0], sorted[len(sorted)-1])
			}
			if want := sum / float64(len(sorted)); math.Abs(float64(s.Mean)-want) > 1+want*1e-9 {
				t.Errorf("mean = %s, want %s", s.Mean, time.Duration(want))
			}
			for _, q := range []struct {
				q   float64
				got time.Duration
			}{{0.5, s.P50}, {0.9, s.P90}, {0.99, s.P99}, {0.999, s.P999}} {
				want := exactQuantile(sorted, q.q)
				if rel := math.Abs(float64(q.got-want)) / max(1, float64(want)); rel > 0.01 {
					t.Errorf("p%g = %s, want %s (error %.2f%% > 1%%)", q.q*100, q.got, want, rel*100)
				}
			}
		})
	}
}

func TestHistogramEmptyAndReset(t *testing.T) {
	t.Parallel()
	var h Histogram
	if s := h.Summary(); s != (Summary{}) {
		t.Fatalf("empty summary = %+v", s)
	}
	h.Record(time.Second)
	h.Record(-time.Second) // clock oddities count as zero, never panic
	if h.Count() != 2 || h.Quantile(0) != 0 {
		t.Fatalf("count %d, p0 %s", h.Count(), h.Quantile(0))
	}
	h.Reset()
	if h.Count() != 0 || h.Quantile(0.5) != 0 {
		t.Fatalf("after reset: count %d, p50 %s", h.Count(), h.Quantile(0.5))
	}
}

// TestBucketError checks the bucketing itself across the whole range, so the
// 1% promise does not depend on what the table above happens to sample.
func TestBucketError(t *testing.T) {
	t.Parallel()
	prev := -1
	for v := int64(0); v < 1<<(maxExp+1); v = v + 1 + v/97 {
		b := bucketOf(v)
		if b < prev || b >= numBuckets {
			t.Fatalf("bucketOf(%d) = %d after %d (of %d)", v, b, prev, numBuckets)
		}
		prev = b
		if mid := bucketMid(b); math.Abs(float64(mid-v)) > max(0.5, 0.005*float64(v)) {
			t.Fatalf("bucketMid(bucketOf(%d)) = %d: more than 0.5%% off", v, mid)
		}
	}
	if b := bucketOf(math.MaxInt64); b != numBuckets-1 {
		t.Fatalf("bucketOf(MaxInt64) = %d, want the top bucket %d", b, numBuckets-1)
	}
}
