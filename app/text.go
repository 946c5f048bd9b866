package app

import (
	"strings"
	"unicode/utf8"
)

// ClipText makes untrusted text safe to store: invalid UTF-8 (which
// Postgres refuses) becomes U+FFFD, and the result is cut to at most
// maxBytes on a character boundary. Cutting bytes blindly could split a
// character and turn an accepted value into a database error.
func ClipText(s string, maxBytes int) string {
	s, _ = clipText(s, maxBytes)
	return s
}

// ElideText is ClipText for text quoted back to a person (an error
// detail, a table cell): when it cuts, it says so by appending "…" to the
// maxBytes it kept.
func ElideText(s string, maxBytes int) string {
	s, cut := clipText(s, maxBytes)
	if cut {
		return s + "…"
	}
	return s
}

// clipText is the one clipping rule behind ClipText and ElideText; cut
// reports whether anything was dropped.
func clipText(s string, maxBytes int) (_ string, cut bool) {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= maxBytes {
		return s, false
	}
	n := maxBytes
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n], true
}
