package app

import "sync"

// Admission is the bulkhead in front of synchronous calls to one
// dependency: at most Limit at once, each holding a pooled connection for
// up to its deadline. Its last Reserved slots are for high-value work, so
// under overload the low-priority work is sent async first and an order or
// payment at or above HIGH_VALUE_AMOUNT is the last to be shed.
type Admission struct {
	limit, reserved int

	mu    sync.Mutex
	inUse int
}

// NewAdmission returns a bulkhead of limit slots, reserved of them kept
// for high-value work; reserved is clamped to leave ordinary work at least
// one slot.
func NewAdmission(limit, reserved int) *Admission {
	reserved = max(0, min(reserved, limit-1))
	return &Admission{limit: limit, reserved: reserved}
}

// DefaultHighValueReserve is the share of sync slots kept for high-value
// work when SYNC_HIGH_VALUE_RESERVE is unset: a quarter.
func DefaultHighValueReserve(limit int) int { return limit / 4 }

// TryAcquire takes a slot if one is free to work of this value, and never
// waits: a request that finds none is captured instead.
func (a *Admission) TryAcquire(highValue bool) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	room := a.limit
	if !highValue {
		room -= a.reserved
	}
	if a.inUse >= room {
		return false
	}
	a.inUse++
	return true
}

// Release gives back a slot TryAcquire took.
func (a *Admission) Release() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.inUse--
}

// InUse is how many slots are taken now.
func (a *Admission) InUse() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.inUse
}

// Limit is how many slots there are.
func (a *Admission) Limit() int { return a.limit }

// Reserved is how many of them only high-value work may take.
func (a *Admission) Reserved() int { return a.reserved }
