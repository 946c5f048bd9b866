package app_test

import (
	"strings"
	"testing"
	"time"

	"github.com/spillway/spillway/app"
)

// Drills default to shadow drills of 60 s, by hand only; DRILL_SCHEDULE
// is a Go duration, and a bad DRILL_* value stops the start naming it.
func TestDrillSettingsFromTheEnvironment(t *testing.T) {
	t.Parallel()
	c, err := app.LoadConfig(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if d := c.Drills; d.Schedule != 0 || d.Duration != time.Minute || d.Mode != app.DrillShadow || d.Canaries != 5 {
		t.Fatalf("drill defaults: %+v", d)
	}
	c, err = app.LoadConfig(env(map[string]string{"DRILL_SCHEDULE": "168h", "DRILL_DURATION": "2m", "DRILL_MODE": "live",
		"DRILL_CANARIES": "10"}))
	if err != nil {
		t.Fatal(err)
	}
	if d := c.Drills; d.Schedule != 168*time.Hour || d.Duration != 2*time.Minute || d.Mode != app.DrillLive || d.Canaries != 10 {
		t.Fatalf("drill settings: %+v", d)
	}
	for _, tt := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"DRILL_SCHEDULE": "weekly"}, "DRILL_SCHEDULE"},
		{map[string]string{"DRILL_SCHEDULE": "10m"}, "DRILL_SCHEDULE"},
		{map[string]string{"DRILL_DURATION": "0s"}, "DRILL_DURATION"},
		{map[string]string{"DRILL_DURATION": "2h"}, "DRILL_DURATION"},
		{map[string]string{"DRILL_MODE": "loud"}, "DRILL_MODE"},
		{map[string]string{"DRILL_CANARIES": "0"}, "DRILL_CANARIES"},
	} {
		if _, err := app.LoadConfig(env(tt.env)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("LoadConfig(%v) = %v; want an error naming %s", tt.env, err, tt.want)
		}
	}
}
