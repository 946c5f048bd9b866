package jobs_test

import (
	"testing"
	"time"

	"github.com/spillway/spillway/jobs"
)

func TestBackoff(t *testing.T) {
	t.Parallel()
	base, max := 2*time.Second, time.Hour
	tests := []struct {
		attempt  int
		r        float64
		min, top time.Duration
	}{
		{1, 0, time.Second, time.Second},
		{1, 0.999, time.Second, 2 * time.Second},
		{2, 0, 2 * time.Second, 2 * time.Second},
		{5, 0.5, 24 * time.Second, 24 * time.Second},
		{12, 0, 30 * time.Minute, 30 * time.Minute}, // 2s·2^11 > 1h: capped
		{25, 0.999, 30 * time.Minute, time.Hour},
		{1000, 0.5, 45 * time.Minute, 45 * time.Minute}, // no overflow
	}
	for _, tt := range tests {
		got := jobs.Backoff(tt.attempt, base, max, tt.r)
		if got < tt.min || got > tt.top {
			t.Errorf("Backoff(%d, r=%v) = %s, want within [%s, %s]", tt.attempt, tt.r, got, tt.min, tt.top)
		}
	}
}
