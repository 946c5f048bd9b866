package app_test

import (
	"strings"
	"testing"
	"time"

	"github.com/spillway/spillway/app"
)

func TestStorageTimeIsUTCMicroseconds(t *testing.T) {
	t.Parallel()
	tokyo := time.FixedZone("JST", 9*3600)
	in := time.Date(2026, 3, 1, 9, 30, 0, 123456789, tokyo)
	got := app.StorageTime(in)
	want := time.Date(2026, 3, 1, 0, 30, 0, 123456000, time.UTC)
	if !got.Equal(want) || got.Location() != time.UTC || got.Nanosecond() != 123456000 {
		t.Fatalf("StorageTime(%v) = %v, want %v", in, got, want)
	}
	// A stored time has no monotonic reading (it could not survive the
	// row), which is why nothing measures elapsed time with one.
	if now := time.Now(); !strings.Contains(now.String(), "m=") || strings.Contains(app.StorageTime(now).String(), "m=") {
		t.Fatalf("monotonic readings: time.Now %q, StorageTime %q", now, app.StorageTime(now))
	}
}
