package app_test

import (
	"testing"
	"time"

	"github.com/spillway/spillway/app"
)

func TestReservationLookupNothingReserved(t *testing.T) {
	t.Parallel()
	last := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	soon, later := last.Add(time.Second), last.Add(app.LookupSettle)
	tests := []struct {
		name string
		l    app.ReservationLookup
		now  time.Time
		want bool
	}{
		{"reserved", app.ReservationLookup{Status: app.ReservationReserved, ID: "rs_1"}, later, false},
		{"released", app.ReservationLookup{Status: app.ReservationReleased, ID: "rs_1"}, later, false},
		{"out of stock is final", app.ReservationLookup{Status: app.ReservationOutOfStock}, soon, true},
		{"not found, key closed", app.ReservationLookup{Status: app.ReservationNotFound, KeyClosed: true}, soon, true},
		{"not found, key open, too soon", app.ReservationLookup{Status: app.ReservationNotFound}, soon, false},
		{"not found, key open, settled", app.ReservationLookup{Status: app.ReservationNotFound}, later, true},
	}
	for _, tt := range tests {
		if got := tt.l.NothingReserved(last, tt.now); got != tt.want {
			t.Errorf("%s: NothingReserved = %v, want %v", tt.name, got, tt.want)
		}
	}
}
