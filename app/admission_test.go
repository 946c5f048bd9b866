package app_test

import (
	"testing"

	"github.com/spillway/spillway/app"
)

// Ordinary work is shed once only the reserved slots are left; high-value
// work is shed only when every slot is taken.
func TestAdmissionShedsLowPriorityFirst(t *testing.T) {
	t.Parallel()
	tests := []struct {
		limit, reserved     int
		ordinary, highValue int // how many of each are admitted, ordinary first
	}{
		{limit: 16, reserved: 4, ordinary: 12, highValue: 4},
		{limit: 16, reserved: 0, ordinary: 16, highValue: 0},
		{limit: 1, reserved: 1, ordinary: 1, highValue: 0},  // ordinary work keeps one slot
		{limit: 4, reserved: 10, ordinary: 1, highValue: 3}, // clamped
		{limit: 8, reserved: -2, ordinary: 8, highValue: 0}, // clamped
	}
	for _, tt := range tests {
		a := app.NewAdmission(tt.limit, tt.reserved)
		ordinary := 0
		for a.TryAcquire(false) {
			ordinary++
		}
		high := 0
		for a.TryAcquire(true) {
			high++
		}
		if a.Limit() != tt.limit || a.Reserved() != tt.highValue {
			t.Errorf("limit %d reserved %d: reports %d slots, %d reserved", tt.limit, tt.reserved, a.Limit(), a.Reserved())
		}
		if ordinary != tt.ordinary || high != tt.highValue || a.InUse() != tt.limit {
			t.Errorf("limit %d reserved %d: admitted %d ordinary and %d high-value (%d in use), want %d and %d",
				tt.limit, tt.reserved, ordinary, high, a.InUse(), tt.ordinary, tt.highValue)
		}
		// A slot given back by anyone is open to high-value work at once,
		// and to ordinary work only once the reserve is free again.
		a.Release()
		if tt.reserved > 0 && tt.limit > 1 && a.TryAcquire(false) {
			t.Errorf("limit %d reserved %d: ordinary work took a reserved slot", tt.limit, tt.reserved)
		}
		if !a.TryAcquire(true) {
			t.Errorf("limit %d reserved %d: high-value work refused a free slot", tt.limit, tt.reserved)
		}
	}
}
