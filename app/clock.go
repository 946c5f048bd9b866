package app

import "time"

// StorageTime is t as a row keeps it: UTC at Postgres's microsecond
// precision, so a document answered before a write and one read back after
// it show the same instants.
//
// It drops t's monotonic reading, so it is applied only to times that are
// stored (or compared with stored ones), at the moment they are stamped.
// Elapsed time and deadlines are measured on the monotonic clock
// (time.Now, time.Since, context deadlines), which a step of the wall
// clock does not move: a deadline or a latency taken from storage times
// would shift with every NTP correction, and with it slow-call counts and
// breaker trips.
func StorageTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// orNow is now, or time.Now when now is nil: the injected clock of a
// component whose tests do not set one.
func orNow(now func() time.Time) func() time.Time {
	if now == nil {
		return time.Now
	}
	return now
}
