package notify

import "time"

// retrySchedule is the wait before each webhook retry, after the
// Standard Webhooks example schedule: a receiver that is down for a
// deploy gets the message within seconds, one that is down for a day
// still gets it.
var retrySchedule = []time.Duration{
	0, // the first retry goes out at once: many failures are a blip
	5 * time.Second,
	5 * time.Minute,
	30 * time.Minute,
	2 * time.Hour,
	5 * time.Hour,
	10 * time.Hour,
	10 * time.Hour,
}

// RetryDelay returns how long to wait before retry number attempt (1 is
// the first retry after the initial send), jittered by ±10% with r, a
// random number in [0, 1), so that retries of many messages that failed
// together do not arrive together. Attempts past the schedule wait 10h;
// attempt ≤ 0 waits 0.
func RetryDelay(attempt int, r float64) time.Duration {
	if attempt <= 0 {
		return 0
	}
	d := retrySchedule[min(attempt, len(retrySchedule))-1]
	// Clamp r so that a caller's out-of-range value cannot exceed ±10%
	// (a NaN fails both comparisons and counts as the middle).
	switch {
	case r < 0:
		r = 0
	case r >= 1:
		r = 1
	case r != r:
		r = 0.5
	}
	return time.Duration(float64(d) * (0.9 + 0.2*r))
}
