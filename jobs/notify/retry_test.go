package notify

import (
	"math"
	"testing"
	"time"
)

func TestRetryDelay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		attempt int
		r       float64
		want    time.Duration
	}{
		{attempt: 0, r: 0.5, want: 0},
		{attempt: -3, r: 0.5, want: 0},
		{attempt: 1, r: 0.99, want: 0}, // immediately, jitter or not
		{attempt: 2, r: 0.5, want: 5 * time.Second},
		{attempt: 2, r: 0, want: 4500 * time.Millisecond},
		{attempt: 3, r: 0.5, want: 5 * time.Minute},
		{attempt: 4, r: 0.5, want: 30 * time.Minute},
		{attempt: 5, r: 0.5, want: 2 * time.Hour},
		{attempt: 6, r: 0.5, want: 5 * time.Hour},
		{attempt: 7, r: 0.5, want: 10 * time.Hour},
		{attempt: 8, r: 0.5, want: 10 * time.Hour},
		{attempt: 9, r: 0.5, want: 10 * time.Hour},
		{attempt: 1000, r: 0, want: 9 * time.Hour},
		{attempt: 3, r: -1, want: 270 * time.Second},         // clamped to -10%
		{attempt: 3, r: 7, want: 330 * time.Second},          // clamped to +10%
		{attempt: 3, r: math.NaN(), want: 300 * time.Second}, // the middle
	}
	for _, tt := range tests {
		if got := RetryDelay(tt.attempt, tt.r); got != tt.want {
			t.Errorf("RetryDelay(%d, %v) = %v, want %v", tt.attempt, tt.r, got, tt.want)
		}
	}
}

// Across r in [0, 1) every delay stays within ±10% of the schedule.
func TestRetryDelayJitterBounds(t *testing.T) {
	t.Parallel()
	for attempt := 2; attempt <= 10; attempt++ {
		base := retrySchedule[min(attempt, len(retrySchedule))-1]
		lo, hi := time.Duration(float64(base)*0.9), time.Duration(float64(base)*1.1)
		for i := range 100 {
			r := float64(i) / 100
			if d := RetryDelay(attempt, r); d < lo || d > hi {
				t.Fatalf("RetryDelay(%d, %v) = %v, outside [%v, %v]", attempt, r, d, lo, hi)
			}
		}
	}
}
