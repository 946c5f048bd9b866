package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// The histogram is log-linear: values below 2^subBits nanoseconds are kept
// exactly, and every power-of-two range above is split into 2^subBits equal
// buckets. A bucket is then at most 1/128 of its lower bound wide, and
// reporting its midpoint is off by at most half that (≈0.4%), well inside the
// 1% we promise, for a fixed 35 KiB per histogram.
const (
	subBits    = 7
	subCount   = 1 << subBits
	maxExp     = 40 // 2^41 ns ≈ 36 min; anything slower shares the top bucket
	numBuckets = subCount + (maxExp-subBits+1)*subCount
)

// Histogram records durations with bounded relative error. The zero value is
// ready to use. It is not safe for concurrent use.
type Histogram struct {
	counts   [numBuckets]int64
	count    int64
	sum      float64 // float so a long run of slow requests cannot overflow
	min, max time.Duration
}

// bucketOf maps a non-negative nanosecond value to its bucket index.
func bucketOf(v int64) int {
	if v < subCount {
		return int(v)
	}
	e := bits.Len64(uint64(v)) - 1
	if e > maxExp {
		return numBuckets - 1
	}
	shift := e - subBits
	sub := int(v>>shift) - subCount
	return subCount + shift*subCount + sub
}

// bucketMid is the value reported for a bucket: its midpoint, which halves
// the worst-case error compared with reporting either edge.
func bucketMid(i int) int64 {
	if i < subCount {
		return int64(i)
	}
	shift := (i - subCount) / subCount
	sub := (i - subCount) % subCount
	lower := int64(subCount+sub) << shift
	return lower + (int64(1)<<shift)/2
}

// Record adds one duration; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	if h.count == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.counts[bucketOf(int64(d))]++
	h.count++
	h.sum += float64(d)
}

// Count is the number of recorded values.
func (h *Histogram) Count() int64 { return h.count }

// Reset forgets every recorded value.
func (h *Histogram) Reset() { *h = Histogram{} }

// Quantile returns the value at or below which a fraction q (0..1) of the
// recorded values lie, to within 1%; 0 when nothing was recorded. The answer
// is clamped to the exact minimum and maximum so the extremes are exact.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.count == 0 {
		return 0
	}
	q = max(0, min(1, q))
	rank := max(1, int64(math.Ceil(q*float64(h.count))))
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return max(h.min, min(h.max, time.Duration(bucketMid(i))))
		}
	}
	return h.max
}

// Summary is the usual digest of a latency distribution.
type Summary struct {
	Count                               int64
	Min, P50, P90, P99, P999, Max, Mean time.Duration
}

// Summary digests the histogram.
func (h *Histogram) Summary() Summary {
	if h.count == 0 {
		return Summary{}
	}
	return Summary{
		Count: h.count,
		Min:   h.min,
		P50:   h.Quantile(0.50),
		P90:   h.Quantile(0.90),
		P99:   h.Quantile(0.99),
		P999:  h.Quantile(0.999),
		Max:   h.max,
		Mean:  time.Duration(h.sum / float64(h.count)),
	}
}
