package app_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/spillway/spillway/app"
)

func TestClipText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"abcdef", 3, "abc"},
		{"aé", 2, "a"}, // é is two bytes: never split
		{"a\xffb", 10, "a\uFFFDb"},
		{strings.Repeat("€", 100), 200, strings.Repeat("€", 66)},
	}
	for _, tt := range tests {
		got := app.ClipText(tt.in, tt.max)
		if got != tt.want || !utf8.ValidString(got) || len(got) > tt.max {
			t.Errorf("ClipText(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}

func TestElideTextMarksACut(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"exact", 5, "exact"},
		{"abcdef", 3, "abc…"},
		{"aé", 2, "a…"}, // é is two bytes: never split
		{"a\xffb", 10, "a\uFFFDb"},
		{strings.Repeat("x", 100), 64, strings.Repeat("x", 64) + "…"},
	}
	for _, tt := range tests {
		if got := app.ElideText(tt.in, tt.max); got != tt.want || !utf8.ValidString(got) {
			t.Errorf("ElideText(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}
