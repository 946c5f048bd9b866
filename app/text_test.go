package app_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/spillway/spillway/app"
)

// ClipText and ElideText cut alike; ElideText says where it cut.
func TestClipText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in         string
		max        int
		want       string
		wantElided string
	}{
		{"short", 10, "short", "short"},
		{"exact", 5, "exact", "exact"},
		{"abcdef", 3, "abc", "abc…"},
		{"aé", 2, "a", "a…"}, // é is two bytes: never split
		{"a\xffb", 10, "a\uFFFDb", "a\uFFFDb"},
		{strings.Repeat("€", 100), 200, strings.Repeat("€", 66), strings.Repeat("€", 66) + "…"},
	}
	for _, tt := range tests {
		got := app.ClipText(tt.in, tt.max)
		if got != tt.want || !utf8.ValidString(got) || len(got) > tt.max {
			t.Errorf("ClipText(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
		if got := app.ElideText(tt.in, tt.max); got != tt.wantElided {
			t.Errorf("ElideText(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.wantElided)
		}
	}
}
