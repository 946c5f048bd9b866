package notify

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestResponseText(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 400) // 800 bytes
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{name: "plain", in: []byte(`{"ok":true}`), want: `{"ok":true}`},
		{name: "trimmed", in: []byte("  \r\nok\r\n"), want: "ok"},
		{name: "controls dropped", in: []byte("a\x00b\x1bc\td\ne"), want: "abc\td\ne"},
		{name: "invalid utf-8 replaced", in: []byte("a\xffb"), want: "a\uFFFDb"},
		{name: "cut on a rune boundary", in: []byte(long), want: long[:maxResponseText]},
	}
	for _, tt := range tests {
		got := responseText(tt.in)
		if got != tt.want {
			t.Errorf("%s: responseText = %q, want %q", tt.name, got, tt.want)
		}
		if len(got) > maxResponseText || !utf8.ValidString(got) {
			t.Errorf("%s: %d bytes, valid UTF-8 %v", tt.name, len(got), utf8.ValidString(got))
		}
	}
}

func TestDeliveryErrorWrapsAndDescribes(t *testing.T) {
	t.Parallel()
	de := &DeliveryError{Permanent: true, Disable: true, StatusCode: 410, RetryAfter: 0, Err: io.ErrUnexpectedEOF}
	wrapped := fmt.Errorf("deliver: %w", de)

	var got *DeliveryError
	if !errors.As(wrapped, &got) || got != de {
		t.Fatal("errors.As does not find the *DeliveryError")
	}
	if !errors.Is(wrapped, io.ErrUnexpectedEOF) {
		t.Error("the cause is not reachable through Unwrap")
	}
	for _, want := range []string{"permanent", "disable", "410", io.ErrUnexpectedEOF.Error()} {
		if !strings.Contains(de.Error(), want) {
			t.Errorf("%q lacks %q", de.Error(), want)
		}
	}
	r := retryable(503, errors.New("busy"))
	r.RetryAfter = 30 * time.Second
	if s := r.Error(); !strings.Contains(s, "retryable") || !strings.Contains(s, "30s") {
		t.Errorf("%q does not say retryable after 30s", s)
	}
}
