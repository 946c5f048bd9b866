package app_test

import (
	"testing"
	"time"

	"github.com/spillway/spillway/app"
)

func TestOffpeakWindow(t *testing.T) {
	t.Parallel()
	w, err := app.ParseOffpeakWindow("01:00-05:00", "Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	at := func(s string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", s, berlin)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	tests := []struct {
		now, next string
		inside    bool
	}{
		{"2026-11-23 00:59", "2026-11-23 01:00", false},
		{"2026-11-23 01:00", "2026-11-23 01:00", true},
		{"2026-11-23 04:59", "2026-11-23 04:59", true},
		{"2026-11-23 05:00", "2026-11-24 01:00", false},
		{"2026-11-23 23:30", "2026-11-24 01:00", false},
		// The night clocks go back (2026-10-25 03:00 → 02:00): still 01:00 local.
		{"2026-10-24 12:00", "2026-10-25 01:00", false},
	}
	for _, tt := range tests {
		now := at(tt.now)
		if got := w.Contains(now); got != tt.inside {
			t.Errorf("Contains(%s) = %v", tt.now, got)
		}
		if got := w.NextStart(now); !got.Equal(at(tt.next)) {
			t.Errorf("NextStart(%s) = %s, want %s", tt.now, got.In(berlin), tt.next)
		}
	}

	wrap, err := app.ParseOffpeakWindow("22:00-04:00", "UTC")
	if err != nil {
		t.Fatal(err)
	}
	if !wrap.Contains(time.Date(2026, 1, 1, 23, 0, 0, 0, time.UTC)) || !wrap.Contains(time.Date(2026, 1, 1, 3, 59, 0, 0, time.UTC)) ||
		wrap.Contains(time.Date(2026, 1, 1, 4, 0, 0, 0, time.UTC)) {
		t.Error("a window across midnight is wrong")
	}
	for _, bad := range []string{"1:00-5:00", "01:00", "25:00-05:00", "01:00-01:00", "01:60-02:00", "x"} {
		if _, err := app.ParseOffpeakWindow(bad, "UTC"); err == nil {
			t.Errorf("ParseOffpeakWindow(%q) accepted", bad)
		}
	}
	if _, err := app.ParseOffpeakWindow("01:00-05:00", "Mars/Olympus"); err == nil {
		t.Error("unknown zone accepted")
	}
}
