package app

import (
	"fmt"
	"time"
)

// OffpeakWindow is the daily window deferred work runs in, in its own time
// zone; it may wrap midnight (22:00-04:00).
type OffpeakWindow struct {
	startMin, endMin int // minutes after local midnight
	loc              *time.Location
}

// ParseOffpeakWindow reads "HH:MM-HH:MM" in the named IANA zone.
func ParseOffpeakWindow(window, tz string) (OffpeakWindow, error) {
	var w OffpeakWindow
	var h1, m1, h2, m2 int
	if _, err := fmt.Sscanf(window, "%d:%d-%d:%d", &h1, &m1, &h2, &m2); err != nil ||
		!validClock(h1, m1) || !validClock(h2, m2) || fmt.Sprintf("%02d:%02d-%02d:%02d", h1, m1, h2, m2) != window {
		return w, fmt.Errorf("want HH:MM-HH:MM like 01:00-05:00, not %q", window)
	}
	if h1 == h2 && m1 == m2 {
		return w, fmt.Errorf("the window %q is empty", window)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return w, fmt.Errorf("unknown time zone %q", tz)
	}
	return OffpeakWindow{startMin: h1*60 + m1, endMin: h2*60 + m2, loc: loc}, nil
}

func validClock(h, m int) bool { return h >= 0 && h < 24 && m >= 0 && m < 60 }

// String is the window as configured.
func (w OffpeakWindow) String() string {
	if w.loc == nil {
		return "unset"
	}
	return fmt.Sprintf("%02d:%02d-%02d:%02d %s", w.startMin/60, w.startMin%60, w.endMin/60, w.endMin%60, w.loc)
}

// Contains reports whether t falls inside the window.
func (w OffpeakWindow) Contains(t time.Time) bool {
	if w.loc == nil {
		return true
	}
	lt := t.In(w.loc)
	m := lt.Hour()*60 + lt.Minute()
	if w.startMin < w.endMin {
		return m >= w.startMin && m < w.endMin
	}
	return m >= w.startMin || m < w.endMin
}

// NextStart is t if t is inside the window, else when the window next
// opens. Wall-clock arithmetic keeps 01:00 at 01:00 across DST changes.
func (w OffpeakWindow) NextStart(t time.Time) time.Time {
	if w.Contains(t) {
		return t
	}
	lt := t.In(w.loc)
	for d := 0; d <= 2; d++ {
		s := time.Date(lt.Year(), lt.Month(), lt.Day()+d, w.startMin/60, w.startMin%60, 0, 0, w.loc)
		if s.After(t) {
			return s
		}
	}
	return t // unreachable: a window opens every day
}
